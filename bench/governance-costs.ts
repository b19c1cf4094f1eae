/**
 * What governance costs on PostgreSQL (docs/design.md, "Rate limits" and "Audit log"):
 * - one shared rate-limit statement (refill + take in one UPDATE … RETURNING), sequential and with
 *   8 callers on one hot bucket;
 * - one audit append (claim the chain head, insert, move the head) inside a write, against the
 *   same write without it.
 * Run: BURNDOWN_TEST_POSTGRES_URL=postgres://… npx tsx bench/governance-costs.ts
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TimeOrderedIds } from '../src/infra/ids.js';
import { systemClock } from '../src/infra/system-clock.js';
import { appendAudit, SYSTEM_REQUEST } from '../src/services/audit.js';
import type { ServiceContext } from '../src/services/context.js';
import { PostgresStorage } from '../src/storage/postgres/postgres-storage.js';

const url = process.env['BURNDOWN_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const schema = `bd_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
const storage = await PostgresStorage.open({ connectionString: url, schema, poolSize: 8 });
const ctx: ServiceContext = { storage, clock: systemClock, ids: new TimeOrderedIds(() => Date.now()) };

async function timed(label: string, n: number, run: (i: number) => Promise<unknown>, parallel = 1) {
  const start = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await run(next++);
    }),
  );
  const us = Number(process.hrtime.bigint() - start) / 1000 / n;
  console.log(`${label}: ${us.toFixed(0)} µs per operation (${n}, ${parallel} in flight)`);
}

const take = (key: string) =>
  storage.rateLimitLeases.take({ bucketKey: key, want: 1, capacity: 1e9, refillPerMs: 1, now: Date.now() });
await timed('rate limit statement, one bucket', 2000, () => take('key:a'));
await timed('rate limit statement, one hot bucket', 4000, () => take('key:hot'), 8);
await timed('rate limit statement, 8 buckets', 4000, (i) => take(`key:${i % 8}`), 8);

const message = {
  workspaceId: 'default',
  action: 'grant.created',
  targetType: 'grant',
  targetId: 'grt_1',
  before: null,
  after: { amount: '100', category: 'paid' },
};
await timed('empty write (lock + transaction)', 1000, (i) =>
  storage.write(`default/c${i}`, async () => null),
);
await timed('write inserting one plain row (a commit that writes)', 1000, (i) =>
  storage.write(`default/c${i}`, async (tx) => tx.ensureWorkspace(`bench${i}`, Date.now())),
);
await timed('write with one audit record', 1000, (i) =>
  storage.write(`default/c${i}`, async (tx) => appendAudit(ctx, tx, Date.now(), SYSTEM_REQUEST, [message])),
);
await timed(
  'write with one audit record, 8 customers in flight (one chain)',
  2000,
  (i) =>
    storage.write(`default/c${i}`, async (tx) => appendAudit(ctx, tx, Date.now(), SYSTEM_REQUEST, [message])),
  8,
);
await timed(
  'write inserting one plain row, 8 customers in flight',
  2000,
  (i) => storage.write(`default/c${i}`, async (tx) => tx.ensureWorkspace(`bench8_${i}`, Date.now())),
  8,
);

await storage.close();
await admin.query(`DROP SCHEMA ${schema} CASCADE`);
await admin.end();
