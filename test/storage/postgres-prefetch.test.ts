import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import { lockIdOf, PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { adminQuery, POSTGRES_URL } from '../contract/postgres.js';
import { startDelayingProxy } from '../fixtures/delaying-proxy.js';
import { newGrant } from '../fixtures/grants.js';

/**
 * The `prefetch` write hint on PostgreSQL: the read a write makes first (`loadCustomerWrite`) is
 * sent right behind `BEGIN` and the lock, without waiting for their answer, so a debit takes one
 * round trip fewer and holds its customer's lock one round trip less. Round trips are counted at
 * the wire: a proxy holds every answer back for a while, so what the client sends without waiting
 * arrives in one "flight" (a run of client traffic after an answer was delivered).
 */

const ANSWER_DELAY_MS = 20;
const T0 = Date.parse('2026-03-01T00:00:00Z');

/** Resolves once a session of this database waits for the advisory lock of `lockKey`. */
async function untilTheLockIsAwaited(lockKey: string): Promise<void> {
  // A 64-bit advisory key shows in pg_locks as its high and low 32 bits, objsubid 1.
  const id = BigInt.asUintN(64, lockIdOf(lockKey));
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    for (;;) {
      const { rows } = await admin.query<{ waiting: string }>(
        `SELECT count(*) AS waiting FROM pg_locks
         WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid::text = $1 AND objid::text = $2`,
        [String(id >> 32n), String(id & 0xffffffffn)],
      );
      if (Number(rows[0]?.waiting) > 0) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await admin.end();
  }
}

describe('PostgreSQL: a write prefetches its first read with the lock', () => {
  const schema = `bd_prefetch_${randomBytes(5).toString('hex')}`;
  const key = { workspaceId: 'ws1', customerId: 'acme', creditType: 'credits' };
  const lockKey = 'ws1/acme';
  let proxy: Awaited<ReturnType<typeof startDelayingProxy>>;
  let storage: PostgresStorage;

  beforeAll(async () => {
    await adminQuery(`CREATE SCHEMA ${schema}`);
    const target = new URL(POSTGRES_URL);
    proxy = await startDelayingProxy(
      { host: target.hostname, port: Number(target.port || 5432) },
      ANSWER_DELAY_MS,
    );
    const viaProxy = new URL(POSTGRES_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    storage = await PostgresStorage.open({ connectionString: viaProxy.toString(), schema, poolSize: 1 });
    await storage.write(lockKey, async (tx) => {
      await tx.ensureWorkspace('ws1', T0);
      await tx.insertCustomer({ workspaceId: 'ws1', id: 'acme', name: null, metadata: {}, createdAt: T0 });
    });
  }, 60_000);

  afterAll(async () => {
    await storage?.close();
    await proxy?.close();
    await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  /** Grants `amount` in a write of its own (no hint). */
  async function grant(amount: string): Promise<void> {
    await storage.write(lockKey, async (tx) => {
      const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), new TimeOrderedIds(() => T0));
      ledger.grant(newGrant(amount, T0), T0);
      await tx.saveLedger('ws1', ledger.takeChanges(), T0);
    });
  }

  const available = async (snapshot: Promise<{ ledger: { grants: readonly { available: Amount }[] } }>) =>
    Amount.sum((await snapshot).ledger.grants.map((g) => g.available)).toString();

  it('reads the ledger with BEGIN and the lock: two round trips for a write of one read', async () => {
    await grant('10');
    const plain = () =>
      storage.write(lockKey, (tx) => available(Promise.resolve(tx.loadCustomerWrite(key, T0))));
    const hinted = () =>
      storage.write(lockKey, (tx) => available(Promise.resolve(tx.loadCustomerWrite(key, T0))), {
        prefetch: key,
      });
    await plain(); // prepares the statement on the connection: not what is counted
    let before = proxy.flights();
    expect(await plain()).toBe('10');
    expect(proxy.flights() - before, 'without the hint: BEGIN, the read, COMMIT').toBe(3);
    before = proxy.flights();
    expect(await hinted()).toBe('10');
    expect(proxy.flights() - before, 'with it: BEGIN and the read, COMMIT').toBe(2);
  }, 30_000);

  it('reads again once the work wrote, and for any other key', async () => {
    await grant('5');
    const seen = await storage.write(
      lockKey,
      async (tx) => {
        // The work changes the ledger before it loads it: the prefetched row is stale by then.
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), new TimeOrderedIds(() => T0));
        ledger.debit({ amount: Amount.parse('3'), allowOverage: false }, T0);
        await tx.saveLedger('ws1', ledger.takeChanges(), T0);
        const other = await available(
          Promise.resolve(tx.loadCustomerWrite({ ...key, creditType: 'minutes' }, T0)),
        );
        return { after: await available(Promise.resolve(tx.loadCustomerWrite(key, T0))), other };
      },
      { prefetch: key },
    );
    expect(seen).toEqual({ after: '12', other: '0' });
  }, 30_000);

  it('is read under the lock, and the work starts only once the lock is held', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const second = await PostgresStorage.open({ connectionString: POSTGRES_URL, schema, poolSize: 2 });
    try {
      const holder = second.write(lockKey, async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), new TimeOrderedIds(() => T0));
        locked(); // its first statement answered: it holds the customer's lock
        ledger.debit({ amount: Amount.parse('2'), allowOverage: false }, T0);
        await tx.saveLedger('ws1', ledger.takeChanges(), T0);
        await gate;
      });
      await holding;
      // Sent now, while the holder has not committed: read without the lock, it would see 12.
      let workStarted = false;
      const queued = second.write(
        lockKey,
        (tx) => {
          workStarted = true;
          return available(Promise.resolve(tx.loadCustomerWrite(key, T0)));
        },
        { prefetch: key },
      );
      await untilTheLockIsAwaited(lockKey);
      // The work reads the clock first: it must not start before the lock is held, or a write
      // that waited would stamp its entries earlier than the one it waited for.
      expect(workStarted).toBe(false);
      release();
      await holder;
      expect(await queued).toBe('10');
    } finally {
      await second.close();
    }
  }, 30_000);
});
