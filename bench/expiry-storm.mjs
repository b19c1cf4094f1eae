// An expiry storm: BENCH_STORM_CUSTOMERS customers (5,000) each hold a grant that expires at the
// same instant; the clock (injected) moves past it and the sweeper's pass (`sweepDueLedgers`, 500
// ledgers a call, as the server's sweeper calls it) runs until nothing is due. Prints ledgers
// settled per second and process CPU per ledger, on a durable SQLite file (WAL, pipelined sync).
// In process, no HTTP: what is measured is how the sweep's writes share commits.
//   npm run build && node bench/expiry-storm.mjs [--dist <another build>/dist]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { log, num, root } from './lib.mjs';

const distArg = process.argv.indexOf('--dist');
const dist = distArg > 0 ? process.argv[distArg + 1] : join(root, 'dist');
const load = (path) => import(pathToFileURL(join(dist, path)).href);
const { Amount } = await load('domain/amount/amount.js');
const { ManualClock } = await load('domain/time/clock.js');
const { SequentialIds } = await load('infra/ids.js');
const { SqliteStorage } = await load('storage/sqlite/sqlite-storage.js');
const { createCustomer } = await load('services/customers.js');
const { grantCredits, sweepDueLedgers } = await load('services/ledger.js');

const CUSTOMERS = num('BENCH_STORM_CUSTOMERS', 5000);
const T0 = Date.parse('2026-03-01T00:00:00Z');
const HOUR = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), 'burndown-storm-'));
const storage = await SqliteStorage.open({ path: join(dir, 'db.sqlite') });
const clock = new ManualClock(T0);
const ctx = { storage, clock, ids: new SequentialIds() };
const grant = {
  amount: Amount.of('10'),
  category: 'promotional',
  priority: 10,
  effectiveAt: T0,
  expiresAt: T0 + HOUR,
  costBasis: null,
  appliesTo: null,
  description: null,
  metadata: {},
};
try {
  for (let base = 0; base < CUSTOMERS; base += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, CUSTOMERS - base) }, (_, k) => {
        const id = `storm-${base + k}`;
        return storage.write(`default/${id}`, async (tx) => {
          await createCustomer(tx, { workspaceId: 'default', id, name: null, metadata: {}, now: T0 });
          await grantCredits(ctx, tx, {
            key: { workspaceId: 'default', customerId: id, creditType: 'credits' },
            grant,
            now: T0,
          });
        });
      }),
    );
  }
  clock.set(T0 + 2 * HOUR);
  const started = performance.now();
  const cpu = process.cpuUsage();
  let swept = 0;
  for (let n = await sweepDueLedgers(ctx); n > 0; n = await sweepDueLedgers(ctx)) swept += n;
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  log(
    `expiry storm: ${swept} ledgers settled in ${ms.toFixed(0)} ms (${Math.round(swept / (ms / 1000))}/s), ` +
      `process CPU ${((used.user + used.system) / swept).toFixed(0)} µs per ledger [${dist}]`,
  );
} finally {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
}
