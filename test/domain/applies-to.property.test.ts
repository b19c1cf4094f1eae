import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger, emptyLedgerSnapshot } from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';

const T0 = 1_700_000_000_000;
const FEATURES = ['a', 'b'] as const;
const credits = (n: number) => Amount.of(BigInt(n));

type Op =
  | { kind: 'grant'; amount: number; appliesTo: readonly string[] | null; priority: number }
  | { kind: 'debit'; amount: number; feature: string | null; overage: boolean }
  | { kind: 'hold'; amount: number; feature: string | null }
  | { kind: 'capture'; extra: number; overage: boolean }
  | { kind: 'release' };

const appliesToArb = fc.oneof(
  fc.constant(null),
  fc.subarray([...FEATURES], { minLength: 1 }).map((f) => f as readonly string[]),
);
const featureArb = fc.constantFrom<string | null>(null, ...FEATURES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 100 }),
    appliesTo: appliesToArb,
    priority: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 120 }),
    feature: featureArb,
    overage: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    amount: fc.integer({ min: 1, max: 80 }),
    feature: featureArb,
  }),
  fc.record({
    kind: fc.constant('capture' as const),
    extra: fc.integer({ min: 0, max: 30 }),
    overage: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const) }),
);

const serves = (appliesTo: readonly string[] | null, feature: string | null) =>
  appliesTo === null || (feature !== null && appliesTo.includes(feature));

/**
 * Grants restricted by `applies_to` against random burns for features or for none, with overage:
 * a burn never draws on a grant that does not apply to it, it is refused exactly when the amount
 * exceeds what it may use (drawable less the debt), only unrestricted grants pay debt, and the
 * double-entry books always balance.
 */
describe('applies_to (property)', () => {
  it('restricts every burn to the grants that apply, and refuses exactly past what may be used', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const ledger = new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());
        const holds: { id: string; feature: string | null }[] = [];
        let now = T0;
        for (const op of ops) {
          now += 1000;
          ledger.advanceTo(now);
          const before = ledger.newEntries.length;
          if (op.kind === 'grant') {
            const debtBefore = ledger.accounts.overage.negated();
            ledger.grant(
              {
                amount: credits(op.amount),
                category: 'paid',
                priority: op.priority,
                effectiveAt: now,
                expiresAt: null,
                costBasis: null,
                appliesTo: op.appliesTo,
                description: null,
                metadata: {},
              },
              now,
            );
            const settled = ledger.newEntries.slice(before).filter((e) => e.type === 'overage_settled');
            if (op.appliesTo !== null) expect(settled).toEqual([]);
            else
              expect(Amount.sum(settled.map((e) => e.amount))).toEqual(
                Amount.min(debtBefore, credits(op.amount)),
              );
          } else if (op.kind === 'debit' || op.kind === 'hold') {
            const mayUse = ledger.availableAt(now, op.feature);
            const amount = credits(op.amount);
            const outcome =
              op.kind === 'debit'
                ? ledger.debit({ amount, allowOverage: op.overage, featureId: op.feature }, now)
                : ledger.placeHold({ amount, expiresAt: now + 10_000_000, featureId: op.feature }, now);
            const overage = op.kind === 'debit' && op.overage;
            expect('refused' in outcome).toBe(!overage && amount.greaterThan(mayUse));
            if ('refused' in outcome) {
              expect(ledger.newEntries.length).toBe(before);
              continue;
            }
            if (op.kind === 'hold') holds.push({ id: (outcome as { id: string }).id, feature: op.feature });
            for (const entry of ledger.newEntries.slice(before)) {
              if (entry.grantId === null || (entry.type !== 'debit' && entry.type !== 'hold')) continue;
              expect(serves(ledger.grants.get(entry.grantId)!.appliesTo, op.feature)).toBe(true);
            }
          } else {
            const hold = holds.pop();
            if (!hold) continue;
            if (op.kind === 'release') ledger.release(hold.id, now);
            else {
              const held = ledger.holds.get(hold.id)!.amount;
              const outcome = ledger.capture(
                { holdId: hold.id, amount: held.plus(credits(op.extra)), allowOverage: op.overage },
                now,
              );
              if ('refused' in outcome) continue;
              for (const entry of ledger.newEntries.slice(before)) {
                if (entry.grantId === null || entry.type !== 'capture') continue;
                expect(serves(ledger.grants.get(entry.grantId)!.appliesTo, hold.feature)).toBe(true);
              }
            }
          }
          // Books balance: every account's cache is the sum of its entries, and they sum to zero.
          const sums = new Map<string, bigint>();
          for (const e of ledger.newEntries) {
            sums.set(e.fromAccount, (sums.get(e.fromAccount) ?? 0n) - e.amount.units);
            sums.set(e.toAccount, (sums.get(e.toAccount) ?? 0n) + e.amount.units);
          }
          for (const grant of ledger.grants.values()) {
            expect(grant.available.units).toBe(sums.get(`grant:${grant.id}`) ?? 0n);
            expect(grant.held.units).toBe(sums.get(`held:${grant.id}`) ?? 0n);
            expect(grant.available.isNegative() || grant.held.isNegative()).toBe(false);
          }
          expect(ledger.accounts.overage.units).toBe(sums.get('overage') ?? 0n);
          expect([...sums.values()].reduce((x, y) => x + y, 0n)).toBe(0n);
        }
      }),
      { numRuns: 400 },
    );
  });
});
