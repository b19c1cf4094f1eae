import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { balanceFromEntries } from '../../src/domain/ledger/point-in-time.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { LedgerKey, Storage } from '../../src/ports/storage.js';
import type { ServiceContext } from '../../src/services/context.js';
import { BACKFILL_THRESHOLD, debitCredits, readBalance } from '../../src/services/ledger.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { POSTGRES_URL } from '../contract/postgres.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const key: LedgerKey = { workspaceId: 'ws', customerId: 'c1', creditType: 'credits' };
const ENTRIES = BACKFILL_THRESHOLD + 1_000;

/** Opens the same database twice: first without checkpoints (history older than them), then with. */
interface Reopenable {
  open(checkpointInterval: number): Promise<Storage>;
  cleanup(): Promise<void>;
}

async function sqliteFile(): Promise<Reopenable> {
  const path = join(mkdtempSync(join(tmpdir(), 'burndown-backfill-')), 'db.sqlite');
  return {
    open: (checkpointInterval) => SqliteStorage.open({ path, synchronous: 'OFF', checkpointInterval }),
    cleanup: async () => {},
  };
}

async function postgresSchema(): Promise<Reopenable> {
  const schema = `bd_backfill_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(sql);
    await client.end();
  };
  await admin(`CREATE SCHEMA ${schema}`);
  return {
    open: (checkpointInterval) =>
      PostgresStorage.open({ connectionString: POSTGRES_URL, schema, poolSize: 4, checkpointInterval }),
    cleanup: () => admin(`DROP SCHEMA ${schema} CASCADE`),
  };
}

async function fullSum(storage: Storage, at: number) {
  const entries = await storage.read.entriesUpTo(key, at);
  const ids = [...new Set(entries.flatMap((e) => (e.grantId ? [e.grantId] : [])))];
  const grants = new Map((await storage.read.getGrantsByIds('ws', ids)).map((g) => [g.id, g]));
  return balanceFromEntries({ customerId: 'c1', creditType: 'credits', at, entries, grants });
}

/**
 * A ledger whose history predates checkpoints reads exactly, and the first read that has to sum a
 * long stretch of it leaves checkpoints behind (lazy backfill), after which reads of that stretch
 * start from a checkpoint; a late entry afterwards repairs the backfilled checkpoints too.
 */
describe.each([
  { name: 'sqlite', make: sqliteFile },
  { name: 'postgres', make: postgresSchema },
])('lazy checkpoint backfill ($name)', ({ make }) => {
  it('backfills the gap a read falls into, and keeps every read equal to the full sum', async () => {
    const db = await make();
    const ids = new SequentialIds();
    // 1. History without checkpoints (an interval no ledger reaches).
    const old = await db.open(1_000_000_000);
    await old.write('c', async (tx) => {
      await tx.insertCustomer({ workspaceId: 'ws', id: 'c1', name: null, metadata: {}, createdAt: T0 });
      const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
      ledger.grant(newGrant('1000000', T0, { priority: 1 }), T0);
      await tx.saveLedger('ws', ledger.takeChanges(), T0);
    });
    for (let done = 0; done < ENTRIES; done += 100) {
      await old.write('c', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        for (let i = 1; i <= 100; i++)
          ledger.debit({ amount: Amount.parse('0.25'), allowOverage: true }, T0 + (done + i) * 1000);
        await tx.saveLedger('ws', ledger.takeChanges(), T0 + (done + 100) * 1000);
      });
    }
    await old.close();

    // 2. The same database with checkpoints every 100 entries.
    const storage = await db.open(100);
    const clock = new ManualClock(T0 + (ENTRIES + 10) * 1000);
    const ctx: ServiceContext = { storage, clock, ids };
    const late = T0 + (ENTRIES - 50) * 1000;
    expect((await storage.read.checkpointedEntriesUpTo(key, late)).checkpointAt).toBeNull();
    expect(JSON.stringify(await readBalance(ctx, { key, at: late }))).toBe(
      JSON.stringify(await fullSum(storage, late)),
    );
    // That read summed the whole history, so it left checkpoints behind.
    const after = await storage.read.checkpointedEntriesUpTo(key, late);
    expect(after.checkpointAt).not.toBeNull();
    expect(after.movements.length).toBeLessThanOrEqual(100);

    // 3. A late entry (dated early in the history) repairs the backfilled checkpoints.
    await storage.write('c', (tx) =>
      debitCredits(ctx, tx, {
        key,
        now: T0 + 1_500,
        amount: Amount.parse('7'),
        allowOverage: true,
        description: null,
        metadata: {},
      }),
    );
    for (let i = 0; i <= 20; i++) {
      const at = T0 + Math.floor((i / 20) * (ENTRIES + 5)) * 1000;
      expect(JSON.stringify(await readBalance(ctx, { key, at })), `at ${i}`).toBe(
        JSON.stringify(await fullSum(storage, at)),
      );
    }
    expect((await reconcileLedger(storage)).failures).toEqual([]);
    await storage.close();
    await db.cleanup();
  });
});
