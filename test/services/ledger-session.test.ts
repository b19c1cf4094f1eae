/**
 * The one ledger session of a customer (src/services/ledger-session.ts): each credit type's
 * snapshot is loaded once per transaction and advanced to now, every change is persisted once, and
 * auto top-up runs only for credit types that burned.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { WriteOperations } from '../../src/ports/storage.js';
import type { ServiceContext } from '../../src/services/context.js';
import { LedgerSession } from '../../src/services/ledger-session.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const customer = { workspaceId: 'default', customerId: 'c1' };

let storage: SqliteStorage;
let ctx: ServiceContext;

beforeEach(async () => {
  storage = await SqliteStorage.open({
    path: join(mkdtempSync(join(tmpdir(), 'burndown-session-')), 'db.sqlite'),
    synchronous: 'OFF',
  });
  ctx = { storage, clock: new ManualClock(T0), ids: new SequentialIds() };
  await storage.write('default/c1', async (tx) => {
    await tx.insertCustomer({ workspaceId: 'default', id: 'c1', name: null, metadata: {}, createdAt: T0 });
  });
});
afterEach(async () => {
  await storage.close();
});

/** Counts the snapshot loads and ledger saves a transaction makes. */
function counting(tx: WriteOperations) {
  const counts = { loads: 0, saves: 0 };
  const watched = new Proxy(tx, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      if (name === 'loadLedgerForUpdate') counts.loads += 1;
      if (name === 'saveLedger') counts.saves += 1;
      return value.bind(target);
    },
  });
  return { tx: watched, counts };
}

const grant = (amount: string, expiresAt: number | null = null) => ({
  amount: Amount.of(amount),
  category: 'paid' as const,
  priority: 10,
  effectiveAt: T0,
  expiresAt,
  costBasis: null,
  appliesTo: null,
  description: null,
  metadata: {},
});

describe('LedgerSession', () => {
  it('loads a credit type once, advances it to now, and persists every change once', async () => {
    await storage.write('default/c1', async (raw) => {
      const { tx, counts } = counting(raw);
      const session = await LedgerSession.open(ctx, tx, customer, T0);
      const ledger = await session.ledger('credits');
      expect(await session.ledger('credits')).toBe(ledger);
      ledger.grant(grant('10', T0 + 1000), T0);
      ledger.grant(grant('5'), T0);
      await session.save();
      expect(counts).toEqual({ loads: 1, saves: 1 });
    });
    // An hour later the first grant has expired: a new session applies it on open, before any operation.
    await storage.write('default/c1', async (tx) => {
      const session = await LedgerSession.open(ctx, tx, customer, T0 + 3_600_000);
      const ledger = await session.ledger('credits');
      expect(ledger.availableAt(T0 + 3_600_000).toString()).toBe('5');
      expect(ledger.newEntries.map((e) => e.type)).toEqual(['expiry']);
      await session.save();
    });
  });

  it('saves nothing when nothing changed (a refusal leaves the ledger as it was)', async () => {
    await storage.write('default/c1', async (raw) => {
      const { tx, counts } = counting(raw);
      const session = await LedgerSession.open(ctx, tx, customer, T0);
      const ledger = await session.ledger('credits');
      const refused = ledger.debit({ amount: Amount.of('1'), allowOverage: false }, T0);
      expect('refused' in refused).toBe(true);
      await session.save();
      expect(counts).toEqual({ loads: 1, saves: 0 });
    });
  });

  it('refuses to mark a burn on a credit type it has not opened (a bug in the caller)', async () => {
    await storage.write('default/c1', async (tx) => {
      const session = await LedgerSession.open(ctx, tx, customer, T0);
      expect(() => session.burned('credits')).toThrow(/before it was opened/);
    });
  });
});
