import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { BurndownError } from '../../src/domain/errors.js';
import { CreditLedger, emptyLedgerSnapshot } from '../../src/domain/ledger/credit-ledger.js';
import { type Pricing, priceBound, priceQuantity } from '../../src/domain/rating/rate.js';
import { SequentialIds } from '../../src/infra/ids.js';

/** The account range, enforced where balances change (the ledger engine), and the price bound ingest checks. */

const T = Date.parse('2026-01-01T00:00:00Z');
const MAX_VALUE = Amount.parse('99999999999999999999.999999999999');
/** 10^30: the first magnitude out of the account range. */
const LIMIT = Amount.parse(`1${'0'.repeat(30)}`);
const UNIT = Amount.fromUnits(1n);
const newGrant = (amount: Amount) => ({
  amount,
  category: 'promotional' as const,
  priority: 10,
  effectiveAt: T,
  expiresAt: null,
  costBasis: null,
  appliesTo: null,
  description: null,
  metadata: {},
});
const emptyLedger = () => new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());

function expectOutOfRange(work: () => unknown): void {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(BurndownError);
    expect((error as BurndownError).code).toBe('amount_out_of_range');
    return;
  }
  throw new Error('expected amount_out_of_range');
}

describe('account range in the ledger engine', () => {
  it('refuses an entry that would carry an account to 10^30, before applying anything of it', () => {
    const ledger = emptyLedger();
    const nearLimit = LIMIT.minus(MAX_VALUE).minus(UNIT);
    ledger.grant(newGrant(nearLimit), T);
    const accounts = { ...ledger.accounts };
    const entries = ledger.newEntries.length;
    expectOutOfRange(() => ledger.grant(newGrant(MAX_VALUE.plus(Amount.fromUnits(1n))), T));
    // The refused grant's entry was never applied (the engine's state only holds the refused grant's shell).
    expect(ledger.accounts).toEqual(accounts);
    expect(ledger.newEntries).toHaveLength(entries);
    ledger.grant(newGrant(MAX_VALUE), T);
    expect(ledger.accounts.issued.isWithinAccountRange()).toBe(true);
  });

  it('refuses overage and consumption past the range; canBurn says so beforehand', () => {
    const ledger = emptyLedger();
    const big = LIMIT.minus(UNIT);
    expect(ledger.canBurn(big)).toBe(true);
    expect(ledger.canBurn(big.plus(Amount.fromUnits(1n)))).toBe(false);
    const debit = ledger.debit({ amount: big, allowOverage: true }, T);
    expect('refused' in debit).toBe(false);
    expect(ledger.canBurn(Amount.fromUnits(1n))).toBe(false);
    expectOutOfRange(() => ledger.debit({ amount: Amount.fromUnits(1n), allowOverage: true }, T));
  });
});

describe('price bound', () => {
  const amount = (maxUnits: bigint) => fc.bigInt({ min: 0n, max: maxUnits }).map(Amount.fromUnits);
  const pricing: fc.Arbitrary<Pricing> = fc.oneof(
    amount(10n ** 20n).map((creditsPerUnit) => ({ kind: 'per_unit' as const, creditsPerUnit })),
    fc.tuple(amount(10n ** 20n), amount(10n ** 20n)).map(([size, credits]) => ({
      kind: 'package' as const,
      size: size.plus(Amount.fromUnits(1n)),
      credits,
    })),
    fc
      .array(fc.tuple(amount(10n ** 16n), amount(10n ** 20n)), { minLength: 1, maxLength: 4 })
      .map((steps) => {
        let upTo = Amount.ZERO;
        const tiers = steps.map(([width, creditsPerUnit], i) => {
          upTo = upTo.plus(width).plus(Amount.fromUnits(1n));
          return { upTo: i === steps.length - 1 ? null : upTo, creditsPerUnit };
        });
        return { kind: 'tiers' as const, tiers };
      }),
  );

  it('is at least the price, whatever the usage before the event', () => {
    fc.assert(
      fc.property(pricing, amount(10n ** 30n), amount(10n ** 30n), (p, quantity, before) => {
        expect(priceBound(p, quantity).compare(priceQuantity(p, quantity, before))).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
