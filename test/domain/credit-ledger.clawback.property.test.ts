/**
 * Property test of clawbacks (CreditLedger.clawBack) and grant holds (CreditLedger.holdGrant) in the
 * pure engine: random grants, debits (some into overage), holds on one grant, releases, voids,
 * clock moves and clawbacks (never more of a grant than its amount in total).
 *
 * After every step: every cached balance equals the sum of its entries and all accounts sum to
 * zero; every grant's remaining stays within [0, amount]; debt and free unrestricted credits never
 * coexist; `clawed_back` equals the sum of what was clawed; a clawback lowers `available` by exactly
 * its amount less the overage other grants paid, i.e. it moves exactly `amount` credits out
 * (free remainder + new debt = amount); and the balance rebuilt from the entries at this instant
 * (the point-in-time read) equals the engine's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger, emptyLedgerSnapshot } from '../../src/domain/ledger/credit-ledger.js';
import { balanceFromEntries } from '../../src/domain/ledger/point-in-time.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = 1_700_000_000_000;
const SEC = 1000;

type Command =
  | { kind: 'grant'; amount: number; expiresIn: number | null }
  | { kind: 'debit'; amount: number; overage: boolean }
  | { kind: 'holdGrant'; pick: number; amount: number }
  | { kind: 'release'; pick: number }
  | { kind: 'void'; pick: number }
  | { kind: 'advance'; seconds: number }
  | { kind: 'clawBack'; pick: number; amount: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 50 }),
    expiresIn: fc.option(fc.integer({ min: 1, max: 20 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 60 }),
    overage: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('holdGrant' as const),
    pick: fc.nat(),
    amount: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('void' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 10 }) }),
  fc.record({
    kind: fc.constant('clawBack' as const),
    pick: fc.nat(),
    amount: fc.integer({ min: 1, max: 50 }),
  }),
);

const units = (n: number) => Amount.of(BigInt(n));

function checkBooks(ledger: CreditLedger, now: number, clawedTotal: Amount): void {
  const sums = new Map<string, bigint>();
  for (const e of ledger.newEntries) {
    expect(e.amount.isPositive()).toBe(true);
    expect(e.fromAccount).not.toBe(e.toAccount);
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
    expect(g.available.isNegative()).toBe(false);
    expect(g.held.isNegative()).toBe(false);
    expect(g.available.plus(g.held).units).toBeLessThanOrEqual(g.amount.units);
    total += g.available.units + g.held.units;
  }
  expect(total).toBe(0n);
  expect(ledger.accounts.clawed_back.equals(clawedTotal)).toBe(true);
  // Debt never sits next to free unrestricted credits.
  if (ledger.accounts.overage.isNegative()) expect(ledger.drawableGrants(now, null)).toHaveLength(0);
  // The point-in-time read from the entries agrees with the engine.
  const rebuilt = balanceFromEntries({
    customerId: ledger.customerId,
    creditType: ledger.creditType,
    at: now,
    entries: ledger.newEntries,
    grants: ledger.grants,
  });
  const live = ledger.balance(now);
  expect(rebuilt.available.equals(live.available)).toBe(true);
  expect(rebuilt.held.equals(live.held)).toBe(true);
  expect(rebuilt.overage.equals(live.overage)).toBe(true);
}

describe('CreditLedger.clawBack (property)', () => {
  it('takes back exactly the amount asked (free remainder, then debt) and keeps the books balanced', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 40 }), (commands) => {
        const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
        let now = T0;
        const grantIds: string[] = [];
        const holdIds: string[] = [];
        const clawed = new Map<string, Amount>();
        let clawedTotal = Amount.ZERO;
        for (const c of commands) {
          switch (c.kind) {
            case 'grant': {
              const g = ledger.grant(
                {
                  amount: units(c.amount),
                  category: 'paid',
                  priority: 10,
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
            case 'debit':
              ledger.debit({ amount: units(c.amount), allowOverage: c.overage }, now);
              break;
            case 'holdGrant': {
              if (grantIds.length === 0) break;
              const grantId = grantIds[c.pick % grantIds.length]!;
              const free = ledger.grants.get(grantId)!.available;
              const hold = ledger.holdGrant(
                {
                  grantId,
                  amount: units(c.amount),
                  expiresAt: now + 1000 * SEC,
                  description: null,
                  metadata: {},
                },
                now,
              );
              if (hold === null) break;
              expect(hold.amount.equals(Amount.min(units(c.amount), free))).toBe(true);
              expect(hold.portions).toEqual([{ grantId, amount: hold.amount }]);
              holdIds.push(hold.id);
              break;
            }
            case 'release': {
              if (holdIds.length === 0) break;
              ledger.release(holdIds[c.pick % holdIds.length]!, now);
              break;
            }
            case 'void': {
              if (grantIds.length === 0) break;
              ledger.voidGrant(grantIds[c.pick % grantIds.length]!, now);
              break;
            }
            case 'advance':
              now += c.seconds * SEC;
              ledger.advanceTo(now);
              break;
            case 'clawBack': {
              if (grantIds.length === 0) break;
              const grantId = grantIds[c.pick % grantIds.length]!;
              const grant = ledger.grants.get(grantId)!;
              const already = clawed.get(grantId) ?? Amount.ZERO;
              // The service never claws back more of a grant than it granted.
              const amount = Amount.min(units(c.amount), grant.amount.minus(already));
              if (!amount.isPositive()) break;
              const freeBefore = grant.available;
              const debtBefore = ledger.accounts.overage.negated();
              const availableBefore = ledger.availableAt(now);
              const entriesBefore = ledger.newEntries.length;
              const record = ledger.clawBack(grantId, amount, now);
              expect(record.fromGrant.equals(Amount.min(amount, freeBefore))).toBe(true);
              expect(record.fromGrant.plus(record.becameOverage).equals(amount)).toBe(true);
              // Exactly `amount` leaves the customer's balance, whatever pays the new debt.
              expect(availableBefore.minus(ledger.availableAt(now)).equals(amount)).toBe(true);
              const own = ledger.newEntries.slice(entriesBefore).filter((e) => e.type === 'clawback');
              expect(Amount.sum(own.map((e) => e.amount)).equals(amount)).toBe(true);
              expect(own.every((e) => e.toAccount === 'clawed_back')).toBe(true);
              // New debt, less what other free grants paid at once.
              const settled = Amount.sum(
                ledger.newEntries
                  .slice(entriesBefore)
                  .filter((e) => e.type === 'overage_settled')
                  .map((e) => e.amount),
              );
              expect(
                ledger.accounts.overage
                  .negated()
                  .equals(debtBefore.plus(record.becameOverage).minus(settled)),
              ).toBe(true);
              clawed.set(grantId, already.plus(amount));
              clawedTotal = clawedTotal.plus(amount);
              break;
            }
          }
          checkBooks(ledger, now, clawedTotal);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a full clawback of an untouched grant empties it without debt', () => {
    const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
    const g = ledger.grant(newGrant(units(100), T0), T0);
    ledger.debit({ amount: units(30), allowOverage: false }, T0);
    const record = ledger.clawBack(g.id, units(100), T0);
    expect(record.fromGrant.toString()).toBe('70');
    expect(record.becameOverage.toString()).toBe('30');
    expect(ledger.balance(T0).overage.toString()).toBe('30');
    expect(ledger.accounts.clawed_back.toString()).toBe('100');
  });
});
