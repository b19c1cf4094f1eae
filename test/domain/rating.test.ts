import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { MeterDefinition } from '../../src/domain/metering/meter.js';
import {
  type Pricing,
  priceQuantity,
  type RateDefinition,
  rateEvent,
  ratingPeriodStart,
  type Tier,
} from '../../src/domain/rating/rate.js';

const ONE = 10n ** 12n;
const u = (n: bigint) => Amount.fromUnits(n);
const a = (text: string) => Amount.parse(text);
const ceilDiv = (x: bigint, y: bigint) => (x + y - 1n) / y; // x ≥ 0, y > 0

/** Reference: each tier's segment of [before, before + quantity), priced and rounded up on its own. */
function refTiers(
  tiers: readonly { upTo: bigint | null; price: bigint }[],
  before: bigint,
  quantity: bigint,
): bigint {
  let total = 0n;
  let lower = 0n;
  const from = before;
  const to = before + quantity;
  for (const tier of tiers) {
    const upper = tier.upTo;
    const start = from > lower ? from : lower;
    const end = upper === null || to < upper ? to : upper;
    if (end > start) total += ceilDiv((end - start) * tier.price, ONE);
    if (upper === null) break;
    lower = upper;
  }
  return total;
}

const tiersPricing = (tiers: readonly { upTo: bigint | null; price: bigint }[]): Pricing => ({
  kind: 'tiers',
  tiers: tiers.map((t): Tier => ({ upTo: t.upTo === null ? null : u(t.upTo), creditsPerUnit: u(t.price) })),
});

/** Units that are a multiple of 10^(12 − decimals): at most `decimals` fractional digits. */
const withDecimals = (max: bigint, decimals: number) =>
  fc
    .bigInt({ min: 0n, max: max / 10n ** BigInt(12 - decimals) })
    .map((n) => n * 10n ** BigInt(12 - decimals));
const anyDecimals = (max: bigint) => fc.integer({ min: 0, max: 12 }).chain((d) => withDecimals(max, d));

/** 1–5 graduated tiers: increasing positive bounds, the last unbounded. */
function tiersArb(decimals: number | null) {
  const bound = decimals === null ? anyDecimals(5_000n * ONE) : withDecimals(5_000n * ONE, decimals);
  const price = decimals === null ? anyDecimals(10n * ONE) : withDecimals(10n * ONE, decimals);
  return fc
    .tuple(
      fc.uniqueArray(
        bound.filter((b) => b > 0n),
        { maxLength: 4 },
      ),
      fc.array(price, { minLength: 5, maxLength: 5 }),
    )
    .map(([bounds, prices]) => {
      const sorted = [...bounds].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      return [...sorted, null].map((upTo, k) => ({ upTo, price: prices[k]! }));
    });
}

describe('priceQuantity: per_unit', () => {
  it('is quantity × price, rounded up at the 12th decimal', () => {
    const perUnit = (p: string): Pricing => ({ kind: 'per_unit', creditsPerUnit: a(p) });
    expect(priceQuantity(perUnit('0.002'), a('1200'), Amount.ZERO).toString()).toBe('2.4');
    expect(priceQuantity(perUnit('0.5'), a('0.000000000001'), Amount.ZERO).toString()).toBe('0.000000000001');
    expect(priceQuantity(perUnit('0.333333333333'), a('0.5'), Amount.ZERO).toString()).toBe('0.166666666667');
    expect(priceQuantity(perUnit('0.000000000001'), a('0.000000000001'), Amount.ZERO).toString()).toBe(
      '0.000000000001',
    );
    expect(priceQuantity(perUnit('0.002'), Amount.ZERO, Amount.ZERO).isZero()).toBe(true);
    expect(priceQuantity(perUnit('0'), a('123'), Amount.ZERO).isZero()).toBe(true);
    // usageBefore plays no part
    expect(priceQuantity(perUnit('3'), a('2'), a('1000000')).toString()).toBe('6');
  });

  it('matches ⌈q·p⌉ over exact units for any quantity and price', () => {
    fc.assert(
      fc.property(
        anyDecimals(10n ** 9n * ONE),
        anyDecimals(1000n * ONE),
        anyDecimals(10n ** 6n * ONE),
        (q, p, before) => {
          const got = priceQuantity({ kind: 'per_unit', creditsPerUnit: u(p) }, u(q), u(before));
          expect(got.units).toBe(ceilDiv(q * p, ONE));
          // Never below the exact product, and less than one unit above it.
          expect(got.units * ONE >= q * p && got.units * ONE - q * p < ONE).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('priceQuantity: package', () => {
  const pkg = (size: string, credits: string): Pricing => ({
    kind: 'package',
    size: a(size),
    credits: a(credits),
  });

  it('charges ⌈quantity ÷ size⌉ packages per event', () => {
    expect(priceQuantity(pkg('1000', '2'), a('1000'), Amount.ZERO).toString()).toBe('2');
    expect(priceQuantity(pkg('1000', '2'), a('1001'), Amount.ZERO).toString()).toBe('4');
    expect(priceQuantity(pkg('1000', '2'), a('1'), Amount.ZERO).toString()).toBe('2');
    expect(priceQuantity(pkg('1000', '2'), a('0.000000000001'), Amount.ZERO).toString()).toBe('2');
    expect(priceQuantity(pkg('1000', '2'), Amount.ZERO, Amount.ZERO).isZero()).toBe(true);
    expect(priceQuantity(pkg('0.5', '0.25'), a('1.2'), Amount.ZERO).toString()).toBe('0.75');
    expect(priceQuantity(pkg('150', '1'), a('300'), a('999')).toString()).toBe('2'); // usageBefore ignored
    // Rounded per event: two events of 500 cost two packages, one of 1000 costs one.
    const two = priceQuantity(pkg('1000', '2'), a('500'), Amount.ZERO).plus(
      priceQuantity(pkg('1000', '2'), a('500'), a('500')),
    );
    expect(two.toString()).toBe('4');
  });

  it('matches ⌈q ÷ size⌉ × credits over exact units', () => {
    fc.assert(
      fc.property(
        anyDecimals(10n ** 9n * ONE),
        anyDecimals(10n ** 6n * ONE).filter((s) => s > 0n),
        anyDecimals(1000n * ONE),
        (q, size, credits) => {
          const got = priceQuantity(
            { kind: 'package', size: u(size), credits: u(credits) },
            u(q),
            Amount.ZERO,
          );
          expect(got.units).toBe(ceilDiv(q, size) * credits);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('priceQuantity: graduated tiers', () => {
  const tiers = [
    { upTo: 1000n * ONE, price: 2n * ONE }, // 2 per unit up to 1000
    { upTo: 5000n * ONE, price: ONE }, // 1 per unit up to 5000
    { upTo: null, price: ONE / 2n }, // 0.5 beyond
  ];
  const pricing = tiersPricing(tiers);
  const price = (q: string, before: string) => priceQuantity(pricing, a(q), a(before)).toString();

  it('one event crossing one or more boundaries costs the sum of its segments', () => {
    expect(price('500', '0')).toBe('1000'); // inside tier 1
    expect(price('1000', '0')).toBe('2000'); // exactly up to the first boundary
    expect(price('1500', '0')).toBe(String(1000 * 2 + 500 * 1)); // crosses one
    expect(price('7000', '0')).toBe(String(1000 * 2 + 4000 * 1 + 2000 * 0.5)); // crosses two
    expect(price('7000', '500')).toBe(String(500 * 2 + 4000 * 1 + 2500 * 0.5)); // starts inside tier 1
    expect(price('10', '1000')).toBe('10'); // starts exactly on a boundary
    expect(price('10', '6000')).toBe('5'); // entirely in the last tier
    expect(price('0', '800')).toBe('0');
    // Each segment rounds up on its own: 0.5 units at 0.000000000001 each, split over two tiers,
    // is ⌈0.25e-12⌉ + ⌈0.25e-12⌉ = 2e-12 (one tier alone would round 0.5e-12 up to 1e-12).
    const tiny = tiersPricing([
      { upTo: ONE / 4n, price: 1n },
      { upTo: null, price: 1n },
    ]);
    expect(priceQuantity(tiny, a('0.5'), Amount.ZERO).toString()).toBe('0.000000000002');
    expect(priceQuantity(tiny, a('0.5'), a('0.1')).units).toBe(2n); // 0.15 and 0.35 of a unit
    expect(priceQuantity(tiny, a('0.5'), a('0.25')).units).toBe(1n); // all in the last tier
  });

  it('equals the reference for random tiers, usage before and quantity', () => {
    fc.assert(
      fc.property(tiersArb(null), anyDecimals(8_000n * ONE), anyDecimals(8_000n * ONE), (ts, before, q) => {
        expect(priceQuantity(tiersPricing(ts), u(q), u(before)).units).toBe(refTiers(ts, before, q));
      }),
      { numRuns: 2000 },
    );
  });

  /** Splits q into 1–6 positive pieces that are multiples of `step` units, summing to q exactly. */
  const split = (step: bigint) =>
    fc
      .tuple(
        withDecimals(8_000n * ONE, 6),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 }),
      )
      .map(([q, weights]) => {
        const total = weights.reduce((x, y) => x + y, 0);
        const pieces = weights.map((w) => ((q * BigInt(w)) / BigInt(total) / step) * step);
        pieces[pieces.length - 1]! += q - pieces.reduce((x, y) => x + y, 0n);
        return { q, pieces };
      });

  const priceInPieces = (pricing: Pricing, pieces: readonly bigint[], start: bigint) => {
    let before = start;
    let total = 0n;
    for (const p of pieces) {
      total += priceQuantity(pricing, u(p), u(before)).units;
      before += p;
    }
    return total;
  };

  it('splitting a quantity into several events (accumulating usage before) costs the same when nothing rounds (≤ 6 decimals)', () => {
    fc.assert(
      fc.property(
        tiersArb(6),
        split(10n ** 6n),
        withDecimals(3_000n * ONE, 6),
        (ts, { q, pieces }, start) => {
          const pricing = tiersPricing(ts);
          expect(priceInPieces(pricing, pieces, start)).toBe(priceQuantity(pricing, u(q), u(start)).units);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('splitting never costs less than one event, whatever the decimals (each piece rounds up)', () => {
    fc.assert(
      fc.property(
        tiersArb(null),
        fc
          .tuple(
            anyDecimals(8_000n * ONE),
            fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 }),
          )
          .map(([q, weights]) => {
            const total = weights.reduce((x, y) => x + y, 0);
            const pieces = weights.map((w) => (q * BigInt(w)) / BigInt(total));
            pieces[pieces.length - 1]! += q - pieces.reduce((x, y) => x + y, 0n);
            return { q, pieces };
          }),
        anyDecimals(3_000n * ONE),
        (ts, { q, pieces }, start) => {
          const pricing = tiersPricing(ts);
          const whole = priceQuantity(pricing, u(q), u(start)).units;
          const inPieces = priceInPieces(pricing, pieces, start);
          expect(inPieces).toBeGreaterThanOrEqual(whole);
          // …and by at most one unit per piece and tier.
          expect(inPieces - whole).toBeLessThanOrEqual(BigInt(pieces.length * ts.length));
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe('ratingPeriodStart', () => {
  it('is the first millisecond of the UTC calendar month', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000 }), (t) => {
        const d = new Date(t);
        const expected = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
        const start = ratingPeriodStart(t);
        expect(start).toBe(expected);
        expect(start).toBeLessThanOrEqual(t);
        expect(t).toBeLessThan(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
        expect(ratingPeriodStart(start)).toBe(start);
      }),
      { numRuns: 5000 },
    );
    const feb = Date.parse('2026-02-01T00:00:00.000Z');
    expect(ratingPeriodStart(feb)).toBe(feb);
    expect(ratingPeriodStart(feb - 1)).toBe(Date.parse('2026-01-01T00:00:00.000Z'));
    expect(ratingPeriodStart(Date.parse('2024-02-29T23:59:59.999Z'))).toBe(
      Date.parse('2024-02-01T00:00:00Z'),
    );
    expect(ratingPeriodStart(-1)).toBe(Date.parse('1969-12-01T00:00:00Z'));
    // An event at 23:30 on Jan 31 in New York is already February in UTC: the period is UTC's.
    expect(ratingPeriodStart(Date.parse('2026-01-31T23:30:00-05:00'))).toBe(feb);
  });
});

describe('rateEvent', () => {
  const meter: MeterDefinition = {
    id: 'tokens',
    eventType: 'llm.tokens',
    aggregation: 'sum',
    valuePath: ['tokens'],
    valueProperty: '$.tokens',
    groupBy: { model: ['model'], kind: ['kind'] },
    groupByText: { model: '$.model', kind: '$.kind' },
    createdAt: 0,
  };
  const rate: RateDefinition = {
    id: 'r',
    meterId: 'tokens',
    filter: { model: 'gpt-x', kind: 'output' },
    creditType: 'credits',
    pricing: { kind: 'per_unit', creditsPerUnit: a('0.002') },
    createdAt: 0,
  };
  const ev = (data: unknown, type = 'llm.tokens') => rateEvent(rate, meter, { type, data }, Amount.ZERO);

  it('prices events of its meter that pass the filter, and nothing else', () => {
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: 1200 })).toEqual({
      quantity: a('1200'),
      credits: a('2.4'),
    });
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: '0.5' })?.credits.toString()).toBe('0.001');
    expect(ev({ model: 'gpt-x', kind: 'input', tokens: 1200 })).toBeNull();
    expect(ev({ model: 'gpt-x', tokens: 1200 })).toBeNull();
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: 1200 }, 'other.type')).toBeNull();
    expect(ev({ model: 'gpt-x', kind: 'output' })).toBeNull(); // no value
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: 'many' })).toBeNull();
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: -5 })).toBeNull(); // negative usage is not rated
    expect(ev({ model: 'gpt-x', kind: 'output', tokens: 0 })).toEqual({
      quantity: Amount.ZERO,
      credits: Amount.ZERO,
    });
    const count = rateEvent(
      { ...rate, filter: {} },
      { ...meter, aggregation: 'count', valuePath: null, valueProperty: null },
      { type: 'llm.tokens', data: {} },
      Amount.ZERO,
    );
    expect(count).toEqual({ quantity: a('1'), credits: a('0.002') });
  });
});
