/**
 * Property test of revenue recognition against the real ledger engine.
 *
 * Random sequences of purchases (paid grants with a cost basis in USD, JPY — no minor unit — or KWD
 * — three decimals —, some expiring), promotional grants, debits (some into overage), holds,
 * captures, releases, clock moves across months, voids, refunds and reversals run on CreditLedger.
 * A refund takes back what is left of a grant: the engine's void entries of that grant are read as
 * `grant:<id> → clawed_back` (the payments side's clawback), which is all revenue recognition sees.
 * Then, under both breakage policies:
 * - every grant's roll-forward over random periods keeps opening + additions − recognised −
 *   breakage − refunds = closing exactly, and its periods add up to its cumulative totals;
 * - cumulative recognised is round-half-up(cost × consumed ÷ granted) (no drift), and a grant with
 *   nothing left has recognised + breakage + refunded = cost exactly, deferred zero;
 * - the movements reconcile with the ledger's accounts (consumed + overage, expired, voided);
 * - the report by month, by customer and by pack agree on every total and each row balances;
 * - the journal balances per entry and moves deferred revenue by closing − opening.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import {
  CreditLedger,
  emptyLedgerSnapshot,
  type ReversibleDebit,
} from '../../src/domain/ledger/credit-ledger.js';
import type { LedgerEntry } from '../../src/domain/ledger/types.js';
import {
  addMovement,
  type BreakagePolicy,
  CLAWED_BACK_ACCOUNT,
  costInMinorUnits,
  type GrantMovement,
  movementOfEntry,
  noCreditTotals,
  type RevenueGrant,
  recognitionOf,
  recognizeGrant,
} from '../../src/domain/revenue/recognition.js';
import {
  journalOf,
  periodBoundaries,
  type RevenueGroupBy,
  RevenueReportBuilder,
  reportPeriods,
  rowBalances,
  totalsPerCurrency,
} from '../../src/domain/revenue/report.js';
import { SequentialIds } from '../../src/infra/ids.js';

const T0 = Date.UTC(2026, 0, 20);
const DAY = 86_400_000;
const CURRENCIES = ['USD', 'JPY', 'KWD'] as const;

type Command =
  | {
      kind: 'purchase';
      credits: number;
      half: boolean;
      cost: number;
      currency: number;
      expiresIn: number | null;
      pack: number;
    }
  | { kind: 'promo'; credits: number; expiresIn: number | null }
  | { kind: 'debit'; amount: number; overage: boolean }
  | { kind: 'hold'; amount: number; ttl: number }
  | { kind: 'capture'; pick: number; amount: number | null }
  | { kind: 'release'; pick: number }
  | { kind: 'advance'; days: number }
  | { kind: 'void'; pick: number }
  | { kind: 'refund'; pick: number }
  | { kind: 'reverse'; pick: number; amount: number | null };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('purchase' as const),
    credits: fc.integer({ min: 1, max: 60 }),
    half: fc.boolean(),
    cost: fc.integer({ min: 0, max: 100_003 }),
    currency: fc.nat({ max: 2 }),
    expiresIn: fc.option(fc.integer({ min: 1, max: 60 }), { nil: null }),
    pack: fc.nat({ max: 2 }),
  }),
  fc.record({
    kind: fc.constant('promo' as const),
    credits: fc.integer({ min: 1, max: 30 }),
    expiresIn: fc.option(fc.integer({ min: 1, max: 60 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 40 }),
    overage: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    amount: fc.integer({ min: 1, max: 30 }),
    ttl: fc.integer({ min: 1, max: 30 }),
  }),
  fc.record({
    kind: fc.constant('capture' as const),
    pick: fc.nat(),
    amount: fc.option(fc.integer({ min: 1, max: 40 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), days: fc.integer({ min: 1, max: 25 }) }),
  fc.record({ kind: fc.constant('void' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('refund' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('reverse' as const),
    pick: fc.nat(),
    amount: fc.option(fc.integer({ min: 1, max: 40 }), { nil: null }),
  }),
);

const policy: fc.Arbitrary<BreakagePolicy> = fc.oneof(
  fc.constant<BreakagePolicy>({ policy: 'at_expiry', expectedBreakageRate: Amount.ZERO }),
  fc
    .constantFrom('0', '0.1', '0.25', '0.5', '0.9', '0.333333333333')
    .map((r): BreakagePolicy => ({ policy: 'proportional', expectedBreakageRate: Amount.parse(r) })),
);

/** a ÷ b rounded half up (a ≥ 0, b > 0): the rounding rule written out independently. */
const halfUp = (a: bigint, b: bigint) => {
  const q = a / b;
  return (a % b) * 2n >= b ? q + 1n : q;
};

interface Simulated {
  readonly ledger: CreditLedger;
  readonly entries: readonly LedgerEntry[];
  readonly paid: readonly RevenueGrant[];
  readonly instants: readonly number[];
  readonly end: number;
}

function simulate(commands: readonly Command[]): Simulated {
  const ledger = new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());
  ledger.loadSettlements({ settlements: [], refunded: new Map() });
  const debits: ReversibleDebit[] = [];
  const holds: string[] = [];
  const grantIds: string[] = [];
  const paid: RevenueGrant[] = [];
  const refunded = new Set<string>();
  const instants: number[] = [];
  let now = T0;
  for (const c of commands) {
    ledger.advanceTo(now);
    switch (c.kind) {
      case 'purchase':
      case 'promo': {
        const credits = Amount.parse(`${c.credits}${c.kind === 'purchase' && c.half ? '.5' : ''}`);
        const currency = c.kind === 'purchase' ? CURRENCIES[c.currency]! : 'USD';
        const cost = c.kind === 'purchase' ? Amount.fromUnits(BigInt(c.cost) * 10n ** 9n) : null;
        const g = ledger.grant(
          {
            amount: credits,
            category: c.kind === 'purchase' ? 'paid' : 'promotional',
            priority: 1,
            effectiveAt: now,
            expiresAt: c.expiresIn === null ? null : now + c.expiresIn * DAY,
            costBasis: cost === null ? null : { amount: cost, currency },
            appliesTo: null,
            description: null,
            metadata: {},
          },
          now,
        );
        grantIds.push(g.id);
        if (c.kind === 'purchase' && cost !== null) {
          paid.push({
            id: g.id,
            customerId: `cus_${c.pack}`,
            creditType: 'credits',
            packId: c.pack === 0 ? null : `pack_${c.pack}`,
            credits,
            costBasis: { amount: cost, currency },
            createdAt: now,
          });
        }
        break;
      }
      case 'debit': {
        const d = ledger.debit({ amount: Amount.of(BigInt(c.amount)), allowOverage: c.overage }, now);
        if (!('refused' in d)) debits.push(reversible(d));
        break;
      }
      case 'hold': {
        const h = ledger.placeHold(
          { amount: Amount.of(BigInt(c.amount)), expiresAt: now + c.ttl * DAY },
          now,
        );
        if (!('refused' in h)) holds.push(h.id);
        break;
      }
      case 'capture': {
        const id = holds[c.pick % Math.max(1, holds.length)];
        if (id === undefined) break;
        const d = ledger.capture(
          { holdId: id, amount: c.amount === null ? null : Amount.of(BigInt(c.amount)), allowOverage: true },
          now,
        );
        if (!('refused' in d)) debits.push(reversible(d));
        break;
      }
      case 'release': {
        const id = holds[c.pick % Math.max(1, holds.length)];
        if (id !== undefined) ledger.release(id, now);
        break;
      }
      case 'advance':
        now += c.days * DAY;
        ledger.advanceTo(now);
        break;
      case 'void':
      case 'refund': {
        const id = grantIds[c.pick % Math.max(1, grantIds.length)];
        if (id === undefined || refunded.has(id)) break;
        const outcome = ledger.voidGrant(id, now);
        if (c.kind === 'refund' && !('refused' in outcome)) refunded.add(id);
        break;
      }
      case 'reverse': {
        const target = debits[c.pick % Math.max(1, debits.length)];
        if (target === undefined) break;
        ledger.reverse(
          { target, amount: c.amount === null ? null : Amount.of(BigInt(c.amount)), reason: 't' },
          now,
        );
        break;
      }
    }
    instants.push(now);
  }
  now += DAY;
  ledger.advanceTo(now);
  // A refunded grant's credits leave by clawback, not void: read its void entries that way.
  const entries = ledger.newEntries.map((e) =>
    e.type === 'void' && e.grantId !== null && refunded.has(e.grantId)
      ? ({ ...e, toAccount: CLAWED_BACK_ACCOUNT } as unknown as LedgerEntry)
      : e,
  );
  return { ledger, entries, paid, instants, end: now };
}

function reversible(d: ReversibleDebit['debit']): ReversibleDebit {
  return {
    debit: d,
    reversed: {
      overage: Amount.ZERO,
      byGrant: new Map(),
      paidBack: new Map(),
      quantity: Amount.ZERO,
      history: [],
    },
  };
}

function movementsOf(entries: readonly LedgerEntry[], grantId: string): GrantMovement[] {
  const out: GrantMovement[] = [];
  for (const e of entries) {
    if (e.grantId === null && e.fromAccount !== `grant:${grantId}` && e.toAccount !== `grant:${grantId}`)
      continue;
    const m = movementOfEntry(e, grantId);
    if (m) out.push(m);
  }
  return out;
}

describe('revenue recognition (property)', () => {
  it('keeps the roll-forward identity exact, the totals equal to the cost, and reconciles with the ledger', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 50 }),
        policy,
        fc.array(fc.nat(), { maxLength: 6 }),
        (commands, breakage, cuts) => {
          const sim = simulate(commands);
          const { ledger, entries, paid } = sim;

          // Reconcile every grant's movements with the ledger's accounts.
          const all = [...ledger.grants.values()];
          const totalsAll = noCreditTotals();
          for (const g of all) for (const m of movementsOf(entries, g.id)) addMovement(totalsAll, m);
          const acc = ledger.accounts;
          expect(totalsAll.consumed).toBe(acc.consumed.units + acc.overage.units);
          expect(totalsAll.expired).toBe(acc.expired.units);
          expect(totalsAll.voided + totalsAll.refunded).toBe(acc.voided.units);

          const boundaries = [
            ...new Set([T0 - 1, ...cuts.map((i) => sim.instants[i % sim.instants.length]! + 1), sim.end + 1]),
          ].sort((a, b) => a - b);
          for (const g of paid) {
            const movements = movementsOf(entries, g.id);
            const totals = noCreditTotals();
            for (const m of movements) addMovement(totals, m);
            const cost = costInMinorUnits(g.costBasis);
            const end = recognitionOf(g, breakage, totals);
            // The four parts always add up to the cost; cumulative recognised is the rounded share.
            expect(end.recognised + end.breakage + end.refunded + end.deferred).toBe(cost);
            expect(end.recognised).toBe(halfUp(cost * totals.consumed, g.credits.units));
            for (const part of [end.recognised, end.breakage, end.refunded, end.deferred]) {
              expect(part).toBeGreaterThanOrEqual(0n);
            }
            const state = ledger.grants.get(g.id)!;
            if (state.available.plus(state.held).isZero()) {
              expect(end.deferred).toBe(0n);
              expect(totals.consumed + totals.expired + totals.voided + totals.refunded).toBe(
                g.credits.units,
              );
            }
            if (breakage.policy === 'at_expiry') {
              const left = totals.expired + totals.voided;
              expect(end.breakage).toBe(
                halfUp(cost * (totals.consumed + left), g.credits.units) - end.recognised,
              );
            }
            const periods = recognizeGrant({ grant: g, policy: breakage, movements, boundaries });
            let recognised = 0n;
            let breakageSum = 0n;
            let refunds = 0n;
            let additions = 0n;
            periods.forEach((p, i) => {
              expect(p.opening + p.additions - p.recognised - p.breakage - p.refunds).toBe(p.closing);
              if (i > 0) expect(p.opening).toBe(periods[i - 1]!.closing);
              recognised += p.recognised;
              breakageSum += p.breakage;
              refunds += p.refunds;
              additions += p.additions;
            });
            expect(additions).toBe(cost);
            expect(recognised).toBe(end.recognised);
            expect(breakageSum).toBe(end.breakage);
            expect(refunds).toBe(end.refunded);
            expect(periods[periods.length - 1]!.closing).toBe(end.deferred);
          }

          // The report: every grouping balances per row and agrees on the totals per currency.
          const from = T0 - 1;
          const to = sim.end + 1;
          const totalsBy = new Map<RevenueGroupBy, ReturnType<typeof totalsPerCurrency>>();
          for (const groupBy of ['month', 'customer', 'credit_pack'] as const) {
            const periods = reportPeriods(from, to, groupBy);
            const builder = new RevenueReportBuilder(groupBy, periods);
            for (const g of paid) {
              builder.add(
                g,
                recognizeGrant({
                  grant: g,
                  policy: breakage,
                  movements: movementsOf(entries, g.id),
                  boundaries: periodBoundaries(periods),
                }),
              );
            }
            const rows = builder.result();
            for (const r of rows) expect(rowBalances(r)).toBe(true);
            const totals = totalsPerCurrency(rows, from, to);
            for (const t of totals) expect(rowBalances(t)).toBe(true);
            totalsBy.set(groupBy, totals);
            if (groupBy === 'month') {
              const journal = journalOf(rows);
              const byJournal = new Map<string, bigint>();
              const deferredMove = new Map<string, bigint>();
              for (const line of journal) {
                byJournal.set(
                  line.journalId,
                  (byJournal.get(line.journalId) ?? 0n) + line.debit - line.credit,
                );
                if (line.account === 'deferred_revenue') {
                  deferredMove.set(
                    line.currency,
                    (deferredMove.get(line.currency) ?? 0n) + line.credit - line.debit,
                  );
                }
              }
              for (const net of byJournal.values()) expect(net).toBe(0n);
              for (const t of totals) expect(deferredMove.get(t.currency) ?? 0n).toBe(t.closing - t.opening);
            }
          }
          const strip = (rows: ReturnType<typeof totalsPerCurrency>) =>
            rows.map((r) => [
              r.currency,
              r.opening,
              r.additions,
              r.recognised,
              r.breakage,
              r.refunds,
              r.closing,
            ]);
          expect(strip(totalsBy.get('customer')!)).toEqual(strip(totalsBy.get('month')!));
          expect(strip(totalsBy.get('credit_pack')!)).toEqual(strip(totalsBy.get('month')!));
        },
      ),
      { numRuns: 300 },
    );
  });
});
