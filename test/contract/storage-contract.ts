import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { LedgerChanges } from '../../src/domain/ledger/changes.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type {
  EventListQuery,
  LedgerKey,
  Page,
  PageRequest,
  ResumeKey,
  Storage,
} from '../../src/ports/storage.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3600_000;
/** Plain JSON of a record: amounts as their decimal text (Amount memoises its text, so compare that). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
/** Like {@link plain}, with bigints kept exact as `<digits>n` strings. */
const exact = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))) as unknown;
const key: LedgerKey = { workspaceId: 'ws1', customerId: 'acme', creditType: 'credits' };
const fromStart = (limit: number): PageRequest => ({ after: null, limit });

/**
 * Every item of a listing, walked `limit` at a time through the keys it hands out (opaque here, as
 * to services), and the number of pages read: no gap, no repeat, and a last page that says so.
 */
async function walk<T>(
  list: (page: PageRequest) => Promise<Page<T>> | Page<T>,
  limit: number,
): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let after: ResumeKey | null = null;
  let pages = 0;
  do {
    const page: Page<T> = await list({ after, limit });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    if (page.nextAfter !== null) expect(page.items).toHaveLength(limit);
    items.push(...page.items);
    after = page.nextAfter;
    pages += 1;
  } while (after !== null && pages < 1000);
  return { items, pages };
}

/** A listing refuses a key of another shape (another listing's cursor) as invalid_request, not a 500. */
async function refusesForeignKey(list: (page: PageRequest) => Promise<unknown> | unknown): Promise<void> {
  for (const after of [
    ['a', 'b', 'c', 'd'],
    ['not-a-number', 'x'],
  ]) {
    await expect(Promise.resolve().then(() => list({ after, limit: 1 }))).rejects.toMatchObject({
      code: 'invalid_request',
    });
  }
}

const grantInput = (amount: string, extra: Partial<Parameters<CreditLedger['grant']>[0]> = {}) =>
  newGrant(amount, T0, extra);

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
        await tx.saveLedger(key.workspaceId, ledger.takeChanges(), now);
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

    it('saves a ledger twice in one transaction: each change once (a change set holds only what is new)', async () => {
      const { grantId, debitId, holdId } = await storage.write('acme', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        const grant = ledger.grant(grantInput('10'), T0);
        await tx.saveLedger(key.workspaceId, ledger.takeChanges(), T0);
        const debit = ledger.debit({ amount: Amount.parse('3'), allowOverage: false }, T0 + 1);
        const hold = ledger.placeHold({ amount: Amount.parse('2'), expiresAt: T0 + HOUR }, T0 + 1);
        if ('refused' in debit || 'refused' in hold) throw new Error('refused');
        await tx.saveLedger(key.workspaceId, ledger.takeChanges(), T0 + 1);
        // Nothing changed since: the third save writes no entry, grant, hold or debit again.
        await tx.saveLedger(key.workspaceId, ledger.takeChanges(), T0 + 1);
        return { grantId: grant.id, debitId: debit.id, holdId: hold.id };
      });
      const entries = await storage.read.entriesUpTo(key, T0 + 1);
      expect(entries.map((e) => [e.type, e.amount.toString()])).toEqual([
        ['grant', '10'],
        ['debit', '3'],
        ['hold', '2'],
      ]);
      expect(new Set(entries.map((e) => e.id)).size).toBe(3);
      const snapshot = await storage.read.loadLedger(key);
      expect(snapshot.grants.map((g) => [g.id, g.available.toString(), g.held.toString()])).toEqual([
        [grantId, '5', '2'],
      ]);
      expect(snapshot.holds.map((h) => h.id)).toEqual([holdId]);
      expect([snapshot.accounts.issued.toString(), snapshot.accounts.consumed.toString()]).toEqual([
        '-10',
        '3',
      ]);
      expect((await storage.read.getDebit('ws1', debitId))?.debit.amount.toString()).toBe('3');
      // The next write sees the same state (the SQLite writer's cache kept what the last save left).
      const next = await act(T0 + 2, (l) =>
        l.debit({ amount: Amount.parse('5'), allowOverage: false }, T0 + 2),
      );
      expect('refused' in next).toBe(false);
      expect((await storage.read.entriesUpTo(key, T0 + 2)).map((e) => e.type)).toEqual([
        'grant',
        'debit',
        'hold',
        'debit',
      ]);
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
          await tx.saveLedger(key.workspaceId, ledger.takeChanges(), T0);
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
      let after: readonly string[] | null = null;
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

    it('finds every kind of due ledger once, oldest due first, within the limit', async () => {
      const other = (customerId: string) => ({ ...key, customerId });
      const actOn = <T>(k: LedgerKey, now: number, fn: (ledger: CreditLedger) => T) =>
        storage.write(k.customerId, async (tx) => {
          const ledger = new CreditLedger(await tx.loadLedgerForUpdate(k), ids);
          ledger.advanceTo(now);
          const result = fn(ledger);
          await tx.saveLedger(k.workspaceId, ledger.takeChanges(), now);
          return result;
        });
      // Expiring (two grants of one ledger), activating, and a hold expiring: three ledgers due.
      await actOn(other('exp'), T0, (l) => {
        l.grant(grantInput('5', { expiresAt: T0 + HOUR }), T0);
        l.grant(grantInput('5', { expiresAt: T0 + 2 * HOUR }), T0);
      });
      await actOn(other('act'), T0, (l) => l.grant({ ...grantInput('5'), effectiveAt: T0 + 3 * HOUR }, T0));
      await actOn(other('hold'), T0, (l) => {
        l.grant(grantInput('5'), T0);
        l.placeHold({ amount: Amount.parse('1'), expiresAt: T0 + HOUR }, T0);
      });
      await actOn(other('idle'), T0, (l) => l.grant(grantInput('5', { expiresAt: T0 + 9 * HOUR }), T0));
      const due = await storage.findDueLedgers(T0 + 4 * HOUR, 10);
      expect(due.map((k) => k.customerId).sort()).toEqual(['act', 'exp', 'hold']);
      expect((await storage.findDueLedgers(T0 + 4 * HOUR, 1)).length).toBe(1);
      expect(await storage.findDueLedgers(T0 + HOUR - 1, 10)).toEqual([]);
      for (const k of due) await actOn(k, T0 + 4 * HOUR, () => undefined);
      expect(await storage.findDueLedgers(T0 + 4 * HOUR, 10)).toEqual([]);
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
        // A cache change with no entry behind it: a change set no engine would hand over.
        const g = { ...ledger.grants.get(grant.id)!, available: Amount.parse('11') };
        const changes: LedgerChanges = {
          ...ledger.takeChanges(),
          grants: [{ grant: g, change: 'amounts' }],
          openGrants: [g],
        };
        await tx.saveLedger(key.workspaceId, changes, T0);
      });
      const report = await reconcileLedger(storage);
      expect(report.ok).toBe(false);
      expect(report.failures.map((f) => [f.check, f.account])).toContainEqual([
        'account_balance',
        `grant:${grant.id}`,
      ]);
      expect(report.failures.map((f) => f.check)).toContain('grant_bounds');
    });

    it('stores features (replaceable), immutable plan versions, packs, and pages them by id', async () => {
      const feature = {
        workspaceId: 'ws1',
        id: 'gpt-x',
        type: 'metered' as const,
        name: null,
        creditType: 'credits',
        rateIds: ['r1'],
        creditsPerUse: null,
        metadata: { tier: 'a' },
        createdAt: T0,
        updatedAt: T0,
        archivedAt: null,
      };
      const plan = {
        workspaceId: 'ws1',
        id: 'pro',
        version: 1,
        name: 'Pro',
        timeZone: 'Europe/Berlin',
        billingPeriod: 'P1M' as const,
        entitlements: [
          {
            featureId: 'gpt-x',
            usageLimit: { amount: Amount.parse('1000.5'), period: 'P1D' as const },
            config: null,
            overage: { max: null },
          },
        ],
        allowances: [
          {
            creditType: 'credits',
            amount: Amount.parse('500'),
            period: 'P1M' as const,
            priority: 5,
            rollover: { max: null, maxPercent: Amount.parse('12.5'), expiresAfterPeriods: 2 },
            appliesTo: ['gpt-x'],
          },
        ],
        price: { amount: Amount.parse('29'), currency: 'USD' },
        metadata: {},
        createdAt: T0,
      };
      await storage.write('catalog', async (tx) => {
        expect(await tx.plans.insertFeature(feature)).toBe(true);
        expect(await tx.plans.insertFeature({ ...feature, name: 'dup' })).toBe(false);
        await tx.plans.updateFeature({
          ...feature,
          creditsPerUse: Amount.parse('5'),
          rateIds: [],
          updatedAt: T0 + 1,
        });
        expect(await tx.plans.insertFeature({ ...feature, id: 'sso', type: 'boolean', rateIds: [] })).toBe(
          true,
        );
        expect(await tx.plans.insertPlanVersion(plan)).toBe(true);
        expect(await tx.plans.insertPlanVersion(plan)).toBe(false);
        expect(await tx.plans.insertPlanVersion({ ...plan, version: 2, name: 'Pro 2' })).toBe(true);
        expect(await tx.plans.insertPlanVersion({ ...plan, id: 'basic' })).toBe(true);
      });
      const read = storage.read.plans;
      expect(plain(await read.getFeature('ws1', 'gpt-x'))).toEqual(
        plain({ ...feature, creditsPerUse: Amount.parse('5'), rateIds: [], updatedAt: T0 + 1 }),
      );
      expect(await read.getFeature('ws2', 'gpt-x')).toBeNull();
      const features = await read.listFeatures('ws1', fromStart(1));
      expect(features.items.map((f) => f.id)).toEqual(['gpt-x']);
      expect(
        (await read.listFeatures('ws1', { after: features.nextAfter, limit: 5 })).items.map((f) => f.id),
      ).toEqual(['sso']);
      expect((await walk((p) => read.listFeatures('ws1', p), 1)).pages).toBe(2);
      await refusesForeignKey((p) => read.listFeatures('ws1', p));
      expect(plain(await read.getPlanVersion('ws1', 'pro', 1))).toEqual(plain(plan));
      expect((await read.getPlanVersion('ws1', 'pro', null))?.name).toBe('Pro 2');
      const plans = await read.listPlans('ws1', fromStart(10));
      expect(plans.items.map((p) => [p.id, p.version])).toEqual([
        ['basic', 1],
        ['pro', 2],
      ]);
      expect(plans.nextAfter).toBeNull();
      const walked = await walk((p) => read.listPlans('ws1', p), 1);
      expect(walked.items.map((p) => [p.id, p.version])).toEqual([
        ['basic', 1],
        ['pro', 2],
      ]);
      await refusesForeignKey((p) => read.listPlans('ws1', p));
    });

    it('stores subscriptions and finds those due, per customer and across customers', async () => {
      const sub = {
        workspaceId: 'ws1',
        id: 'sub_1',
        customerId: 'acme',
        planId: 'pro',
        planVersion: 1,
        status: 'active' as const,
        anchorAt: T0,
        timeZone: 'UTC',
        nextAllowancePeriod: [1, 3],
        grantedCreditTypes: ['credits'],
        cancelAt: null,
        endedAt: null,
        pendingChange: { planId: 'basic', planVersion: 2, at: T0 + 5 * HOUR },
        nextDueAt: T0 + HOUR,
        createdAt: T0,
        updatedAt: T0,
      };
      await storage.write('acme', async (tx) => {
        await tx.plans.saveSubscription(sub);
        await tx.plans.saveSubscription({ ...sub, id: 'sub_2', nextDueAt: null, status: 'canceled' });
      });
      const read = storage.read.plans;
      expect(plain(await read.getSubscription('ws1', 'sub_1'))).toEqual(plain(sub));
      expect((await read.subscriptionsOf('ws1', 'acme')).map((s) => s.id)).toEqual(['sub_1', 'sub_2']);
      const listed = await walk((p) => read.listSubscriptions('ws1', 'acme', p), 1);
      expect(listed.items.map((s) => s.id)).toEqual(['sub_1', 'sub_2']);
      expect(plain(listed.items[0])).toEqual(plain(sub));
      expect((await read.listSubscriptions('ws1', 'other', fromStart(10))).items).toEqual([]);
      await refusesForeignKey((p) => read.listSubscriptions('ws1', 'acme', p));
      expect(await read.dueSubscriptionsOf('ws1', 'acme', T0)).toEqual([]);
      expect((await read.dueSubscriptionsOf('ws1', 'acme', T0 + HOUR)).map((s) => s.id)).toEqual(['sub_1']);
      expect(await read.findDueSubscriptions(T0 + HOUR, 10)).toEqual([
        { workspaceId: 'ws1', customerId: 'acme' },
      ]);
      await storage.write('acme', async (tx) =>
        tx.plans.saveSubscription({ ...sub, nextDueAt: T0 + 2 * HOUR }),
      );
      expect(await read.findDueSubscriptions(T0 + HOUR, 10)).toEqual([]);
    });

    it('stores packs, purchases (paged oldest first), auto top-up rules and feature usage exactly', async () => {
      const pack = {
        workspaceId: 'ws1',
        id: '10k',
        name: null,
        creditType: 'credits',
        credits: Amount.parse('10000'),
        price: { amount: Amount.parse('99.99'), currency: 'EUR' },
        volumeDiscounts: [{ minQuantity: 5, percentOff: Amount.parse('7.5') }],
        expiresAfterDays: 365,
        priority: 10,
        createdAt: T0,
      };
      const purchase = (id: string, at: number) => ({
        workspaceId: 'ws1',
        id,
        customerId: 'acme',
        packId: '10k',
        quantity: 2,
        credits: Amount.parse('20000'),
        priceAmount: Amount.parse('199.98'),
        currency: 'EUR',
        percentOff: Amount.ZERO,
        grantId: `grt_${id}`,
        source: 'api' as const,
        createdAt: at,
      });
      const rule = {
        workspaceId: 'ws1',
        customerId: 'acme',
        enabled: true,
        threshold: Amount.parse('100.25'),
        packId: '10k',
        quantity: 1,
        maxPerPeriod: 3,
        period: 'P1M' as const,
        provider: 'stripe' as const,
        anchorAt: T0,
        periodStart: T0,
        countInPeriod: 2,
        createdAt: T0,
        updatedAt: T0,
      };
      await storage.write('acme', async (tx) => {
        expect(await tx.plans.insertCreditPack(pack)).toBe(true);
        expect(await tx.plans.insertCreditPack(pack)).toBe(false);
        await tx.plans.insertPurchase(purchase('pur_b', T0 + 1));
        await tx.plans.insertPurchase(purchase('pur_a', T0 + 2));
        await tx.plans.insertPurchase(purchase('pur_c', T0 + 2));
        await tx.plans.putAutoTopUp(rule);
        await tx.plans.putAutoTopUp({ ...rule, countInPeriod: 3 });
        await tx.plans.setFeatureUsage('ws1', 'acme', 'gpt-x', T0, Amount.parse('0.000000000001'));
        await tx.plans.setFeatureUsage('ws1', 'acme', 'gpt-x', T0, Amount.parse('123456789012.5'));
      });
      const read = storage.read.plans;
      expect(plain(await read.getCreditPack('ws1', '10k'))).toEqual(plain(pack));
      const page1 = await read.listPurchases('ws1', 'acme', fromStart(2));
      expect(page1.items.map((p) => p.id)).toEqual(['pur_b', 'pur_a']);
      expect(plain(page1.items[0])).toEqual(plain(purchase('pur_b', T0 + 1)));
      const rest = await read.listPurchases('ws1', 'acme', { after: page1.nextAfter, limit: 2 });
      expect(rest.items.map((p) => p.id)).toEqual(['pur_c']);
      expect(rest.nextAfter).toBeNull();
      // Ties on the creation instant are broken by id: one at a time, nothing is skipped.
      const walked = await walk((p) => read.listPurchases('ws1', 'acme', p), 1);
      expect(walked.items.map((p) => p.id)).toEqual(['pur_b', 'pur_a', 'pur_c']);
      await refusesForeignKey((p) => read.listPurchases('ws1', 'acme', p));
      expect((await read.listCreditPacks('ws1', fromStart(10))).items.map((p) => p.id)).toEqual(['10k']);
      await refusesForeignKey((p) => read.listCreditPacks('ws1', p));
      expect(plain(await read.getAutoTopUp('ws1', 'acme'))).toEqual(plain({ ...rule, countInPeriod: 3 }));
      expect(plain(await read.customerUpkeep('ws1', 'acme', T0))).toEqual(
        plain({
          balanceThresholds: false,
          subscriptionsDue: false,
          autoTopUp: { ...rule, countInPeriod: 3 },
        }),
      );
      // A write's first read: the same upkeep and the same ledger as the two separate reads.
      const ledgerKey = { workspaceId: 'ws1', customerId: 'acme', creditType: 'credits' };
      const [combined, upkeep, ledger] = await storage.write('acme', async (tx) => [
        await tx.loadCustomerWrite(ledgerKey, T0),
        await tx.plans.customerUpkeep('ws1', 'acme', T0),
        await tx.loadLedgerForUpdate(ledgerKey),
      ]);
      expect(plain(combined)).toEqual(plain({ upkeep, ledger }));
      expect((await read.getFeatureUsage('ws1', 'acme', 'gpt-x', T0)).toString()).toBe('123456789012.5');
      expect((await read.getFeatureUsage('ws1', 'acme', 'gpt-x', T0 + 1)).toString()).toBe('0');
    });

    it('stores events with their status, counts duplicates, lists and pages them, and marks reversals', async () => {
      const ev = (id: string, time: number, more: Record<string, unknown> = {}) => ({
        workspaceId: 'ws1',
        eventKey: `id:${id}`,
        id,
        source: null,
        type: 't',
        customerId: 'acme',
        time,
        data: { n: 1 },
        rulesSeq: 0,
        receivedAt: T0,
        unmetered: false,
        ...more,
      });
      await storage.write('acme', async (tx) => {
        const inserted = await tx.insertEvents([
          ev('b', T0 + 2),
          ev('a', T0 + 2, { unmetered: true }),
          ev('old', -5_000),
          ev('c', T0 + 9, { customerId: 'other', type: 'u' }),
        ]);
        expect([...inserted].sort()).toEqual(['id:a', 'id:b', 'id:c', 'id:old']);
        expect([...(await tx.insertEvents([ev('a', T0)]))]).toEqual([]);
        await tx.countDuplicates('ws1', ['id:a', 'id:a', 'id:b']);
        await tx.insertBurns([
          {
            workspaceId: 'ws1',
            eventKey: 'id:b',
            rateId: 'r',
            customerId: 'acme',
            debitId: null,
            quantity: Amount.parse('1'),
            credits: Amount.ZERO,
            createdAt: T0,
          },
        ]);
      });
      const q: EventListQuery = {
        workspaceId: 'ws1',
        customerId: null,
        type: null,
        from: null,
        to: null,
        status: null,
      };
      const ids = async (query: Partial<EventListQuery>, limit = 10, after: ResumeKey | null = null) =>
        (await storage.read.listEvents({ ...q, ...query }, { after, limit })).items.map((e) => e.id);
      expect(await ids({})).toEqual(['old', 'a', 'b', 'c']);
      expect(await ids({ status: 'unmetered' })).toEqual(['a']);
      expect(await ids({ status: 'burned' })).toEqual(['old', 'b', 'c']);
      expect(await ids({ status: 'duplicate' })).toEqual(['a', 'b']);
      expect(await ids({ customerId: 'other' })).toEqual(['c']);
      expect(await ids({ type: 'u' })).toEqual(['c']);
      expect(await ids({ from: T0 + 2, to: T0 + 9 })).toEqual(['a', 'b']);
      const first = await storage.read.listEvents(q, { after: null, limit: 1 });
      expect(first.items.map((e) => e.id)).toEqual(['old']);
      expect(await ids({}, 2, first.nextAfter)).toEqual(['a', 'b']);
      const a = await storage.read.getEvent('ws1', 'id:a');
      expect(a).toMatchObject({ id: 'a', unmetered: true, duplicates: 2, reversedAt: null, data: { n: 1 } });
      expect((await storage.read.burnsOfEvents('ws1', ['id:a', 'id:b'])).map((b) => b.eventKey)).toEqual([
        'id:b',
      ]);
      // A reversed event is marked once and leaves the scans meters read.
      await storage.write('acme', async (tx) => {
        expect(await tx.markEventReversed('ws1', 'id:b', T0 + 100)).toBe(true);
        expect(await tx.markEventReversed('ws1', 'id:b', T0 + 200)).toBe(false);
      });
      expect((await storage.read.getEvent('ws1', 'id:b'))?.reversedAt).toBe(T0 + 100);
      const scanned: string[] = [];
      for await (const e of storage.read.scanEvents({
        workspaceId: 'ws1',
        type: 't',
        customerId: null,
        from: null,
        to: null,
      }))
        scanned.push(e.id);
      expect(scanned).toEqual(['old', 'a']);
    });

    it('stores what was reversed of a debit with the ledger that reversed it', async () => {
      const grant = await act(T0, (l) => l.grant(grantInput('10'), T0));
      const debit = await act(T0, (l) => l.debit({ amount: Amount.parse('6'), allowOverage: false }, T0));
      if ('refused' in debit) throw new Error('refused');
      const stored = await storage.read.getDebit('ws1', debit.id);
      expect(stored?.reversed).toEqual({
        overage: Amount.ZERO,
        byGrant: new Map(),
        paidBack: new Map(),
        quantity: Amount.ZERO,
        history: [],
      });
      await act(T0 + 1, (l) => {
        const outcome = l.reverse({ target: stored!, amount: Amount.parse('2.5'), reason: 'why' }, T0 + 1);
        expect('refused' in outcome).toBe(false);
      });
      const after = await storage.read.getDebit('ws1', debit.id);
      expect(plain([...after!.reversed.byGrant])).toEqual([[grant.id, '2.5']]);
      expect(after!.reversed.history.map((r) => [r.amount.toString(), r.reason, r.at])).toEqual([
        ['2.5', 'why', T0 + 1],
      ]);
      expect((await storage.read.loadLedger(key)).grants[0]?.available.toString()).toBe('6.5');
      expect((await reconcileLedger(storage)).failures).toEqual([]);
    });

    it("stores a debit's quantity, the settlement history corrections read, and paid overage refunded", async () => {
      const debit = await act(T0, (l) =>
        l.debit(
          { amount: Amount.parse('3'), allowOverage: true, featureId: 'f', quantity: Amount.parse('2.5') },
          T0,
        ),
      );
      if ('refused' in debit) throw new Error('refused');
      const g1 = await act(T0 + 1, (l) => l.grant(grantInput('2'), T0 + 1)); // pays 2 of the 3 owed
      const g2 = await act(T0 + 2, (l) => l.grant(grantInput('5'), T0 + 2)); // pays 1
      const stored = await storage.read.getDebit('ws1', debit.id);
      expect(stored?.debit.quantity?.toString()).toBe('2.5');
      expect(stored?.debit.featureId).toBe('f');
      const history = await storage.write('acme', async (tx) => await tx.settlementHistoryOf(key));
      expect(history.settlements.map((s) => [s.grantId, s.amount.toString()])).toEqual([
        [g1.id, '2'],
        [g2.id, '1'],
      ]);
      expect(history.refunded.size).toBe(0);
      await storage.write('acme', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
        for (const g of await tx.getGrantsByIds('ws1', [g1.id])) ledger.adoptGrant(g);
        ledger.advanceTo(T0 + 3);
        ledger.loadSettlements(await tx.settlementHistoryOf(key));
        const outcome = ledger.reverse({ target: stored!, amount: Amount.parse('2'), reason: 'why' }, T0 + 3);
        if ('refused' in outcome) throw new Error('refused');
        expect(outcome.parts.map((p) => [p.kind, p.grantId, p.amount.toString()])).toEqual([
          ['paid_overage', g2.id, '1'],
          ['paid_overage', g1.id, '1'],
        ]);
        expect(outcome.quantityReturned?.toString()).toBe('1.666666666666');
        await tx.saveLedger(key.workspaceId, ledger.takeChanges(), T0 + 3);
      });
      const after = await storage.read.getDebit('ws1', debit.id);
      expect(plain([...after!.reversed.paidBack])).toEqual([
        [g2.id, '1'],
        [g1.id, '1'],
      ]);
      expect(after!.reversed.quantity.toString()).toBe('1.666666666666');
      const refunded = (await storage.write('acme', async (tx) => await tx.settlementHistoryOf(key)))
        .refunded;
      expect(plain([...refunded])).toEqual([
        [g2.id, '1'],
        [g1.id, '1'],
      ]);
      expect((await reconcileLedger(storage)).failures).toEqual([]);
    });
    it('stores balance thresholds by scope, their per-customer state, the granted total and expiry notices', async () => {
      const threshold = (id: string, customerId: string | null, creditType = 'credits', createdAt = T0) => ({
        workspaceId: 'ws1',
        id,
        customerId,
        creditType,
        kind: 'amount' as const,
        value: Amount.parse('12.5'),
        createdAt,
      });
      await storage.write('acme', async (tx) => {
        await tx.alerts.insertThreshold(threshold('thr_own', 'acme'));
        await tx.alerts.insertThreshold(threshold('thr_default', null, 'credits', T0 + 1));
        await tx.alerts.insertThreshold(threshold('thr_gold', null, 'gold'));
        await tx.alerts.insertThreshold(threshold('thr_other', 'beta'));
      });
      expect(plain(await storage.read.alerts.getThreshold('ws1', 'thr_own'))).toEqual(
        plain(threshold('thr_own', 'acme')),
      );
      expect(await storage.read.alerts.getThreshold('ws2', 'thr_own')).toBeNull();
      const ids = async (customerId: string | null, creditType: string | null) =>
        (await storage.read.alerts.listThresholds({ workspaceId: 'ws1', customerId, creditType })).map(
          (t) => t.id,
        );
      expect(await ids(null, null)).toEqual(['thr_gold', 'thr_default']);
      expect(await ids(null, 'credits')).toEqual(['thr_default']);
      expect(await ids('acme', null)).toEqual(['thr_own']);
      // What may apply to acme's credits (its own and the defaults), with state: none fired yet.
      const forLedger = async () =>
        (await storage.write('acme', async (tx) => tx.alerts.thresholdsForLedger(key)))
          .map((c) => [c.threshold.id, c.fired])
          .sort();
      expect(await forLedger()).toEqual([
        ['thr_default', false],
        ['thr_own', false],
      ]);
      await storage.write('acme', async (tx) => {
        await tx.alerts.markThresholdFired('ws1', 'thr_own', 'acme', T0);
        await tx.alerts.markThresholdFired('ws1', 'thr_own', 'acme', T0 + 1); // already fired: no change
        await tx.alerts.markThresholdFired('ws1', 'thr_default', 'beta', T0);
      });
      expect(await forLedger()).toEqual([
        ['thr_default', false],
        ['thr_own', true],
      ]);
      await storage.write('acme', async (tx) => tx.alerts.markThresholdRecovered('ws1', 'thr_own', 'acme'));
      expect(await forLedger()).toEqual([
        ['thr_default', false],
        ['thr_own', false],
      ]);
      // Runway thresholds of every workspace, by (workspace, id), after a key; reads see state too.
      await storage.write('acme', async (tx) => {
        await tx.alerts.insertThreshold({ ...threshold('thr_run_b', null), kind: 'runway_hours' });
        await tx.alerts.insertThreshold({ ...threshold('thr_run_a', 'acme'), kind: 'runway_hours' });
        await tx.alerts.insertThreshold({
          ...threshold('thr_run_c', null),
          workspaceId: 'ws2',
          kind: 'runway_hours',
        });
      });
      const runway = async (after: { workspaceId: string; id: string } | null, limit: number) =>
        (
          await storage.read.alerts.runwayThresholds({
            after: after === null ? null : [after.workspaceId, after.id],
            limit,
          })
        ).items.map((t) => [t.workspaceId, t.id, t.kind]);
      expect(await runway(null, 10)).toEqual([
        ['ws1', 'thr_run_a', 'runway_hours'],
        ['ws1', 'thr_run_b', 'runway_hours'],
        ['ws2', 'thr_run_c', 'runway_hours'],
      ]);
      expect(await runway({ workspaceId: 'ws1', id: 'thr_run_a' }, 1)).toEqual([
        ['ws1', 'thr_run_b', 'runway_hours'],
      ]);
      expect(await runway({ workspaceId: 'ws1', id: 'thr_run_b' }, 10)).toEqual([
        ['ws2', 'thr_run_c', 'runway_hours'],
      ]);
      expect((await storage.read.alerts.thresholdsForLedger(key)).map((c) => c.threshold.id).sort()).toEqual([
        'thr_default',
        'thr_own',
        'thr_run_a',
        'thr_run_b',
      ]);
      await storage.write('acme', async (tx) => {
        for (const [ws, id] of [
          ['ws1', 'thr_run_a'],
          ['ws1', 'thr_run_b'],
          ['ws2', 'thr_run_c'],
        ] as const)
          await tx.alerts.deleteThreshold(ws, id);
      });
      expect(await storage.write('acme', async (tx) => tx.alerts.deleteThreshold('ws1', 'thr_own'))).toBe(
        true,
      );
      expect(await storage.write('acme', async (tx) => tx.alerts.deleteThreshold('ws1', 'thr_own'))).toBe(
        false,
      );
      expect(await forLedger()).toEqual([['thr_default', false]]);

      // Granted in force: effective, not expired or voided, depleted grants included.
      await act(T0, (l) => {
        l.grant(grantInput('100.5'), T0);
        l.debit({ amount: Amount.parse('100.5'), allowOverage: false }, T0);
      });
      await act(T0, (l) => {
        l.grant(grantInput('10', { expiresAt: T0 + HOUR }), T0);
        l.grant(grantInput('7', { effectiveAt: T0 + 2 * HOUR }), T0);
      });
      const granted = (at: number) => storage.write('acme', async (tx) => tx.alerts.grantedInForce(key, at));
      expect((await granted(T0)).toString()).toBe('110.5');
      expect((await granted(T0 + 2 * HOUR)).toString()).toBe('107.5');

      // Expiry notices: open grants expiring within the lead, each noticed once per lead.
      const expiring = (now: number, lead: number) =>
        storage.write('acme', async (tx) => tx.alerts.expiringWithoutNotice(now, lead, 10));
      const soon = await expiring(T0, 2 * HOUR);
      expect(soon.map((g) => [g.customerId, g.creditType, g.expiresAt, g.remaining.toString()])).toEqual([
        ['acme', 'credits', T0 + HOUR, '10'],
      ]);
      expect(await expiring(T0, HOUR / 2)).toEqual([]);
      const grantId = soon[0]?.grantId ?? '';
      expect(
        await storage.write('acme', async (tx) => tx.alerts.recordExpiryNotice('ws1', grantId, 2 * HOUR, T0)),
      ).toBe(true);
      expect(
        await storage.write('acme', async (tx) => tx.alerts.recordExpiryNotice('ws1', grantId, 2 * HOUR, T0)),
      ).toBe(false);
      expect(await expiring(T0, 2 * HOUR)).toEqual([]);
      expect((await expiring(T0, 3 * HOUR)).map((g) => g.grantId)).toEqual([grantId]);
    });
    it('appends outbox facts with the transaction that wrote them, in insertion order per workspace', async () => {
      const fact = (id: string, workspaceId = 'ws1') => ({
        id,
        workspaceId,
        type: 'grant.created',
        customerId: 'acme',
        occurredAt: T0,
        data: { grant: { id, amount: '10.5' }, nested: [1, 'two', null] },
      });
      await storage.write('acme', async (tx) =>
        tx.outbox.append([fact('evt_1'), fact('evt_2'), fact('evt_x', 'ws2')]),
      );
      await expect(
        storage.write('acme', async (tx) => {
          await tx.outbox.append([fact('evt_3')]);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await storage.write('acme', async (tx) => tx.outbox.append([fact('evt_4')]));
      const all = await storage.read.outbox.listAfter('ws1', 0, 10);
      expect(all.map((r) => r.id)).toEqual(['evt_1', 'evt_2', 'evt_4']);
      expect(all[0]).toEqual({ ...fact('evt_1'), seq: all[0]?.seq });
      const rest = await storage.read.outbox.listAfter('ws1', all[0]?.seq ?? 0, 1);
      expect(rest.map((r) => r.id)).toEqual(['evt_2']);
      expect((await storage.read.outbox.listAfter('ws2', 0, 10)).map((r) => r.id)).toEqual(['evt_x']);
    });
    it('webhooks: endpoints, fan-out once, claims leased to one owner in customer order, attempts and deletion', async () => {
      const endpoint = {
        workspaceId: 'ws1',
        id: 'ep_1',
        url: 'https://example.com/hook',
        description: null,
        eventTypes: ['grant.created'],
        enabled: true,
        disabledReason: null,
        secret: 'whsec_c2VjcmV0',
        previousSecret: null,
        previousSecretUntil: null,
        failingSince: null,
        createdAt: T0,
        updatedAt: T0,
      } as const;
      const fact = (id: string) => ({
        id,
        workspaceId: 'ws1',
        type: 'grant.created',
        customerId: 'acme',
        occurredAt: T0 + 1,
        data: { amount: '1' },
      });
      await storage.write('ep', async (tx) => {
        await tx.webhooks.insertEndpoint(endpoint);
        await tx.outbox.append([fact('evt_a'), fact('evt_b')]);
      });
      expect(await storage.read.webhooks.getEndpoint('ws1', 'ep_1')).toEqual(endpoint);
      expect((await storage.read.webhooks.listEndpoints('ws1', fromStart(10))).items).toEqual([endpoint]);
      await refusesForeignKey((p) => storage.read.webhooks.listEndpoints('ws1', p));
      // Fan-out: each event is handed out once.
      const events = await storage.write('fan', async (tx) => {
        const claimed = await tx.webhooks.claimEventsToFanOut(10);
        await tx.webhooks.insertDeliveries(
          claimed.map((e) => ({
            id: `dlv_${e.id}`,
            workspaceId: 'ws1',
            endpointId: 'ep_1',
            eventId: e.id,
            eventSeq: e.seq,
            customerId: e.customerId,
            replay: false,
            state: 'pending' as const,
            attempts: 0,
            nextAttemptAt: T0 + 1,
            createdAt: T0 + 1,
          })),
        );
        await tx.webhooks.markFannedOut(claimed.map((e) => e.seq));
        return claimed;
      });
      expect(events.map((e) => e.id)).toEqual(['evt_a', 'evt_b']);
      expect(await storage.write('fan', async (tx) => tx.webhooks.claimEventsToFanOut(10))).toEqual([]);
      // Claims: only the customer's first pending delivery, leased to one owner.
      const claim = (owner: string, now: number) =>
        storage.write(owner, async (tx) =>
          tx.webhooks.claimDueDeliveries({ now, owner, leaseUntil: now + 1000, limit: 10 }),
        );
      const first = await claim('one', T0 + 1);
      expect(first.map((c) => c.delivery.eventId)).toEqual(['evt_a']);
      expect(first[0]?.endpoint.url).toBe(endpoint.url);
      expect(first[0]?.event.data).toEqual({ amount: '1' });
      expect(await claim('two', T0 + 2)).toEqual([]);
      const attempt = {
        id: 'att_1',
        workspaceId: 'ws1',
        deliveryId: 'dlv_evt_a',
        endpointId: 'ep_1',
        eventId: 'evt_a',
        attempt: 1,
        attemptedAt: T0 + 2,
        statusCode: 200,
        latencyMs: 12,
        responseExcerpt: 'ok',
        error: null,
        outcome: 'delivered' as const,
      };
      const update = {
        deliveryId: 'dlv_evt_a',
        state: 'delivered' as const,
        attempts: 1,
        nextAttemptAt: T0 + 1,
        finishedAt: T0 + 2,
      };
      // A dispatcher that does not hold the lease records its attempt but changes nothing.
      expect(
        await storage.write('two', async (tx) =>
          tx.webhooks.finishAttempt({ ...attempt, id: 'att_0' }, { ...update, owner: 'two' }),
        ),
      ).toBe(false);
      expect(
        await storage.write('one', async (tx) =>
          tx.webhooks.finishAttempt(attempt, { ...update, owner: 'one' }),
        ),
      ).toBe(true);
      const next = await claim('two', T0 + 3);
      expect(next.map((c) => c.delivery.eventId)).toEqual(['evt_b']);
      // A lease that expired is taken over.
      expect((await claim('three', T0 + 3 + 1000)).map((c) => c.delivery.eventId)).toEqual(['evt_b']);
      const log = await storage.read.webhooks.listAttempts('ws1', { endpointId: 'ep_1' }, fromStart(10));
      expect(log.items.map((a) => a.id)).toEqual(['att_0', 'att_1']);
      expect(log.items[1]).toEqual(attempt);
      const walked = await walk(
        (p) => storage.read.webhooks.listAttempts('ws1', { endpointId: 'ep_1' }, p),
        1,
      );
      expect(walked.items.map((a) => a.id)).toEqual(['att_0', 'att_1']);
      await refusesForeignKey((p) => storage.read.webhooks.listAttempts('ws1', { eventId: 'evt_a' }, p));
      // Replays read the outbox by time range, paged the same way.
      const between = (range: { from: number; to: number }) =>
        storage.write('replay', async (tx) => walk((p) => tx.webhooks.eventsBetween('ws1', range, p), 1));
      expect((await between({ from: T0, to: T0 + 2 })).items.map((e) => e.id)).toEqual(['evt_a', 'evt_b']);
      expect((await between({ from: T0 + 2, to: T0 + 3 })).items).toEqual([]);
      expect((await storage.read.webhooks.deliveriesOfEvent('ws1', 'evt_a'))[0]?.state).toBe('delivered');
      // Newest first, by outcome, before an id, with the event's type and the delivery's state now.
      const recent = async (
        beforeId: string,
        outcomes: readonly ('delivered' | 'retry')[] | null,
        limit = 10,
      ) =>
        (
          await storage.read.webhooks.recentAttempts('ws1', ['ep_1'], outcomes, {
            after: beforeId === '' ? null : [beforeId],
            limit,
          })
        ).items.map((a) => [a.id, a.eventType, a.deliveryState]);
      expect(await recent('', null)).toEqual([
        ['att_1', 'grant.created', 'delivered'],
        ['att_0', 'grant.created', 'delivered'],
      ]);
      expect(await recent('', null, 1)).toEqual([['att_1', 'grant.created', 'delivered']]);
      expect(await recent('att_1', null)).toEqual([['att_0', 'grant.created', 'delivered']]);
      expect(await recent('', ['retry'])).toEqual([]);
      expect(await recent('', ['retry', 'delivered'])).toHaveLength(2);
      expect(
        (await storage.read.webhooks.recentAttempts('ws2', ['ep_1'], null, { after: null, limit: 10 })).items,
      ).toEqual([]);
      // One page of two endpoints' attempts says where the next resumes (a key of another shape is a 400).
      const firstOfOne = await storage.read.webhooks.recentAttempts('ws1', ['ep_1', 'ep_none'], null, {
        after: null,
        limit: 1,
      });
      expect(firstOfOne.nextAfter).not.toBeNull();
      await expect(
        Promise.resolve(
          storage.read.webhooks.recentAttempts('ws1', ['ep_1'], null, { after: ['a', 'b'], limit: 1 }),
        ),
      ).rejects.toThrow('cursor');
      // Deleting cancels what is pending and hides the endpoint; claims skip it.
      expect(await storage.write('ep', async (tx) => tx.webhooks.deleteEndpoint('ws1', 'ep_1', T0 + 5))).toBe(
        true,
      );
      expect(await storage.read.webhooks.getEndpoint('ws1', 'ep_1')).toBeNull();
      expect((await storage.read.webhooks.deliveriesOfEvent('ws1', 'evt_b'))[0]?.state).toBe('canceled');
      expect(await claim('four', T0 + 10_000)).toEqual([]);
      expect(await storage.write('ep', async (tx) => tx.webhooks.deleteEndpoint('ws1', 'ep_1', T0 + 6))).toBe(
        false,
      );
    });

    it('finance: paid grants by ledger, breakage policies, import records and export pages', async () => {
      await storage.write('beta', async (tx) => {
        await tx.insertCustomer({ workspaceId: 'ws1', id: 'beta', name: null, metadata: {}, createdAt: T0 });
      });
      const usd = { amount: Amount.parse('10'), currency: 'USD' };
      const paid = await act(T0, (l) => l.grant(grantInput('100', { costBasis: usd }), T0));
      await act(T0, (l) => l.grant(grantInput('5', { category: 'promotional' }), T0));
      await act(T0 + 1, (l) => l.grant(grantInput('7', { costBasis: null }), T0 + 1));
      await act(T0 + 2, (l) => l.debit({ amount: Amount.parse('3'), allowOverage: false }, T0 + 2));
      const betaKey = { ...key, customerId: 'beta' };
      const betaGrant = await storage.write('beta', async (tx) => {
        const ledger = new CreditLedger(await tx.loadLedgerForUpdate(betaKey), ids);
        const g = ledger.grant(grantInput('1', { costBasis: usd }), T0 + 3);
        await tx.saveLedger('ws1', ledger.takeChanges(), T0 + 3);
        return g;
      });
      // Only paid grants with a cost basis, created before the bound, in (customer, credit type, id) order, paged.
      const first = await storage.read.finance.paidGrants(
        { workspaceId: 'ws1', customerId: null, createdBefore: T0 + 10 },
        { after: null, limit: 1 },
      );
      expect(first.items.map((g) => g.id)).toEqual([paid.id]);
      const second = await storage.read.finance.paidGrants(
        { workspaceId: 'ws1', customerId: null, createdBefore: T0 + 10 },
        { after: first.nextAfter, limit: 1 },
      );
      expect(second.items.map((g) => g.id)).toEqual([betaGrant.id]);
      expect(
        (
          await storage.read.finance.paidGrants(
            { workspaceId: 'ws1', customerId: null, createdBefore: T0 + 3 },
            { after: null, limit: 10 },
          )
        ).items.map((g) => g.id),
      ).toEqual([paid.id]);

      // Policies: a workspace default and per-pack overrides, replaced and removed.
      const proportional = { policy: 'proportional' as const, expectedBreakageRate: Amount.parse('0.125') };
      await storage.write('settings', async (tx) => {
        await tx.finance.putRevenuePolicy('ws1', null, proportional, T0);
        await tx.finance.putRevenuePolicy('ws1', 'pack-a', proportional, T0);
        await tx.finance.putRevenuePolicy('ws1', 'pack-b', proportional, T0);
        await tx.finance.putRevenuePolicy(
          'ws1',
          'pack-b',
          { policy: 'at_expiry', expectedBreakageRate: Amount.ZERO },
          T0,
        );
        await tx.finance.putRevenuePolicy('ws1', 'pack-a', null, T0);
      });
      const policies = await storage.read.finance.revenuePolicies('ws1');
      expect(plain(policies.workspaceDefault)).toEqual(plain(proportional));
      expect(plain([...policies.byPack.entries()])).toEqual([
        ['pack-b', { policy: 'at_expiry', expectedBreakageRate: '0' }],
      ]);
      expect((await storage.read.finance.revenuePolicies('ws2')).workspaceDefault).toBeNull();

      // The policy recorded on a grant at its sale: read back per workspace, unknown grants left out.
      await storage.write('settings', async (tx) =>
        tx.finance.insertGrantRevenuePolicy('ws1', paid.id, proportional, T0),
      );
      expect(
        plain([...(await storage.read.finance.grantRevenuePolicies('ws1', [paid.id, 'grt_none'])).entries()]),
      ).toEqual([[paid.id, { policy: 'proportional', expectedBreakageRate: '0.125' }]]);
      expect((await storage.read.finance.grantRevenuePolicies('ws2', [paid.id])).size).toBe(0);

      // Import records: found by external id; a second insert of the same id fails (and rolls back).
      const record = {
        workspaceId: 'ws1',
        kind: 'grants',
        externalId: 'x-1',
        objectId: paid.id,
        createdAt: T0,
      };
      await storage.write('imports', async (tx) => tx.finance.insertImportRecord(record));
      await expect(
        storage.write('imports', async (tx) => tx.finance.insertImportRecord(record)),
      ).rejects.toThrow();
      expect(await storage.read.finance.importRecords('ws1', 'grants', ['x-1', 'x-2'])).toEqual([record]);
      expect(await storage.read.finance.importRecords('ws1', 'customers', ['x-1'])).toEqual([]);

      // Export pages: entries in seq order with filters, resumable from the returned key.
      const query = { workspaceId: 'ws1', customerId: null, from: null, to: null };
      const entries = [];
      let after: ResumeKey | null = null;
      for (;;) {
        const page = await storage.read.finance.exportEntries(query, { after, limit: 2 });
        entries.push(...page.items);
        if (page.nextAfter === null) break;
        after = page.nextAfter;
      }
      expect(entries.map((e) => e.type)).toEqual(['grant', 'grant', 'grant', 'debit', 'grant']);
      expect(entries.map((e) => BigInt(e.seq))).toEqual(
        [...entries.map((e) => BigInt(e.seq))].sort((a, b) => (a < b ? -1 : 1)),
      );
      const betaOnly = await storage.read.finance.exportEntries(
        { ...query, customerId: 'beta' },
        { after: null, limit: 10 },
      );
      expect(betaOnly.items.map((e) => e.grantId)).toEqual([betaGrant.id]);
      const ranged = await storage.read.finance.exportEntries(
        { ...query, from: T0 + 1, to: T0 + 3 },
        { after: null, limit: 10 },
      );
      expect(ranged.items.map((e) => e.at)).toEqual([T0 + 1, T0 + 2]);
      const grants = await storage.read.finance.exportGrants(
        { ...query, customerId: 'acme' },
        { after: null, limit: 10 },
      );
      expect(grants.items).toHaveLength(3);
      expect(grants.items.every((g) => g.workspaceId === 'ws1')).toBe(true);
      expect((await storage.read.finance.exportEvents(query, { after: null, limit: 10 })).items).toEqual([]);
      expect((await storage.read.finance.exportUsage(query, { after: null, limit: 10 })).items).toEqual([]);
    });

    it('records Stripe events once, stores payments found by intent or charge, and waiting top-ups', async () => {
      const event = (id: string, receivedAt: number, status: 'processed' | 'ignored' | 'failed') => ({
        workspaceId: 'ws1',
        id,
        type: 'charge.refunded',
        status,
        reason: status === 'failed' ? 'no payment' : null,
        customerId: 'acme',
        objectId: 'ch_1',
        receivedAt,
      });
      const payment = {
        workspaceId: 'ws1',
        id: 'cs_1',
        customerId: 'acme',
        purchaseId: 'pur_1',
        grantId: 'grt_1',
        creditType: 'credits',
        credits: Amount.parse('100.000000000001'),
        amountMinor: 123_456_789_012n,
        currency: 'USD',
        paymentIntentId: 'pi_1',
        chargeId: null as string | null,
        refundedMinor: 0n,
        refundCredits: Amount.ZERO,
        disputeCredits: Amount.ZERO,
        dispute: null as null | {
          id: string;
          status: 'opened' | 'won' | 'lost';
          amountMinor: bigint;
          credits: Amount;
          holdId: string | null;
        },
        createdAt: T0,
        updatedAt: T0,
      };
      const topUp = {
        workspaceId: 'ws1',
        id: 'tpu_1',
        customerId: 'acme',
        packId: 'p1',
        quantity: 2,
        creditType: 'credits',
        priceAmount: Amount.parse('19.99'),
        currency: 'USD',
        status: 'pending' as 'pending' | 'succeeded' | 'failed',
        reason: null as string | null,
        providerRef: null as string | null,
        purchaseId: null as string | null,
        createdAt: T0,
        updatedAt: T0,
      };
      await storage.write('acme', async (tx) => {
        expect(await tx.payments.insertStripeEvent(event('evt_a', T0, 'processed'))).toBe(true);
        expect(await tx.payments.insertStripeEvent(event('evt_a', T0 + 9, 'failed'))).toBe(false);
        expect(await tx.payments.insertStripeEvent(event('evt_b', T0 + 1, 'failed'))).toBe(true);
        expect(await tx.payments.insertStripeEvent(event('evt_c', T0 + 2, 'ignored'))).toBe(true);
        await tx.payments.putPayment(payment);
        await tx.payments.putTopUp(topUp);
      });
      await expect(
        storage.write('acme', async (tx) => {
          await tx.payments.insertStripeEvent(event('evt_rolled_back', T0, 'processed'));
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      const reads = storage.read.payments;
      expect(await reads.getStripeEvent('ws1', 'evt_a')).toEqual(event('evt_a', T0, 'processed'));
      expect(await reads.getStripeEvent('ws1', 'evt_rolled_back')).toBeNull();
      expect(await reads.getStripeEvent('ws2', 'evt_a')).toBeNull();
      const first = await reads.listStripeEvents('ws1', { status: null }, { after: null, limit: 2 });
      expect(first.items.map((e) => e.id)).toEqual(['evt_c', 'evt_b']);
      const rest = await reads.listStripeEvents(
        'ws1',
        { status: null },
        { after: first.nextAfter, limit: 2 },
      );
      expect(rest.items.map((e) => e.id)).toEqual(['evt_a']);
      expect(rest.nextAfter).toBeNull();
      const failed = await reads.listStripeEvents('ws1', { status: 'failed' }, { after: null, limit: 10 });
      expect(failed.items.map((e) => e.id)).toEqual(['evt_b']);

      expect(exact(await reads.getPayment('ws1', 'cs_1'))).toEqual(exact(payment));
      expect(exact(await reads.findPayment('ws1', { paymentIntentId: 'pi_1', chargeId: null }))).toEqual(
        exact(payment),
      );
      expect(await reads.findPayment('ws1', { paymentIntentId: null, chargeId: 'ch_1' })).toBeNull();
      const disputed = {
        ...payment,
        chargeId: 'ch_1',
        refundedMinor: 5n,
        refundCredits: Amount.parse('0.5'),
        dispute: {
          id: 'dp_1',
          status: 'opened' as const,
          amountMinor: 7n,
          credits: Amount.parse('7'),
          holdId: 'hld_1',
        },
      };
      await storage.write('acme', async (tx) => tx.payments.putPayment(disputed));
      const byCharge = await reads.findPayment('ws1', { paymentIntentId: 'pi_other', chargeId: 'ch_1' });
      expect(exact(byCharge)).toEqual(exact(disputed));

      expect(exact(await reads.listWaitingTopUps(10))).toEqual(exact([topUp]));
      const done = { ...topUp, status: 'succeeded' as const, providerRef: 'pi_9', purchaseId: 'pur_9' };
      await storage.write('acme', async (tx) => tx.payments.putTopUp(done));
      expect(await reads.listWaitingTopUps(10)).toEqual([]);
      expect(exact(await reads.getTopUp('ws1', 'tpu_1'))).toEqual(exact(done));
    });

    it('appends audit records at claimed chain positions per workspace, rolled back with their transaction', async () => {
      const record = (workspaceId: string, seq: number, prevHash: string) => ({
        workspaceId,
        seq,
        id: `aud_${workspaceId}_${seq}`,
        at: T0 + seq,
        actorKeyId: 'key_1',
        requestId: 'req-1',
        action: 'grant.created',
        targetType: 'grant',
        targetId: `grt_${seq}`,
        before: null,
        after: '{"amount":"10"}',
        prevHash,
        hash: `h${workspaceId}${seq}`,
      });
      const append = (workspaceId: string) =>
        storage.write('acme', async (tx) => {
          const { seq, prevHash } = await tx.audit.claimNext(workspaceId);
          await tx.audit.append(record(workspaceId, seq, prevHash));
          return seq;
        });
      expect(await append('ws1')).toBe(1);
      await expect(
        storage.write('acme', async (tx) => {
          const { seq, prevHash } = await tx.audit.claimNext('ws1');
          await tx.audit.append(record('ws1', seq, prevHash));
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await append('ws1')).toBe(2);
      expect(await append('ws2')).toBe(1);
      const query = {
        workspaceId: 'ws1',
        actorKeyId: null,
        action: null,
        targetType: null,
        targetId: null,
        from: null,
        to: null,
      };
      const all = await storage.read.audit.list(query, fromStart(10));
      expect(all).toEqual({ items: [record('ws1', 1, ''), record('ws1', 2, 'hws11')], nextAfter: null });
      expect(
        (await storage.read.audit.list({ ...query, targetId: 'grt_2' }, fromStart(10))).items,
      ).toHaveLength(1);
      expect((await storage.read.audit.list({ ...query, from: T0 + 2 }, fromStart(10))).items).toHaveLength(
        1,
      );
      const page1 = await storage.read.audit.list(query, fromStart(1));
      expect(page1.items.map((r) => r.seq)).toEqual([1]);
      const page2 = await storage.read.audit.list(query, { after: page1.nextAfter, limit: 1 });
      expect(page2).toEqual({ items: [record('ws1', 2, 'hws11')], nextAfter: null });
      await refusesForeignKey((p) => storage.read.audit.list(query, p));
      await expect(storage.read.audit.list(query, { after: ['-1'], limit: 1 })).rejects.toMatchObject({
        code: 'invalid_request',
      });
      expect(await storage.read.audit.heads()).toEqual([
        { workspaceId: 'ws1', seq: 2, hash: 'hws12' },
        { workspaceId: 'ws2', seq: 1, hash: 'hws21' },
      ]);
    });
    it("creates workspaces once, lists them, and records a key's last use only forward", async () => {
      await storage.write('ws', async (tx) => {
        expect(await tx.insertWorkspace({ id: 'live', name: 'Live', createdAt: T0 })).toBe(true);
        expect(await tx.insertWorkspace({ id: 'live', name: 'Again', createdAt: T0 })).toBe(false);
        await tx.insertApiKey({
          id: 'key_live',
          workspaceId: 'live',
          keyHash: 'hash-live',
          scope: 'read',
          name: null,
          createdAt: T0,
          revokedAt: null,
          permissions: ['ledger:read'],
          expiresAt: T0 + 1000,
          rateLimit: '10/1s',
        });
        await tx.markApiKeyUsed('key_live', T0 + 60_000);
        await tx.markApiKeyUsed('key_live', T0 + 30_000);
      });
      expect(await storage.read.getWorkspace('live')).toEqual({ id: 'live', name: 'Live', createdAt: T0 });
      expect((await storage.read.listWorkspaces()).map((w) => w.id)).toContain('live');
      expect(await storage.read.findApiKeyByHash('hash-live')).toMatchObject({
        permissions: ['ledger:read'],
        expiresAt: T0 + 1000,
        lastUsedAt: T0 + 60_000,
        rateLimit: '10/1s',
      });
    });

    it('portal sessions: a code redeems once and before it expires; refresh needs the live token; revoke ends it', async () => {
      const record = {
        id: 'ps_1',
        workspaceId: 'ws1',
        customerId: 'acme',
        scope: 'read+topup' as const,
        codeHash: 'code-hash',
        codeExpiresAt: T0 + 60_000,
        codeUsedAt: null,
        sessionHash: null,
        sessionExpiresAt: null,
        revokedAt: null,
        createdAt: T0,
      };
      await storage.write('acme', async (tx) => tx.portal.insert(record));
      expect(await storage.read.portal.findByCodeHash('code-hash')).toEqual(record);
      // Expired code: nothing redeemed.
      expect(
        await storage.write('acme', async (tx) => tx.portal.redeem('ps_1', 's1', T0 + 900_000, T0 + 60_000)),
      ).toBe(false);
      expect(
        await storage.write('acme', async (tx) => tx.portal.redeem('ps_1', 's1', T0 + 900_000, T0 + 1000)),
      ).toBe(true);
      expect(
        await storage.write('acme', async (tx) => tx.portal.redeem('ps_1', 's2', T0 + 900_000, T0 + 2000)),
      ).toBe(false);
      expect(await storage.read.portal.findBySessionHash('s1')).toMatchObject({
        id: 'ps_1',
        codeUsedAt: T0 + 1000,
      });
      expect(await storage.read.portal.findBySessionHash('s2')).toBeNull();
      expect(
        await storage.write('acme', async (tx) =>
          tx.portal.refresh('ps_1', 'wrong', 's3', T0 + 2_000_000, T0 + 5000),
        ),
      ).toBe(false);
      expect(
        await storage.write('acme', async (tx) =>
          tx.portal.refresh('ps_1', 's1', 's3', T0 + 2_000_000, T0 + 5000),
        ),
      ).toBe(true);
      expect(await storage.read.portal.findBySessionHash('s1')).toBeNull();
      expect(await storage.read.portal.findBySessionHash('s3')).toMatchObject({
        sessionExpiresAt: T0 + 2_000_000,
      });
      expect(await storage.write('acme', async (tx) => tx.portal.revoke('ws2', 'ps_1', T0 + 6000))).toBe(
        false,
      );
      expect(await storage.write('acme', async (tx) => tx.portal.revoke('ws1', 'ps_1', T0 + 6000))).toBe(
        true,
      );
      expect(await storage.write('acme', async (tx) => tx.portal.revoke('ws1', 'ps_1', T0 + 7000))).toBe(
        false,
      );
      expect(await storage.read.portal.get('ws1', 'ps_1')).toMatchObject({ revokedAt: T0 + 6000 });
      expect(await storage.read.portal.get('ws2', 'ps_1')).toBeNull();
    });

    it('stores licenses, machines, seats, credit leases, usage records and signing keys', async () => {
      const license = {
        workspaceId: 'ws1',
        id: 'lic_1',
        customerId: 'acme',
        name: 'Team',
        planId: null,
        entitlements: [
          {
            featureId: 'export',
            usageLimit: { amount: Amount.parse('12.5'), period: 'P1M' as const },
            config: { formats: ['pdf'] },
            overage: { max: null },
          },
        ],
        keyHash: 'h'.repeat(64),
        keyPrefix: 'ABCDE',
        machineLimit: 3,
        floatingLimit: 2,
        floatingTtlMs: 900_000,
        heartbeatWindowMs: 3_600_000,
        startsAt: T0,
        expiresAt: T0 + 86_400_000,
        status: 'active' as const,
        metadata: { tier: 'gold' },
        createdAt: T0,
        updatedAt: T0,
      };
      const machine = {
        workspaceId: 'ws1',
        id: 'mch_1',
        licenseId: 'lic_1',
        fingerprint: 'fp',
        publicKey: 'x'.repeat(43),
        name: null,
        status: 'active' as const,
        activatedAt: T0,
        lastSeenAt: T0,
        endedAt: null,
        lastSeq: 0,
        lastHash: '0'.repeat(64),
      };
      await storage.write('ws1/acme', async (tx) => {
        expect(await tx.licensing.insertLicense(license)).toBe(true);
        expect(await tx.licensing.insertLicense({ ...license, id: 'lic_2' })).toBe(false);
        await tx.licensing.insertMachine(machine);
        await tx.licensing.insertSeat({
          workspaceId: 'ws1',
          id: 'seat_1',
          licenseId: 'lic_1',
          machineId: 'mch_1',
          createdAt: T0,
          expiresAt: T0 + 10,
          releasedAt: null,
        });
        await tx.licensing.insertCreditLease({
          workspaceId: 'ws1',
          id: 'lse_1',
          licenseId: 'lic_1',
          machineId: 'mch_1',
          creditType: 'credits',
          amount: '50',
          holdId: 'hld_1',
          expiresAt: T0 + 100,
          createdAt: T0,
          endedAt: null,
        });
        const record = {
          workspaceId: 'ws1',
          licenseId: 'lic_1',
          machineId: 'mch_1',
          seq: 1,
          hash: 'a'.repeat(64),
          eventKey: 'id:lic:mch_1:1',
          record: { seq: 1 },
          receivedAt: T0,
        };
        expect(await tx.licensing.insertUsageRecord(record)).toBe(true);
        expect(await tx.licensing.insertUsageRecord({ ...record, hash: 'b'.repeat(64) })).toBe(false);
        expect(
          await tx.licensing.insertSigningKey({
            kid: 'k1',
            publicX: 'x',
            privateKey: 'p',
            encrypted: true,
            createdAt: T0,
            retiredAt: null,
          }),
        ).toBe(true);
        expect(
          await tx.licensing.insertSigningKey({
            kid: 'k2',
            publicX: 'y',
            privateKey: 'q',
            encrypted: false,
            createdAt: T0 + 1,
            retiredAt: null,
          }),
        ).toBe(true);
        await tx.licensing.retireSigningKeysExcept('k2', T0 + 5);
      });
      const reads = storage.read.licensing;
      // Amounts compare by value (their inner representation may differ once read back).
      const plain = (value: unknown) =>
        JSON.parse(
          JSON.stringify(value, (_k, v: unknown) => (v instanceof Amount ? v.toString() : v)),
        ) as unknown;
      expect(plain(await reads.getLicense('ws1', 'lic_1'))).toEqual(plain(license));
      expect(plain(await reads.findLicenseByKeyHash('h'.repeat(64)))).toEqual(plain(license));
      expect(
        (await reads.listLicenses('ws1', 'acme', { after: null, limit: 10 })).items.map((l) => l.id),
      ).toEqual(['lic_1']);
      expect((await reads.listLicenses('ws1', 'other', { after: null, limit: 10 })).items).toEqual([]);
      expect(await reads.findActiveMachine('ws1', 'lic_1', 'fp')).toEqual(machine);
      expect((await reads.listOpenSeats('ws1', 'lic_1')).map((x) => x.id)).toEqual(['seat_1']);
      expect((await reads.findOpenCreditLease('ws1', 'mch_1'))?.amount).toBe('50');
      expect((await reads.getUsageRecord('ws1', 'mch_1', 1))?.hash).toBe('a'.repeat(64));
      expect((await reads.listSigningKeys()).map((k) => [k.kid, k.encrypted, k.retiredAt])).toEqual([
        ['k1', true, T0 + 5],
        ['k2', false, null],
      ]);
      expect(await reads.findLicensesWithSilentMachines(T0 + 3_600_000, 10)).toEqual([]);
      expect(await reads.findLicensesWithSilentMachines(T0 + 3_600_001, 10)).toEqual([
        { workspaceId: 'ws1', customerId: 'acme', licenseId: 'lic_1' },
      ]);
      await storage.write('ws1/acme', async (tx) => {
        await tx.licensing.updateMachine({
          ...machine,
          status: 'culled',
          endedAt: T0 + 1,
          lastSeq: 1,
          lastHash: 'a'.repeat(64),
        });
        await tx.licensing.updateLicense({ ...license, status: 'revoked', updatedAt: T0 + 2 });
      });
      expect(await reads.findActiveMachine('ws1', 'lic_1', 'fp')).toBeNull();
      expect((await reads.listMachines('ws1', 'lic_1'))[0]).toMatchObject({ status: 'culled', lastSeq: 1 });
      expect((await reads.getLicense('ws1', 'lic_1'))?.status).toBe('revoked');
    });
  });
}
