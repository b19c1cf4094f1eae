import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { LedgerKey, Storage } from '../../src/ports/storage.js';
import { reconcileLedger } from '../../src/services/reconcile.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3600_000;
const key: LedgerKey = { workspaceId: 'ws1', customerId: 'acme', creditType: 'credits' };

const grantInput = (amount: string, extra: Partial<Parameters<CreditLedger['grant']>[0]> = {}) => ({
  amount: Amount.parse(amount),
  category: 'paid' as const,
  priority: 10,
  effectiveAt: T0,
  expiresAt: null,
  costBasis: null,
  appliesTo: null,
  description: null,
  metadata: {},
  ...extra,
});

/**
 * The storage contract: what every adapter must do, run unchanged against each dialect. An
 * adapter passes when these hold; services rely on nothing else.
 */
export function describeStorageContract(dialect: string, open: () => Promise<Storage>): void {
  describe(`storage contract: ${dialect}`, () => {
    let storage: Storage;
    const ids = new SequentialIds();

    beforeEach(async () => {
      storage = await open();
      await storage.write('setup', async (tx) => {
        await tx.insertCustomer({ workspaceId: 'ws1', id: 'acme', name: null, metadata: {}, createdAt: T0 });
      });
    });
    afterEach(async () => {
      await storage.close();
    });

    /** Loads, applies `act` and saves one ledger inside a write, like the services do. */
    const act = <T>(now: number, fn: (ledger: CreditLedger) => T) =>
      storage.write('acme', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        ledger.advanceTo(now);
        const result = fn(ledger);
        await tx.saveLedger(key.workspaceId, ledger, now);
        return result;
      });

    it('round-trips a ledger: grants, holds, balances and entries survive save and load', async () => {
      const grant = await act(T0, (l) =>
        l.grant(grantInput('100.000000000001', { expiresAt: T0 + 10 * HOUR }), T0),
      );
      const hold = await act(T0 + 1, (l) =>
        l.placeHold({ amount: Amount.parse('30'), expiresAt: T0 + HOUR }, T0 + 1),
      );
      const snapshot = await storage.read.loadLedger(key);
      expect(snapshot.grants.map((g) => [g.id, g.available.toString(), g.held.toString()])).toEqual([
        [grant.id, '70.000000000001', '30'],
      ]);
      expect(snapshot.holds.map((h) => h.id)).toEqual(['id' in hold ? hold.id : '']);
      expect(snapshot.accounts.issued.toString()).toBe('-100.000000000001');
      const entries = await storage.read.entriesUpTo(key, T0 + 1);
      expect(entries.map((e) => e.type)).toEqual(['grant', 'hold']);
      expect((await reconcileLedger(storage)).ok).toBe(true);
    });

    it('keeps very large and very small amounts exact', async () => {
      await act(T0, (l) => l.grant(grantInput('123456789012345678.123456789012'), T0));
      await act(T0, (l) => l.debit({ amount: Amount.parse('0.000000000001'), allowOverage: false }, T0));
      const snapshot = await storage.read.loadLedger(key);
      expect(snapshot.grants[0]!.available.toString()).toBe('123456789012345678.123456789011');
    });

    it('rolls back everything a failed write did, and nothing of the writes beside it', async () => {
      const results = await Promise.allSettled([
        act(T0, (l) => l.grant(grantInput('10'), T0)),
        storage.write('acme', async (tx) => {
          const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
          ledger.grant(grantInput('999'), T0);
          await tx.saveLedger(key.workspaceId, ledger, T0);
          throw new Error('boom after saving');
        }),
        act(T0, (l) => l.grant(grantInput('5'), T0)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const snapshot = await storage.read.loadLedger(key);
      expect(Amount.sum(snapshot.grants.map((g) => g.available)).toString()).toBe('15');
      expect((await storage.read.entriesUpTo(key, T0)).length).toBe(2);
      expect((await reconcileLedger(storage)).ok).toBe(true);
    });

    it('serialises concurrent writers to one customer: no lost update', async () => {
      await act(T0, (l) => l.grant(grantInput('1000'), T0));
      await Promise.all(
        Array.from({ length: 200 }, () =>
          act(T0, (l) => l.debit({ amount: Amount.parse('1.5'), allowOverage: false }, T0)),
        ),
      );
      const snapshot = await storage.read.loadLedger(key);
      expect(snapshot.grants[0]!.available.toString()).toBe('700');
      expect((await reconcileLedger(storage)).ok).toBe(true);
    });

    it('stops loading grants with nothing left, but lists them with their status', async () => {
      const g = await act(T0, (l) => l.grant(grantInput('10'), T0));
      await act(T0, (l) => l.grant(grantInput('5', { effectiveAt: T0 + HOUR }), T0));
      await act(T0, (l) => l.debit({ amount: Amount.parse('10'), allowOverage: false }, T0));
      expect((await storage.read.loadLedger(key)).grants.map((x) => x.amount.toString())).toEqual(['5']);
      const list = async (status: 'active' | 'depleted' | 'pending' | null) =>
        (
          await storage.read.listGrants(
            'ws1',
            'acme',
            { status, creditType: null, now: T0 },
            { after: null, limit: 10 },
          )
        ).items.map((x) => x.amount.toString());
      expect(await list('depleted')).toEqual(['10']);
      expect(await list('pending')).toEqual(['5']);
      expect(await list('active')).toEqual([]);
      expect(await list(null)).toEqual(['10', '5']);
      expect((await storage.read.getGrant('ws1', g.id))?.available.toString()).toBe('0');
      expect(await storage.read.getGrant('other-workspace', g.id)).toBeNull();
    });

    it('pages lists and entries with keyset cursors, without gaps or repeats', async () => {
      for (let i = 0; i < 7; i++) {
        await act(T0 + i, (l) => l.grant(grantInput(String(i + 1), { effectiveAt: T0 + i }), T0 + i));
      }
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const page = await storage.read.listEntries(key, { from: null, to: null }, { after, limit: 3 });
        seen.push(...page.items.map((e) => e.amount.toString()));
        after = page.nextAfter;
      } while (after !== null);
      expect(seen).toEqual(['1', '2', '3', '4', '5', '6', '7']);
      const ranged = await storage.read.listEntries(
        key,
        { from: T0 + 2, to: T0 + 4 },
        { after: null, limit: 10 },
      );
      expect(ranged.items.map((e) => e.amount.toString())).toEqual(['3', '4']);
    });

    it('finds ledgers with something due, and stops once it is recorded', async () => {
      await act(T0, (l) => l.grant(grantInput('10', { expiresAt: T0 + HOUR }), T0));
      expect(await storage.findDueLedgers(T0 + HOUR - 1, 10)).toEqual([]);
      expect(await storage.findDueLedgers(T0 + HOUR, 10)).toEqual([key]);
      await act(T0 + HOUR, () => undefined);
      expect(await storage.findDueLedgers(T0 + HOUR, 10)).toEqual([]);
      const expiry = (await storage.read.entriesUpTo(key, T0 + HOUR)).at(-1);
      expect([expiry?.type, expiry?.at]).toEqual(['expiry', T0 + HOUR]);
    });

    it('stores idempotency records per workspace and expires old ones', async () => {
      await storage.write('k', async (tx) => {
        await tx.putIdempotency('ws1', 'key-1', {
          fingerprint: 'f',
          statusCode: 201,
          responseBody: '{}',
          createdAt: T0,
        });
      });
      await storage.write('k', async (tx) => {
        expect(await tx.getIdempotency('ws1', 'key-1')).toMatchObject({ fingerprint: 'f', statusCode: 201 });
        expect(await tx.getIdempotency('ws2', 'key-1')).toBeNull();
        expect(await tx.deleteIdempotencyBefore(T0 + 1)).toBe(1);
        expect(await tx.getIdempotency('ws1', 'key-1')).toBeNull();
      });
    });

    it('refuses a duplicate customer id without changing the first', async () => {
      const inserted = await storage.write('c', async (tx) =>
        tx.insertCustomer({ workspaceId: 'ws1', id: 'acme', name: 'Other', metadata: {}, createdAt: T0 + 5 }),
      );
      expect(inserted).toBe(false);
      expect((await storage.read.getCustomer('ws1', 'acme'))?.name).toBeNull();
    });

    it('reconciliation names the account whose cached balance was tampered with', async () => {
      const grant = await act(T0, (l) => l.grant(grantInput('10'), T0));
      await storage.write('acme', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        const g = ledger.grants.get(grant.id)!;
        g.available = Amount.parse('11'); // a cache change with no entry behind it
        ledger.changedGrants.add(g);
        await tx.saveLedger(key.workspaceId, ledger, T0);
      });
      const report = await reconcileLedger(storage);
      expect(report.ok).toBe(false);
      expect(report.failures.map((f) => [f.check, f.account])).toContainEqual([
        'account_balance',
        `grant:${grant.id}`,
      ]);
      expect(report.failures.map((f) => f.check)).toContain('grant_bounds');
    });
  });
}
