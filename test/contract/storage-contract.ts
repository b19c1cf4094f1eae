import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { EventListQuery, LedgerKey, ResumeKey, Storage } from '../../src/ports/storage.js';
import { reconcileLedger } from '../../src/services/reconcile.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3600_000;
/** Plain JSON of a record: amounts as their decimal text (Amount memoises its text, so compare that). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
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
      expect((await read.listFeatures('ws1', '', 1)).items.map((f) => f.id)).toEqual(['gpt-x']);
      expect((await read.listFeatures('ws1', 'gpt-x', 5)).items.map((f) => f.id)).toEqual(['sso']);
      expect(plain(await read.getPlanVersion('ws1', 'pro', 1))).toEqual(plain(plan));
      expect((await read.getPlanVersion('ws1', 'pro', null))?.name).toBe('Pro 2');
      const plans = await read.listPlans('ws1', '', 10);
      expect(plans.items.map((p) => [p.id, p.version])).toEqual([
        ['basic', 1],
        ['pro', 2],
      ]);
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
      const first = await read.listPurchases('ws1', 'acme', null, 2);
      expect(first.items.map((p) => p.id)).toEqual(['pur_b', 'pur_a']);
      expect(plain(first.items[0])).toEqual(plain(purchase('pur_b', T0 + 1)));
      const rest = await read.listPurchases('ws1', 'acme', { createdAt: T0 + 2, id: 'pur_a' }, 2);
      expect(rest.items.map((p) => p.id)).toEqual(['pur_c']);
      expect(rest.nextAfter).toBeNull();
      expect(plain(await read.getAutoTopUp('ws1', 'acme'))).toEqual(plain({ ...rule, countInPeriod: 3 }));
      expect(plain(await read.customerUpkeep('ws1', 'acme', T0))).toEqual(
        plain({ subscriptionsDue: false, autoTopUp: { ...rule, countInPeriod: 3 } }),
      );
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
        for (const g of await tx.getGrantsByIds('ws1', [g1.id])) ledger.grants.set(g.id, g);
        ledger.advanceTo(T0 + 3);
        ledger.loadSettlements(await tx.settlementHistoryOf(key));
        const outcome = ledger.reverse({ target: stored!, amount: Amount.parse('2'), reason: 'why' }, T0 + 3);
        if ('refused' in outcome) throw new Error('refused');
        expect(outcome.parts.map((p) => [p.kind, p.grantId, p.amount.toString()])).toEqual([
          ['paid_overage', g2.id, '1'],
          ['paid_overage', g1.id, '1'],
        ]);
        expect(outcome.quantityReturned?.toString()).toBe('1.666666666666');
        await tx.saveLedger(key.workspaceId, ledger, T0 + 3);
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
