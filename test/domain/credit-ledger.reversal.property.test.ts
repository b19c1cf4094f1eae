/**
 * Property test of reversals in the pure ledger engine (CreditLedger.reverse).
 *
 * Random sequences of grants (some expiring; later grants pay overage debt), debits (some into
 * overage, some naming a feature with a quantity), voids, clock moves and reversals (full or
 * partial, of any earlier debit, asking for too much at times) run against the engine. After every
 * step: no debit ever has more reversed than it burned, in total or per part, and all it burned
 * stays reversible (overage still owed, overage already paid, drawdowns); paid overage refunded to
 * a grant never exceeds what it paid in settlements; usage given back follows the reversed share;
 * a refusal records nothing; a reversal raises `available` by exactly what it returned to open
 * grants plus the overage it cancelled; every cached balance equals the sum of its entries and all
 * accounts sum to zero; every grant's remaining stays within [0, amount]; and the balance rebuilt
 * from the entries at this instant equals the engine's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import {
  CreditLedger,
  emptyLedgerSnapshot,
  type ReversibleDebit,
} from '../../src/domain/ledger/credit-ledger.js';
import { balanceFromEntries } from '../../src/domain/ledger/point-in-time.js';
import { SequentialIds } from '../../src/infra/ids.js';

const T0 = 1_700_000_000_000;
const SEC = 1000;

type Command =
  | { kind: 'grant'; amount: number; priority: number; expiresIn: number | null }
  | { kind: 'debit'; amount: number; overage: boolean; quantity: number | null }
  | { kind: 'void'; pick: number }
  | { kind: 'advance'; seconds: number }
  | { kind: 'reverse'; pick: number; amount: number | null };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 50 }),
    priority: fc.integer({ min: 1, max: 3 }),
    expiresIn: fc.option(fc.integer({ min: 1, max: 20 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 60 }),
    overage: fc.boolean(),
    quantity: fc.option(fc.integer({ min: 1, max: 7 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant('void' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 10 }) }),
  fc.record({
    kind: fc.constant('reverse' as const),
    pick: fc.nat(),
    amount: fc.option(fc.integer({ min: 1, max: 70 }), { nil: null }),
  }),
);

const units = (n: number) => Amount.of(BigInt(n));

function checkBooks(ledger: CreditLedger, now: number): void {
  // Replay the engine's own entries: every cached balance is their sum, and everything sums to zero.
  const sums = new Map<string, bigint>();
  for (const e of ledger.newEntries) {
    expect(e.amount.isPositive()).toBe(true);
    sums.set(e.fromAccount, (sums.get(e.fromAccount) ?? 0n) - e.amount.units);
    sums.set(e.toAccount, (sums.get(e.toAccount) ?? 0n) + e.amount.units);
  }
  let total = 0n;
  for (const [name, value] of Object.entries(ledger.accounts)) {
    expect(value.units, name).toBe(sums.get(name) ?? 0n);
    total += value.units;
  }
  for (const g of ledger.grants.values()) {
    expect(g.available.units).toBe(sums.get(`grant:${g.id}`) ?? 0n);
    expect(g.held.units).toBe(sums.get(`held:${g.id}`) ?? 0n);
    expect(g.available.units).toBeGreaterThanOrEqual(0n);
    expect(g.available.plus(g.held).units).toBeLessThanOrEqual(g.amount.units);
    total += g.available.units + g.held.units;
  }
  expect(total).toBe(0n);
  const rebuilt = balanceFromEntries({
    customerId: 'c',
    creditType: 'credits',
    at: now,
    entries: ledger.newEntries,
    grants: ledger.grants,
  });
  expect(rebuilt.available.units).toBe(ledger.availableAt(now).units);
  expect(rebuilt.overage.units).toBe(ledger.accounts.overage.negated().units);
}

function checkNeverBeyondBurn(ledger: CreditLedger, target: ReversibleDebit): void {
  const { debit, reversed } = target;
  expect(reversed.overage.units).toBeLessThanOrEqual(debit.overage.units);
  const paidBack = [...reversed.paidBack.values()].reduce((s, a) => s + a.units, 0n);
  expect(paidBack).toBeLessThanOrEqual(reversed.overage.units);
  // Everything burned stays reversible until reversed: owed overage, paid overage, drawdowns.
  const done = reversed.history.reduce((sum, r) => sum + r.amount.units, 0n);
  expect(ledger.reversibleOf(target).units + done).toBe(debit.amount.units);
  // Usage given back: the reversed share rounded down, all of it once fully reversed.
  if (debit.quantity === null) expect(reversed.quantity.isZero()).toBe(true);
  else if (done === debit.amount.units) expect(reversed.quantity.units).toBe(debit.quantity.units);
  else expect(reversed.quantity.units).toBe((debit.quantity.units * done) / debit.amount.units);
  for (const [grantId, amount] of reversed.byGrant) {
    const drawn = debit.drawdowns.find((d) => d.grantId === grantId);
    expect(drawn, grantId).toBeDefined();
    expect(amount.units).toBeLessThanOrEqual(drawn!.amount.units);
  }
  const history = reversed.history.reduce((sum, r) => sum + r.amount.units, 0n);
  const parts = reversed.overage.units + [...reversed.byGrant.values()].reduce((s, a) => s + a.units, 0n);
  expect(history).toBe(parts);
  expect(history).toBeLessThanOrEqual(debit.amount.units);
}

/** Paid overage refunded to a grant (Σ over debits) never exceeds what it paid in settlements. */
function checkRefundsWithinSettlements(ledger: CreditLedger, debits: readonly ReversibleDebit[]): void {
  const settled = new Map<string, bigint>();
  for (const e of ledger.newEntries)
    if (e.type === 'overage_settled')
      settled.set(e.grantId!, (settled.get(e.grantId!) ?? 0n) + e.amount.units);
  const refunded = new Map<string, bigint>();
  for (const d of debits)
    for (const [grantId, a] of d.reversed.paidBack)
      refunded.set(grantId, (refunded.get(grantId) ?? 0n) + a.units);
  for (const [grantId, units] of refunded)
    expect(units, grantId).toBeLessThanOrEqual(settled.get(grantId) ?? 0n);
}

describe('CreditLedger reversals (property)', () => {
  it('never reverse more than was burned, keep the books balanced, and show at every instant', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 40 }), (commands) => {
        const ledger = new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());
        ledger.loadSettlements({ settlements: [], refunded: new Map() });
        const debits: ReversibleDebit[] = [];
        const grantIds: string[] = [];
        let now = T0;
        for (const c of commands) {
          ledger.advanceTo(now);
          switch (c.kind) {
            case 'grant': {
              const g = ledger.grant(
                {
                  amount: units(c.amount),
                  category: 'promotional',
                  priority: c.priority,
                  effectiveAt: now,
                  expiresAt: c.expiresIn === null ? null : now + c.expiresIn * SEC,
                  costBasis: null,
                  appliesTo: null,
                  description: null,
                  metadata: {},
                },
                now,
              );
              grantIds.push(g.id);
              break;
            }
            case 'debit': {
              const d = ledger.debit(
                {
                  amount: units(c.amount),
                  allowOverage: c.overage,
                  featureId: c.quantity === null ? null : 'f',
                  quantity: c.quantity === null ? null : units(c.quantity),
                },
                now,
              );
              if (!('refused' in d))
                debits.push({
                  debit: d,
                  reversed: {
                    overage: Amount.ZERO,
                    byGrant: new Map(),
                    paidBack: new Map(),
                    quantity: Amount.ZERO,
                    history: [],
                  },
                });
              break;
            }
            case 'void': {
              const id = grantIds[c.pick % Math.max(1, grantIds.length)];
              if (id !== undefined) ledger.voidGrant(id, now);
              break;
            }
            case 'advance':
              now += c.seconds * SEC;
              ledger.advanceTo(now);
              break;
            case 'reverse': {
              const target = debits[c.pick % Math.max(1, debits.length)];
              if (target === undefined) break;
              const entriesBefore = ledger.newEntries.length;
              const availableBefore = ledger.availableAt(now);
              const reversible = ledger.reversibleOf(target);
              const outcome = ledger.reverse(
                { target, amount: c.amount === null ? null : units(c.amount), reason: 'test' },
                now,
              );
              if ('refused' in outcome) {
                expect(ledger.newEntries.length).toBe(entriesBefore);
                expect(outcome.reversible.units).toBe(reversible.units);
                if (outcome.refused === 'nothing_to_reverse') expect(reversible.isZero()).toBe(true);
                else expect(c.amount === null ? 0n : units(c.amount).units).toBeGreaterThan(reversible.units);
                break;
              }
              const expected = c.amount === null ? reversible : units(c.amount);
              expect(outcome.amount.units).toBe(expected.units);
              expect(outcome.parts.reduce((s, p) => s + p.amount.units, 0n)).toBe(expected.units);
              // Owed overage first, then paid overage, then drawdowns.
              const rank = { owed_overage: 0, paid_overage: 1, drawdown: 2 } as const;
              const ranks = outcome.parts.map((p) => rank[p.kind]);
              expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
              expect(outcome.parts.every((p) => (p.kind === 'owed_overage') === (p.grantId === null))).toBe(
                true,
              );
              // Paid overage is refunded only once no overage is owed any more.
              if (ranks.includes(1)) expect(ledger.accounts.overage.isZero()).toBe(true);
              const quantityBefore = target.reversed.quantity.units - (outcome.quantityReturned?.units ?? 0n);
              expect(quantityBefore).toBeGreaterThanOrEqual(0n);
              // What stayed (not left again as expiry/void) is what available rose by, before any
              // settlement of other debt (which moves credits from grants to overage: net zero).
              const stayed = outcome.parts
                .filter((p) => p.leftAgainAs === null)
                .reduce((s, p) => s + p.amount.units, 0n);
              expect(ledger.availableAt(now).units - availableBefore.units).toBe(stayed);
              expect(ledger.reversibleOf(target).units).toBe(reversible.units - expected.units);
              break;
            }
          }
          for (const d of debits) checkNeverBeyondBurn(ledger, d);
          checkRefundsWithinSettlements(ledger, debits);
          expect(ledger.accounts.overage.units).toBeLessThanOrEqual(0n);
          checkBooks(ledger, now);
        }
      }),
      { numRuns: 500 },
    );
  });
});
