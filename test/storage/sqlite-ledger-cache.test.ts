import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { BalanceThreshold } from '../../src/domain/alerts/balance-thresholds.js';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import type { AutoTopUp, Subscription } from '../../src/domain/plans/subscription.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { LedgerKey, Storage } from '../../src/ports/storage.js';
import { LedgerCache } from '../../src/storage/sqlite/ledger-cache.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const key: LedgerKey = { workspaceId: 'ws', customerId: 'c', creditType: 'credits' };
const ids = new SequentialIds();

/** Grants `amount` and saves the ledger inside a write; `then` runs after the save (it may throw). */
async function grant(storage: Storage, amount: string, then: () => void = () => {}) {
  await storage.write('c', async (tx) => {
    const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
    ledger.grant(newGrant(amount, T0, { priority: 1 }), T0);
    await tx.saveLedger('ws', ledger.takeChanges(), T0);
    then();
  });
}

const available = async (storage: Storage) =>
  storage.write('c', async (tx) => {
    const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
    return ledger.availableAt(T0).toString();
  });

describe('SQLite write-through ledger cache', () => {
  it('sees what another connection committed to the same file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-cache-')), 'db.sqlite');
    const a = await SqliteStorage.open({ path });
    const b = await SqliteStorage.open({ path });
    await grant(a, '10');
    expect(await available(a)).toBe('10'); // now cached in a
    await grant(b, '5');
    expect(await available(a)).toBe('15');
    await grant(a, '1');
    expect(await available(b)).toBe('16');
    await a.close();
    await b.close();
  });

  it('writes the balances row from the cached head exactly as the upsert would, through rollbacks and other connections', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-cache-')), 'db.sqlite');
    const a = await SqliteStorage.open({ path, checkpointInterval: 3 });
    const b = await SqliteStorage.open({ path, checkpointInterval: 3 });
    const raw = new BetterSqlite3(path, { readonly: true });
    const row = () =>
      raw
        .prepare('SELECT issued, since_checkpoint, checkpoint_at FROM balances WHERE customer_id = ?')
        .get('c') as { issued: string; since_checkpoint: number; checkpoint_at: number | null };
    // What the row must say: the entries recorded after the ledger's last checkpoint.
    const expectedSince = () =>
      (
        raw
          .prepare(
            `SELECT COUNT(*) AS n FROM entries WHERE customer_id = 'c' AND seq > COALESCE(
               (SELECT MAX(seq) FROM ledger_checkpoints WHERE customer_id = 'c'), 0)`,
          )
          .get() as { n: number }
      ).n;
    for (let i = 1; i <= 8; i++) {
      await grant(i % 4 === 0 ? b : a, '1'); // every fourth write by the other connection
      expect(row().since_checkpoint).toBe(expectedSince());
      // A job that saves and then fails leaves neither its row change nor its head in the cache.
      await expect(
        grant(a, '100', () => {
          throw new Error('refused after saving');
        }),
      ).rejects.toThrow('refused after saving');
      expect(row().since_checkpoint).toBe(expectedSince());
    }
    expect(row().issued).toBe('-8');
    expect(row().checkpoint_at).not.toBeNull();
    expect(await available(a)).toBe('8');
    raw.close();
    await a.close();
    await b.close();
  });

  it('keeps staged state only for jobs and batches that commit', () => {
    let version = 1;
    const cache = new LedgerCache(() => version);
    const snapshot = (n: string) => ({
      customerId: 'c',
      creditType: 'credits',
      accounts: {
        issued: Amount.parse(n).negated(),
        consumed: Amount.ZERO,
        expired: Amount.ZERO,
        voided: Amount.ZERO,
        overage: Amount.ZERO,
        clawed_back: Amount.ZERO,
      },
      grants: [],
      holds: [],
    });
    const issued = () => cache.getLedger(key)?.accounts.issued.toString();
    const head = (since: number) => ({ exists: true, sinceCheckpoint: since, checkpointAt: null });
    cache.beforeBatch();
    cache.stageLoaded(key, snapshot('1'), head(1));
    expect(issued()).toBe('-1'); // visible to its own job
    expect(cache.getHead(key)?.sinceCheckpoint).toBe(1);
    cache.jobFailed();
    expect(issued()).toBeUndefined();
    expect(cache.getHead(key)).toBeNull(); // the head rolls back with its ledger
    cache.stageLoaded(key, snapshot('2'), head(2));
    cache.jobSucceeded();
    expect(issued()).toBe('-2'); // visible to later jobs of the batch
    cache.stageHead(key, head(5));
    expect(cache.getHead(key)?.sinceCheckpoint).toBe(5);
    cache.jobFailed();
    expect(cache.getHead(key)?.sinceCheckpoint).toBe(2); // a failed job's head change is dropped
    cache.batchFailed();
    expect(issued()).toBeUndefined();
    cache.beforeBatch();
    cache.stageLoaded(key, snapshot('3'), head(3));
    cache.jobSucceeded();
    cache.batchCommitted();
    expect(issued()).toBe('-3');
    expect(cache.getHead(key)?.sinceCheckpoint).toBe(3);
    // The snapshot is shared, not copied: an engine acting on it copies what it changes.
    const ledger = new CreditLedger(cache.getLedger(key)!, new SequentialIds());
    ledger.grant(newGrant('99', T0), T0);
    expect(ledger.accounts.issued.toString()).toBe('-102');
    expect(issued()).toBe('-3');
    version = 2; // another connection committed
    cache.beforeBatch();
    expect(issued()).toBeUndefined();
    expect(cache.getHead(key)).toBeNull();
  });

  it('keeps a credit type only once its job and batch commit, and forgets it when another connection commits', () => {
    let version = 1;
    const cache = new LedgerCache(() => version);
    const gold = { workspaceId: 'ws', id: 'gold', name: 'Gold', createdAt: T0 };
    const cached = () => cache.getCreditType('ws', 'gold')?.name;
    cache.beforeBatch();
    cache.stageCreditType(gold);
    expect(cached()).toBe('Gold');
    cache.jobFailed();
    expect(cached()).toBeUndefined();
    cache.stageCreditType(gold);
    cache.jobSucceeded();
    cache.batchFailed();
    expect(cached()).toBeUndefined();
    cache.beforeBatch();
    cache.stageCreditType(gold);
    cache.jobSucceeded();
    cache.batchCommitted();
    expect(cached()).toBe('Gold');
    version = 2;
    cache.beforeBatch();
    expect(cached()).toBeUndefined();
  });

  it('answers a credit type from the cache without a statement, and a missing one from the database', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    await storage.write('ct', async (tx) => {
      await tx.ensureWorkspace('ws', T0);
      await tx.insertCreditType({ workspaceId: 'ws', id: 'gold', name: 'Gold', createdAt: T0 });
    });
    expect(await storage.write('ct', async (tx) => tx.getCreditType('ws', 'missing'))).toBeNull();
    expect((await storage.write('ct', async (tx) => tx.getCreditType('ws', 'gold')))?.name).toBe('Gold');
    // Cached now: a statement would fail on the renamed table, the cache does not need one.
    const raw = (storage as unknown as { writer: { exec(sql: string): void } }).writer;
    raw.exec('ALTER TABLE credit_types RENAME TO credit_types_moved');
    expect((await storage.write('ct', async (tx) => tx.getCreditType('ws', 'gold')))?.name).toBe('Gold');
    raw.exec('ALTER TABLE credit_types_moved RENAME TO credit_types');
    await storage.close();
  });
});

describe('SQLite write-through ledger cache and other writers', () => {
  it('sees a commit another process made while this one waited for the write lock', async () => {
    const { Worker } = await import('node:worker_threads');
    const { createRequire } = await import('node:module');
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-cache-race-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    await grant(storage, '100');
    expect(await available(storage)).toBe('100'); // cached
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // Another writer takes the write lock first, changes the ledger, and commits 300 ms later.
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const db = new (require(workerData.driver))(workerData.path);
       db.exec('BEGIN IMMEDIATE');
       db.prepare("UPDATE grants SET available = '10'").run();
       parentPort.postMessage('locked');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
       db.exec('COMMIT');
       db.close();
       parentPort.postMessage('committed');`,
      { eval: true, workerData: { driver, path } },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    // This write's BEGIN IMMEDIATE waits for the other writer; it must not use the stale cache.
    expect(await available(storage)).toBe('10');
    await worker.terminate();
    await storage.close();
  });
});

describe("SQLite writer's cache of customers' upkeep facts", () => {
  const sub = (customerId: string, nextDueAt: number | null): Subscription => ({
    workspaceId: 'ws',
    id: `sub_${customerId}`,
    customerId,
    planId: 'pro',
    planVersion: 1,
    status: 'active',
    anchorAt: T0,
    timeZone: 'UTC',
    nextAllowancePeriod: [],
    grantedCreditTypes: [],
    cancelAt: null,
    endedAt: null,
    pendingChange: null,
    nextDueAt,
    createdAt: T0,
    updatedAt: T0,
  });
  const rule = (customerId: string): AutoTopUp => ({
    workspaceId: 'ws',
    customerId,
    enabled: true,
    threshold: Amount.parse('10'),
    packId: 'pack',
    quantity: 1,
    maxPerPeriod: 3,
    period: 'P1M',
    provider: 'none',
    anchorAt: T0,
    periodStart: T0,
    countInPeriod: 0,
    createdAt: T0,
    updatedAt: T0,
  });
  const threshold = (id: string, customerId: string | null): BalanceThreshold => ({
    workspaceId: 'ws',
    id,
    customerId,
    creditType: 'credits',
    kind: 'amount',
    value: Amount.parse('5'),
    createdAt: T0,
  });
  /** The upkeep as the writer sees it, in a write of its own (where the cache serves it). */
  const upkeep = (storage: Storage, customerId: string, at = T0) =>
    storage.write(customerId, async (tx) => {
      const u = await tx.plans.customerUpkeep('ws', customerId, at);
      return {
        due: u.subscriptionsDue,
        autoTopUp: u.autoTopUp?.packId ?? null,
        thresholds: u.balanceThresholds,
      };
    });
  const none = { due: false, autoTopUp: null, thresholds: false };

  it('keeps them only until a subscription, auto top-up rule or threshold they come from changes', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-upkeep-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    expect(await upkeep(storage, 'c')).toEqual(none);
    expect(await upkeep(storage, 'd')).toEqual(none); // both cached now

    await storage.write('c', async (tx) => tx.plans.saveSubscription(sub('c', T0 + 10)));
    expect(await upkeep(storage, 'c', T0)).toEqual(none);
    expect(await upkeep(storage, 'c', T0 + 10)).toEqual({ ...none, due: true });

    await storage.write('c', async (tx) => tx.plans.putAutoTopUp(rule('c')));
    expect(await upkeep(storage, 'c')).toEqual({ ...none, autoTopUp: 'pack' });
    expect(await upkeep(storage, 'd')).toEqual(none);

    // A customer's own threshold changes only that customer's facts.
    await storage.write('c', async (tx) => tx.alerts.insertThreshold(threshold('thr_c', 'c')));
    expect(await upkeep(storage, 'c')).toEqual({ ...none, autoTopUp: 'pack', thresholds: true });
    expect(await upkeep(storage, 'd')).toEqual(none);
    // A workspace default applies to every customer, cached or not.
    await storage.write('ws', async (tx) => tx.alerts.insertThreshold(threshold('thr_ws', null)));
    expect(await upkeep(storage, 'd')).toEqual({ ...none, thresholds: true });
    await storage.write('ws', async (tx) => {
      await tx.alerts.deleteThreshold('ws', 'thr_ws');
      await tx.alerts.deleteThreshold('ws', 'thr_c');
    });
    expect(await upkeep(storage, 'd')).toEqual(none);
    expect(await upkeep(storage, 'c')).toEqual({ ...none, autoTopUp: 'pack' });

    await storage.write('c', async (tx) => tx.plans.deleteAutoTopUp('ws', 'c'));
    await storage.write('c', async (tx) => tx.plans.saveSubscription(sub('c', null)));
    expect(await upkeep(storage, 'c', T0 + 10)).toEqual(none);
    await storage.close();
  });

  it('forgets what a rolled-back write changed, and sees what another connection committed', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-upkeep-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    expect(await upkeep(storage, 'c')).toEqual(none);
    // Read (and cached) inside the job, then changed, then the job rolls back.
    await expect(
      storage.write('ws', async (tx) => {
        await tx.plans.customerUpkeep('ws', 'c', T0);
        await tx.alerts.insertThreshold(threshold('thr_ws', null));
        expect((await tx.plans.customerUpkeep('ws', 'c', T0)).balanceThresholds).toBe(true);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await upkeep(storage, 'c')).toEqual(none);

    const other = new BetterSqlite3(path);
    other
      .prepare(
        "INSERT INTO balance_thresholds (workspace_id, id, customer_id, credit_type, kind, value, created_at) VALUES ('ws', 'thr_x', '', 'credits', 'amount', '5', 0)",
      )
      .run();
    other.close();
    expect(await upkeep(storage, 'c')).toEqual({ ...none, thresholds: true });
    await storage.close();
  });
});
