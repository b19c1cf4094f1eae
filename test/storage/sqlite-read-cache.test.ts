import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { LedgerKey } from '../../src/ports/storage.js';
import { PQ } from '../../src/storage/sql/plan-queries.js';
import { Q } from '../../src/storage/sql/queries.js';
import { CachedSqliteReads, READ_CACHED_TABLES } from '../../src/storage/sqlite/read-cache.js';
import { mayChangeReadCache, SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const key: LedgerKey = { workspaceId: 'ws', customerId: 'c', creditType: 'credits' };

/**
 * The read connection's cache: answers are remembered between commits and dropped on any commit
 * (this process's writer or another process); callers share read-only snapshots (the engine copies).
 */
describe('SQLite read cache', () => {
  it('sees every commit, from this process and from another connection, and shares read-only snapshots', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    const ids = new SequentialIds();
    try {
      expect(await storage.read.getCustomer('ws', 'c')).toBeNull();
      await storage.write('c', async (tx) => {
        await tx.insertCustomer({ workspaceId: 'ws', id: 'c', name: null, metadata: {}, createdAt: T0 });
      });
      expect((await storage.read.getCustomer('ws', 'c'))?.id).toBe('c');
      expect((await storage.read.loadLedger(key)).grants).toEqual([]);
      await storage.write('c', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        ledger.grant(newGrant('10', T0, { priority: 1 }), T0);
        await tx.saveLedger('ws', ledger.takeChanges(), T0);
      });
      const first = await storage.read.loadLedger(key);
      expect(first.grants.map((g) => g.available.toString())).toEqual(['10']);
      // An engine acting on what it was given (shared with the cache) changes its own copy only.
      const reader = new CreditLedger(first, ids);
      expect('refused' in reader.debit({ amount: Amount.parse('9'), allowOverage: false }, T0)).toBe(false);
      expect(reader.grants.get(first.grants[0]!.id)!.available.toString()).toBe('1');
      expect((await storage.read.loadLedger(key)).grants[0]!.available.toString()).toBe('10');

      // Another connection (another process) commits: a read in a later turn of the event loop
      // sees it (data_version is read once per turn; nothing can follow that commit causally
      // within the turn that was already running).
      const other = new BetterSqlite3(path);
      other.prepare("UPDATE grants SET available = '7' WHERE workspace_id = 'ws'").run();
      other
        .prepare(
          'INSERT INTO customers (workspace_id, id, name, metadata, created_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run('ws', 'd', null, '{}', T0);
      other.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect((await storage.read.loadLedger(key)).grants[0]!.available.toString()).toBe('7');
      expect((await storage.read.getCustomer('ws', 'd'))?.id).toBe('d');
    } finally {
      await storage.close();
    }
  });
});

describe('SQLite read cache under interleaving', () => {
  it('never files an answer read before a commit that another read has already noticed', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    try {
      const plans = storage.read.plans;
      const pending = plans.getFeature('ws', 'f1'); // reads "none", then yields before storing it
      const other = new BetterSqlite3(path);
      other.prepare('INSERT INTO features (workspace_id, id, body) VALUES (?, ?, ?)').run(
        'ws',
        'f1',
        JSON.stringify({
          type: 'boolean',
          name: null,
          credit_type: 'credits',
          rate_ids: [],
          credits_per_use: null,
          metadata: {},
          created_at: T0,
          updated_at: T0,
          archived_at: null,
        }),
      );
      other.close();
      // As this process's writer does after each commit: the next read, in this same turn, looks
      // at data_version again. The writer wrote no cached table; the change is another
      // connection's, which the writer connection's own data_version reveals.
      (storage.read as CachedSqliteReads).noteCommit(false);
      await plans.getFeature('ws', 'x'); // notices the commit
      expect(await pending).toBeNull();
      expect((await plans.getFeature('ws', 'f1'))?.id).toBe('f1');
    } finally {
      await storage.close();
    }
  });
});

describe('SQLite read cache: data_version once per turn of the event loop', () => {
  it("sees another process's commit from the next turn on, and this process's own commits at once", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    try {
      const insert = (db: BetterSqlite3.Database, id: string) =>
        db
          .prepare(
            'INSERT INTO customers (workspace_id, id, name, metadata, created_at) VALUES (?, ?, ?, ?, ?)',
          )
          .run('ws', id, null, '{}', T0);
      expect(await storage.read.getCustomer('ws', 'a')).toBeNull();
      const other = new BetterSqlite3(path);
      insert(other, 'a');
      // Same turn: the answer of this turn's snapshot still stands.
      expect(await storage.read.getCustomer('ws', 'a')).toBeNull();
      await new Promise((resolve) => setImmediate(resolve));
      expect((await storage.read.getCustomer('ws', 'a'))?.id).toBe('a');
      other.close();

      // This process's writer: seen by the very next read.
      expect(await storage.read.getCustomer('ws', 'b')).toBeNull();
      await storage.write('b', async (tx) => {
        await tx.insertCustomer({ workspaceId: 'ws', id: 'b', name: null, metadata: {}, createdAt: T0 });
      });
      expect((await storage.read.getCustomer('ws', 'b'))?.id).toBe('b');
    } finally {
      await storage.close();
    }
  });
});

describe('SQLite read cache: rates and feature usage (read by every check)', () => {
  it('serves them from the cache between commits and re-reads them after one', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    try {
      const usage = async () => (await storage.read.plans.getFeatureUsage('ws', 'c', 'f', T0)).toString();
      expect(await usage()).toBe('0');
      expect(await storage.read.getRate('ws', 'r1')).toBeNull();
      await storage.write('c', async (tx) => {
        await tx.plans.setFeatureUsage('ws', 'c', 'f', T0, Amount.parse('3'));
        await tx.insertRate({
          workspaceId: 'ws',
          id: 'r1',
          meterId: 'm',
          filter: {},
          creditType: 'credits',
          pricing: { credits_per_unit: '0.5' },
          seq: 1,
          createdAt: T0,
        });
      });
      expect(await usage()).toBe('3');
      expect((await storage.read.getRate('ws', 'r1'))?.meterId).toBe('m');
    } finally {
      await storage.close();
    }
  });
});

describe('SQLite read cache: commits that change nothing it holds', () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it("keeps its answers across this process's commits of other tables, and drops them for cached tables or another process", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    const ids = new SequentialIds();
    /** A grant, written by this process's writer (balances and grants: cached tables). */
    const grant = (to: LedgerKey, amount: string) =>
      storage.write(to.customerId, async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(to), ids);
        ledger.grant(newGrant(amount, T0, { priority: 1 }), T0);
        await tx.saveLedger('ws', ledger.takeChanges(), T0);
      });
    /** An idempotency record, written by this process's writer (a table the cache does not read). */
    const storeAnswer = (idempotencyKey: string) =>
      storage.write('#idempotency', async (tx) => {
        await tx.putIdempotency('ws', idempotencyKey, {
          fingerprint: 'f',
          statusCode: 201,
          responseBody: '{}',
          createdAt: T0,
        });
      });
    const available = async (of: LedgerKey) =>
      (await storage.read.loadLedger(of)).grants.map((g) => g.available.toString());
    try {
      await grant(key, '10');
      const cached = await storage.read.loadLedger(key);
      // This process writes tables the cache does not read (an idempotency record, a key's last
      // use): the very snapshot object is answered again, in this turn and the next.
      await storeAnswer('k1');
      await storage.write('api-keys', async (tx) => tx.markApiKeyUsed('key_none', T0));
      expect(await storage.read.loadLedger(key)).toBe(cached);
      await nextTurn();
      expect(await storage.read.loadLedger(key)).toBe(cached);

      // A write of a cached table (another customer's grant): everything is read again, and the
      // answer is what the database holds.
      const other: LedgerKey = { ...key, customerId: 'd' };
      await grant(other, '5');
      const reread = await storage.read.loadLedger(key);
      expect(reread).not.toBe(cached);
      expect(await available(key)).toEqual(['10']);
      expect(await available(other)).toEqual(['5']);

      // Another process changes a grant while this process's writer commits only tables the cache
      // does not read: those commits never vouch for another process's, so the change is seen.
      const foreign = new BetterSqlite3(path);
      foreign
        .prepare("UPDATE grants SET available = '4' WHERE workspace_id = 'ws' AND customer_id = 'c'")
        .run();
      foreign.close();
      await storeAnswer('k2');
      expect(await available(key)).toEqual(['4']);

      // Another process's commit of a table the cache does not read still drops it (it cannot be
      // told apart from any other commit of another process).
      const kept = await storage.read.loadLedger(key);
      const idle = new BetterSqlite3(path);
      idle.prepare("DELETE FROM idempotency_keys WHERE key = 'k1'").run();
      idle.close();
      await nextTurn();
      expect(await storage.read.loadLedger(key)).not.toBe(kept);
    } finally {
      await storage.close();
    }
  });

  it('lists every table its cached reads read', () => {
    const tablesOf = (sql: string) =>
      [...sql.matchAll(/\b(?:FROM|JOIN)\s+"?(\w+)"?/gi)].map((m) => m[1]!.toLowerCase());
    const cachedReads = [
      Q.getBalances,
      Q.openGrants,
      Q.activeHolds,
      Q.getCustomer,
      Q.getRate,
      PQ.subscriptionsOf,
      PQ.getFeature,
      PQ.getFeatureUsage,
    ];
    const read = new Set(cachedReads.flatMap(tablesOf));
    expect([...read].sort()).toEqual([...READ_CACHED_TABLES].sort());
  });
});

describe('SQLite read cache: which statements may change it, and a failed freshness check', () => {
  it('tells the written table apart, schema prefix or quotes included, and assumes the worst when it cannot', () => {
    const write = { readonly: false };
    expect(mayChangeReadCache({ readonly: true }, 'SELECT * FROM grants')).toBe(false);
    for (const sql of [
      "UPDATE grants SET available = '1'",
      'update main.grants set held = 0',
      'INSERT INTO "main"."balances" (x) VALUES (1)',
      'INSERT OR REPLACE INTO customers VALUES (1)',
      'DELETE FROM  main . holds WHERE 1',
      'REPLACE INTO feature_usage VALUES (1)',
      'WITH x AS (SELECT 1) UPDATE outbox_events SET fanned_out = 1',
      '/* a comment */ UPDATE outbox_events SET fanned_out = 1',
    ]) {
      expect(mayChangeReadCache(write, sql), sql).toBe(true);
    }
    for (const sql of [
      'UPDATE outbox_events SET fanned_out = 1 WHERE seq = ?',
      'INSERT INTO main.idempotency_keys (x) VALUES (1)',
      'DELETE FROM webhook_deliveries',
      'UPDATE api_keys SET last_used_at = ?',
    ]) {
      expect(mayChangeReadCache(write, sql), sql).toBe(false);
    }
  });

  it("does not keep a stale answer when reading the writer connection's data_version fails once", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-read-cache-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    await storage.write('c', async (tx) => {
      await tx.insertCustomer({ workspaceId: 'ws', id: 'c', name: 'A', metadata: {}, createdAt: T0 });
    });
    await storage.close();
    const writer = new BetterSqlite3(path);
    const reader = new BetterSqlite3(path, { readonly: true });
    try {
      const executor = {
        all: <T>(sql: string, params: readonly unknown[]) => reader.prepare(sql).all(...params) as T[],
        get: <T>(sql: string, params: readonly unknown[]) =>
          reader.prepare(sql).get(...params) as T | undefined,
        run: (): number => {
          throw new Error('read-only');
        },
      };
      const readerVersion = reader.prepare('PRAGMA data_version').pluck();
      const writerVersion = writer.prepare('PRAGMA data_version').pluck();
      let failNext = false;
      const reads = new CachedSqliteReads(
        executor,
        () => readerVersion.get() as number,
        () => {
          if (failNext) {
            failNext = false;
            throw new Error('disk I/O error');
          }
          return writerVersion.get() as number;
        },
      );
      expect((await reads.getCustomer('ws', 'c'))?.name).toBe('A');
      // This process's writer renames the customer (a cached table) and says so.
      writer.prepare("UPDATE customers SET name = 'B' WHERE workspace_id = 'ws' AND id = 'c'").run();
      reads.noteCommit(true);
      failNext = true;
      await expect(reads.getCustomer('ws', 'c')).rejects.toThrow('disk I/O error');
      expect((await reads.getCustomer('ws', 'c'))?.name).toBe('B');
    } finally {
      writer.close();
      reader.close();
    }
  });
});
