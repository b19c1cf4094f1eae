import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { Allowance, CreditPack, Entitlement, Feature } from '../../src/domain/catalog/catalog.js';
import { pricePurchase, roundMoney } from '../../src/domain/catalog/pricing.js';
import { decideCheck } from '../../src/domain/entitlements/check.js';
import { planRollover, proratedIncrease, rolloverCap } from '../../src/domain/plans/allowances.js';

const A = (text: string) => Amount.of(text);
/** Whole credits with up to 3 decimals, as amounts. */
const amountArb = (max = 10_000) =>
  fc.integer({ min: 0, max: max * 1000 }).map((n) => Amount.fromUnits(BigInt(n) * 1_000_000_000n));

function allowance(amount: string, rollover: Allowance['rollover']): Allowance {
  return { creditType: 'credits', amount: A(amount), period: 'P1M', priority: 5, rollover, appliesTo: null };
}

describe('rollover', () => {
  it('caps by max or by a percent of the allowance (rounded down), nothing without a rule', () => {
    expect(rolloverCap(allowance('500', null)).toString()).toBe('0');
    expect(
      rolloverCap(
        allowance('500', { max: A('250'), maxPercent: null, expiresAfterPeriods: null }),
      ).toString(),
    ).toBe('250');
    expect(
      rolloverCap(
        allowance('333', { max: null, maxPercent: A('33.333333333333'), expiresAfterPeriods: null }),
      ).toString(),
    ).toBe('110.999999999998');
  });

  it('carries what fits under the cap, trimming the oldest live rollovers first', () => {
    const rule = allowance('1000', { max: A('300'), maxPercent: null, expiresAfterPeriods: null });
    const live = [
      { grantId: 'old', available: A('200') },
      { grantId: 'new', available: A('50') },
    ];
    expect(planRollover(rule, A('400'), live)).toEqual({
      trims: [
        { grantId: 'old', amount: A('200') },
        { grantId: 'new', amount: A('50') },
      ],
      carry: A('300'),
    });
    expect(planRollover(rule, A('40'), live)).toEqual({ trims: [], carry: A('40') });
    expect(planRollover(rule, A('100'), live)).toEqual({
      trims: [{ grantId: 'old', amount: A('50') }],
      carry: A('100'),
    });
    expect(planRollover(allowance('1000', null), A('400'), [])).toEqual({ trims: [], carry: Amount.ZERO });
  });

  it('never carries more than the cap in total, never trims more than a grant holds, and conserves credits', () => {
    fc.assert(
      fc.property(
        amountArb(),
        amountArb(),
        fc.array(amountArb(), { maxLength: 5 }),
        (cap, unused, liveAmounts) => {
          const rule = allowance('10000', { max: cap, maxPercent: null, expiresAfterPeriods: null });
          const live = liveAmounts.map((available, i) => ({ grantId: `r${i}`, available }));
          const { trims, carry } = planRollover(rule, unused, live);
          const liveTotal = Amount.sum(liveAmounts);
          const trimmed = Amount.sum(trims.map((t) => t.amount));
          // Nothing is trimmed unless it had to be; otherwise exactly the cap is kept.
          expect(carry.greaterThan(unused)).toBe(false);
          expect(carry.isNegative()).toBe(false);
          if (!Amount.sum([unused, liveTotal]).greaterThan(cap)) {
            expect(trims).toEqual([]);
            expect(carry).toEqual(unused);
          } else {
            expect(liveTotal.minus(trimmed).plus(carry)).toEqual(cap);
          }
          // Oldest first: trims are a prefix of the live rollovers, all but the last trimmed whole.
          const positive = live.filter((l) => l.available.isPositive());
          expect(trims.map((t) => t.grantId)).toEqual(positive.slice(0, trims.length).map((l) => l.grantId));
          trims.forEach((trim, i) => {
            const grant = positive[i]!;
            expect(trim.amount.greaterThan(grant.available)).toBe(false);
            if (i < trims.length - 1) expect(trim.amount).toEqual(grant.available);
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('proration of an immediate upgrade', () => {
  const period = { start: 0, end: 28 * 86_400_000 };

  it('grants the increase for the rest of the period, rounded down, and nothing for a decrease', () => {
    expect(proratedIncrease(A('500'), A('800'), period, 14 * 86_400_000).toString()).toBe('150');
    expect(proratedIncrease(A('500'), A('800'), period, 0).toString()).toBe('300');
    expect(proratedIncrease(A('500'), A('800'), period, period.end).toString()).toBe('0');
    expect(proratedIncrease(A('800'), A('500'), period, 1).toString()).toBe('0');
    expect(proratedIncrease(A('0'), A('1'), { start: 0, end: 3 }, 1).toString()).toBe('0.666666666666');
  });

  it('is between zero and the increase, and shrinks as the period passes', () => {
    fc.assert(
      fc.property(
        amountArb(),
        amountArb(),
        fc.integer({ min: 0, max: period.end }),
        fc.integer({ min: 0, max: period.end }),
        (a, b, t1, t2) => {
          const [early, late] = t1 <= t2 ? [t1, t2] : [t2, t1];
          const first = proratedIncrease(a, b, period, early);
          const second = proratedIncrease(a, b, period, late);
          expect(first.isNegative()).toBe(false);
          expect(first.greaterThan(Amount.max(Amount.ZERO, b.minus(a)))).toBe(false);
          expect(second.greaterThan(first)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('credit pack prices', () => {
  const pack: CreditPack = {
    workspaceId: 'w',
    id: '10k',
    name: null,
    creditType: 'credits',
    credits: A('10000'),
    price: { amount: A('99.99'), currency: 'USD' },
    volumeDiscounts: [
      { minQuantity: 5, percentOff: A('10') },
      { minQuantity: 20, percentOff: A('17.5') },
    ],
    expiresAfterDays: null,
    priority: 10,
    createdAt: 0,
  };

  it('applies the highest tier reached and rounds the total half-up to the cent once', () => {
    expect(pricePurchase(pack, 1)).toMatchObject({
      credits: A('10000'),
      price: { amount: A('99.99') },
      percentOff: A('0'),
    });
    // 4 × 99.99 = 399.96 (no discount); 5 × 99.99 × 0.9 = 449.955 → 449.96.
    expect(pricePurchase(pack, 4).price.amount.toString()).toBe('399.96');
    expect(pricePurchase(pack, 5).price.amount.toString()).toBe('449.96');
    // 20 × 99.99 × 0.825 = 1649.835 → 1649.84.
    expect(pricePurchase(pack, 20)).toMatchObject({ credits: A('200000'), percentOff: A('17.5') });
    expect(pricePurchase(pack, 20).price.amount.toString()).toBe('1649.84');
  });

  it('rounds once, from the exact value: 0.01 at 50.000000000001 % off is 0.00, not 0.01', () => {
    const cent = {
      ...pack,
      price: { amount: A('0.01'), currency: 'USD' },
      volumeDiscounts: [{ minQuantity: 1, percentOff: A('50.000000000001') }],
    };
    expect(pricePurchase(cent, 1).price.amount.toString()).toBe('0');
    const half = { ...cent, volumeDiscounts: [{ minQuantity: 1, percentOff: A('50') }] };
    expect(pricePurchase(half, 1).price.amount.toString()).toBe('0.01');
  });

  it('rounds zero-decimal currencies to whole units', () => {
    expect(roundMoney(A('1234.5'), 'JPY').toString()).toBe('1235');
    expect(roundMoney(A('1234.49'), 'JPY').toString()).toBe('1234');
    expect(roundMoney(A('0.005'), 'EUR').toString()).toBe('0.01');
    expect(roundMoney(A('0.004999'), 'EUR').toString()).toBe('0');
  });

  it('never charges more per pack for a larger quantity', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), (q) => {
        const perPackNow = pricePurchase(pack, q).price.amount.mulRatio(1n, BigInt(q), 'down');
        const perPackMore = pricePurchase(pack, q + 1).price.amount.mulRatio(1n, BigInt(q + 1), 'down');
        expect(perPackMore.greaterThan(perPackNow.plus(A('0.01')))).toBe(false);
      }),
    );
  });
});

describe('check decision', () => {
  const metered: Feature = {
    workspaceId: 'w',
    id: 'gpt-x',
    type: 'metered',
    name: null,
    creditType: 'credits',
    rateIds: [],
    creditsPerUse: A('5'),
    metadata: {},
    createdAt: 0,
    updatedAt: 0,
    archivedAt: null,
  };
  const hard: Entitlement = { featureId: 'gpt-x', usageLimit: null, config: null, overage: null };
  const facts = (over: Partial<Parameters<typeof decideCheck>[0]> = {}) => ({
    feature: metered,
    entitlement: hard,
    quantity: A('1'),
    credits: A('5'),
    available: A('5'),
    usedInPeriod: Amount.ZERO,
    ...over,
  });

  it('answers in order: entitlement, usage limit, credits (hard or soft limit)', () => {
    expect(decideCheck(facts({ entitlement: null }))).toMatchObject({
      allowed: false,
      reason: 'no_entitlement',
    });
    expect(decideCheck(facts({ feature: { ...metered, archivedAt: 1 } }))).toMatchObject({
      reason: 'no_entitlement',
    });
    expect(decideCheck(facts())).toEqual({ allowed: true, reason: 'ok', reserve: A('5') });
    expect(decideCheck(facts({ available: A('4.999') }))).toMatchObject({
      allowed: false,
      reason: 'insufficient_credits',
    });
    const limited = { ...hard, usageLimit: { amount: A('10'), period: 'P1M' as const } };
    expect(decideCheck(facts({ entitlement: limited, usedInPeriod: A('9') }))).toMatchObject({
      allowed: true,
    });
    expect(decideCheck(facts({ entitlement: limited, usedInPeriod: A('9.5') }))).toMatchObject({
      reason: 'limit_reached',
    });
    const soft = { ...hard, overage: { max: A('20') } };
    // 5 available, 25 needed: 20 of debt is within the cap; a hold reserves the 5 that exist.
    expect(decideCheck(facts({ entitlement: soft, credits: A('25') }))).toEqual({
      allowed: true,
      reason: 'ok',
      reserve: A('5'),
    });
    expect(decideCheck(facts({ entitlement: soft, credits: A('25.01') }))).toMatchObject({
      reason: 'limit_reached',
    });
    // Debt already owed counts against the cap.
    expect(decideCheck(facts({ entitlement: soft, credits: A('5'), available: A('-15') }))).toMatchObject({
      allowed: true,
      reserve: Amount.ZERO,
    });
    expect(decideCheck(facts({ entitlement: soft, credits: A('5'), available: A('-15.5') }))).toMatchObject({
      reason: 'limit_reached',
    });
    expect(
      decideCheck(facts({ entitlement: { ...hard, overage: { max: null } }, credits: A('1000') })),
    ).toMatchObject({ allowed: true });
    expect(decideCheck(facts({ feature: { ...metered, type: 'boolean' }, credits: Amount.ZERO }))).toEqual({
      allowed: true,
      reason: 'ok',
      reserve: Amount.ZERO,
    });
  });

  it('never reserves more than is available nor more than the credits, and allows whatever fits', () => {
    fc.assert(
      fc.property(
        amountArb(),
        amountArb(),
        fc.option(amountArb(), { nil: null }),
        fc.boolean(),
        (credits, available, max, soft) => {
          const entitlement = soft ? { ...hard, overage: { max } } : hard;
          const d = decideCheck(facts({ entitlement, credits, available }));
          expect(d.reserve.greaterThan(credits)).toBe(false);
          expect(d.reserve.greaterThan(Amount.max(available, Amount.ZERO))).toBe(false);
          if (!credits.greaterThan(available))
            expect(d).toEqual({ allowed: true, reason: 'ok', reserve: credits });
          if (!soft && credits.greaterThan(available)) expect(d.reason).toBe('insufficient_credits');
        },
      ),
      { numRuns: 500 },
    );
  });
});
