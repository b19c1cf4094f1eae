import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AMOUNT_SCALE,
  Amount,
  MAX_ACCOUNT_INTEGER_DIGITS,
  MAX_INTEGER_DIGITS,
} from '../../src/domain/amount/amount.js';

const ONE = 10n ** 12n;
/** Largest magnitude (in units) whose canonical text the parser accepts back: 20 integer digits. */
const MAX_UNITS = 10n ** BigInt(MAX_INTEGER_DIGITS + AMOUNT_SCALE) - 1n;

const anyUnits = fc.oneof(
  fc.bigInt({ min: -MAX_UNITS, max: MAX_UNITS }),
  fc.bigInt({ min: -1000n * ONE, max: 1000n * ONE }),
  fc.integer({ min: -1000, max: 1000 }).map((n) => BigInt(n) * ONE),
  fc.integer({ min: -1000, max: 1000 }).map((n) => BigInt(n)),
);
const anyAmount = anyUnits.map((u) => Amount.fromUnits(u));

/** Canonical decimal text written from scratch: optional sign, no leading zeros, no trailing fractional zeros. */
const canonicalText = fc
  .record({
    negative: fc.boolean(),
    integer: fc.oneof(
      fc.constant('0'),
      fc
        .tuple(
          fc.constantFrom('1', '2', '3', '4', '5', '6', '7', '8', '9'),
          fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: MAX_INTEGER_DIGITS - 1 }),
        )
        .map(([head, tail]) => head + tail),
    ),
    fraction: fc.oneof(
      fc.constant(''),
      fc
        .tuple(
          fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: AMOUNT_SCALE - 1 }),
          fc.constantFrom('1', '2', '3', '4', '5', '6', '7', '8', '9'),
        )
        .map(([body, last]) => body + last),
    ),
  })
  .map(({ negative, integer, fraction }) => {
    const isZero = integer === '0' && fraction === '';
    return `${negative && !isZero ? '-' : ''}${integer}${fraction ? `.${fraction}` : ''}`;
  });

const CANONICAL = /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/;

describe('Amount.parse / toString', () => {
  it.each([
    ['0', 0n],
    ['-0', 0n],
    ['1500', 1500n * ONE],
    ['2.5', 25n * 10n ** 11n],
    ['2.500000', 25n * 10n ** 11n],
    ['-0.000125', -125n * 10n ** 6n],
    ['0.000000000001', 1n],
    ['-0.000000000001', -1n],
    ['007', 7n * ONE],
    ['00.10', 10n ** 11n],
    ['56789012345678901234', 56789012345678901234n * ONE],
  ])('parses %s exactly', (text, units) => {
    expect(Amount.parse(text).units).toBe(units);
  });

  it.each([
    [0n, '0'],
    [1n, '0.000000000001'],
    [-1n, '-0.000000000001'],
    [25n * 10n ** 11n, '2.5'],
    [1500n * ONE, '1500'],
    [-125n * 10n ** 6n, '-0.000125'],
    [ONE + 1n, '1.000000000001'],
    [10n ** 32n - 1n, '99999999999999999999.999999999999'],
  ])('formats %s units as %s', (units, text) => {
    expect(Amount.fromUnits(units).toString()).toBe(text);
    expect(Amount.fromUnits(units).toJSON()).toBe(text);
    expect(JSON.stringify({ a: Amount.fromUnits(units) })).toBe(`{"a":"${text}"}`);
  });

  it('round-trips any representable amount through its text', () => {
    fc.assert(
      fc.property(anyUnits, (units) => {
        const text = Amount.fromUnits(units).toString();
        expect(text).toMatch(CANONICAL);
        expect(Amount.parse(text).units).toBe(units);
      }),
      { numRuns: 2000 },
    );
  });

  it('formats canonical text back to itself (no trailing zeros, no exponent, no leading zeros)', () => {
    fc.assert(
      fc.property(canonicalText, (text) => {
        expect(Amount.parse(text).toString()).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('normalises non-canonical but valid text to the same value', () => {
    fc.assert(
      fc.property(
        canonicalText,
        fc.nat({ max: 5 }),
        fc.nat({ max: 5 }),
        (text, leadingZeros, trailingZeros) => {
          const negative = text.startsWith('-');
          const body = negative ? text.slice(1) : text;
          const padded =
            '0'.repeat(leadingZeros) +
            body +
            (trailingZeros > 0 ? (body.includes('.') ? '' : '.') + '0'.repeat(trailingZeros) : '');
          const decorated = `${negative ? '-' : ''}${padded}`;
          const fractionDigits = decorated.split('.')[1]?.length ?? 0;
          // Trailing zeros may push the fraction past 12 digits; they carry no value and are accepted.
          expect(fractionDigits <= AMOUNT_SCALE + 5).toBe(true);
          expect(Amount.parse(decorated).toString()).toBe(text);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never yields more than 12 fractional digits or a trailing zero', () => {
    fc.assert(
      fc.property(anyAmount, (amount) => {
        const text = amount.toString();
        const fraction = text.split('.')[1];
        if (fraction !== undefined) {
          expect(fraction.length).toBeGreaterThan(0);
          expect(fraction.length).toBeLessThanOrEqual(AMOUNT_SCALE);
          expect(fraction.endsWith('0')).toBe(false);
        }
        expect(text).not.toMatch(/[eE+\s]/);
      }),
    );
  });

  it.each([
    '0.0000000000001',
    '1.1234567890123',
    '-0.0000000000005',
    '0.0000000000000000001',
    '1.0000000000001',
  ])('rejects %s: more than 12 significant decimals', (text) => {
    expect(Amount.tryParse(text)).toBe('too_many_decimals');
    expect(() => Amount.parse(text)).toThrow(RangeError);
  });

  it('rejects any 13th..20th decimal digit that is not zero', () => {
    fc.assert(
      fc.property(
        canonicalText,
        fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 0, maxLength: 6 }),
        fc.constantFrom('1', '2', '3', '4', '5', '6', '7', '8', '9'),
        (text, extraZerosOrDigits, last) => {
          const [integer, fraction = ''] = text.split('.');
          const longFraction = fraction.padEnd(AMOUNT_SCALE, '0') + extraZerosOrDigits + last;
          expect(Amount.tryParse(`${integer}.${longFraction}`)).toBe('too_many_decimals');
        },
      ),
    );
  });

  it('accepts zeros beyond the 12th decimal, which carry no value (documented choice in amount.ts)', () => {
    expect(Amount.parse('1.0000000000000').units).toBe(ONE);
    expect(Amount.parse('0.1000000000000000').toString()).toBe('0.1');
  });

  it.each([
    // exponent forms
    '1e3',
    '1E3',
    '1e-3',
    '1.5e2',
    '-2E+1',
    'e3',
    // float-like and decorated strings
    '.5',
    '-.5',
    '5.',
    '-5.',
    '+1',
    ' 1',
    '1 ',
    '\t1',
    '1\n',
    '',
    '-',
    '.',
    '--1',
    '- 1',
    '1.2.3',
    '1,5',
    '1_000',
    '0x10',
    '0b1',
    'Infinity',
    '-Infinity',
    'NaN',
    '١٢', // Arabic-Indic digits
    '１', // full-width one
    'one',
  ])('rejects %j as not a decimal string', (text) => {
    expect(Amount.tryParse(text)).toBe('not_a_decimal_string');
    expect(() => Amount.parse(text)).toThrow(RangeError);
  });

  it('accepts up to 20 integer digits (leading zeros do not count) and refuses 21', () => {
    const twenty = '9'.repeat(MAX_INTEGER_DIGITS);
    expect(Amount.parse(twenty).units).toBe(BigInt(twenty) * ONE);
    expect(Amount.parse(`-${twenty}.999999999999`).units).toBe(-(BigInt(twenty) * ONE + ONE - 1n));
    expect(Amount.parse(`000${twenty}`).units).toBe(BigInt(twenty) * ONE);
    expect(Amount.tryParse(`1${'0'.repeat(MAX_INTEGER_DIGITS)}`)).toBe('too_large');
    expect(Amount.tryParse(`-1${'0'.repeat(MAX_INTEGER_DIGITS)}`)).toBe('too_large');
    // Stored values (sums of client amounts) may be longer, and always read back, whatever their length.
    expect(Amount.parse(`1${'0'.repeat(MAX_INTEGER_DIGITS)}`).toString()).toBe(
      `1${'0'.repeat(MAX_INTEGER_DIGITS)}`,
    );
    expect(Amount.parse(`1${'0'.repeat(40)}`).toString()).toBe(`1${'0'.repeat(40)}`);
    // The contract's minimum: 15 integer digits with 12 decimals, exact.
    const contract = '999999999999999.999999999999';
    expect(Amount.parse(contract).toString()).toBe(contract);
  });

  it('decides the value range (20 integer digits) and the account range (below 10^30) in one place', () => {
    const maxValue = Amount.parse(`-${'9'.repeat(MAX_INTEGER_DIGITS)}.999999999999`);
    expect(maxValue.isWithinValueRange()).toBe(true);
    expect(maxValue.minus(Amount.fromUnits(1n)).isWithinValueRange()).toBe(false);
    const maxAccount = Amount.parse('9'.repeat(MAX_ACCOUNT_INTEGER_DIGITS));
    expect(maxAccount.isWithinAccountRange()).toBe(true);
    expect(maxAccount.isWithinValueRange()).toBe(false);
    expect(maxAccount.plus(Amount.of(1n)).isWithinAccountRange()).toBe(false);
    expect(maxAccount.plus(Amount.of(1n)).negated().isWithinAccountRange()).toBe(false);
  });

  it('accepts trailing zeros past the 12th decimal (they carry no value) and refuses any other 13th digit', () => {
    expect(Amount.tryParse('1.000000000000000')).toEqual(Amount.of(1n));
    expect(Amount.tryParse('0.0000000000010')).toEqual(Amount.fromUnits(1n));
    expect(Amount.tryParse('1.0000000000001')).toBe('too_many_decimals');
  });

  it('Amount.of takes whole credits or text; fromUnits(0) is ZERO', () => {
    expect(Amount.of(3n).units).toBe(3n * ONE);
    expect(Amount.of(-3n).toString()).toBe('-3');
    expect(Amount.of('1.25').units).toBe(125n * 10n ** 10n);
    expect(() => Amount.of('1e2')).toThrow(RangeError);
    expect(Amount.fromUnits(0n)).toBe(Amount.ZERO);
    expect(Amount.parse('-0.000')).toBe(Amount.ZERO);
  });
});

describe('Amount arithmetic', () => {
  it('plus is associative and commutative, ZERO is neutral, minus undoes plus', () => {
    fc.assert(
      fc.property(anyAmount, anyAmount, anyAmount, (a, b, c) => {
        expect(a.plus(b).plus(c).units).toBe(a.plus(b.plus(c)).units);
        expect(a.plus(b).units).toBe(b.plus(a).units);
        expect(a.plus(Amount.ZERO).units).toBe(a.units);
        expect(a.plus(b).minus(b).units).toBe(a.units);
        expect(a.minus(b).minus(c).units).toBe(a.minus(b.plus(c)).units);
        expect(a.minus(b).units).toBe(b.minus(a).negated().units);
        expect(a.minus(a).isZero()).toBe(true);
        expect(a.negated().negated().units).toBe(a.units);
        expect(a.plus(b).units).toBe(a.units + b.units);
      }),
      { numRuns: 1000 },
    );
  });

  it('is exact where binary floats are not', () => {
    expect(Amount.parse('0.1').plus(Amount.parse('0.2')).toString()).toBe('0.3');
    const big = Amount.parse('99999999999999999999.999999999999');
    expect(big.plus(Amount.fromUnits(1n)).toString()).toBe('100000000000000000000');
    expect(big.minus(big).toString()).toBe('0');
  });

  it('compare, equals, lessThan, greaterThan, sign tests agree with the exact values', () => {
    fc.assert(
      fc.property(anyAmount, anyAmount, (a, b) => {
        const expected = a.units < b.units ? -1 : a.units > b.units ? 1 : 0;
        expect(a.compare(b)).toBe(expected);
        expect(b.compare(a)).toBe(expected === 0 ? 0 : -expected);
        expect(a.equals(b)).toBe(expected === 0);
        expect(a.lessThan(b)).toBe(expected < 0);
        expect(a.greaterThan(b)).toBe(expected > 0);
        expect(a.compare(a)).toBe(0);
        expect(a.isZero()).toBe(a.units === 0n);
        expect(a.isPositive()).toBe(a.units > 0n);
        expect(a.isNegative()).toBe(a.units < 0n);
        expect(Amount.min(a, b).units).toBe(expected <= 0 ? a.units : b.units);
        expect(Amount.max(a, b).units).toBe(expected >= 0 ? a.units : b.units);
      }),
      { numRuns: 1000 },
    );
  });

  it('compare sorts like the decimal values (checked against the parsed text)', () => {
    fc.assert(
      fc.property(fc.array(anyAmount, { maxLength: 20 }), (amounts) => {
        const sorted = [...amounts].sort((x, y) => x.compare(y)).map((x) => x.units);
        const reference = amounts.map((x) => x.units).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
        expect(sorted).toEqual(reference);
      }),
    );
  });

  it('sum adds all amounts exactly', () => {
    fc.assert(
      fc.property(fc.array(anyAmount, { maxLength: 30 }), (amounts) => {
        const expected = amounts.reduce((acc, a) => acc + a.units, 0n);
        expect(Amount.sum(amounts).units).toBe(expected);
        expect(Amount.sum(new Set(amounts)).units).toBe(
          [...new Set(amounts)].reduce((s, a) => s + a.units, 0n),
        );
      }),
    );
    expect(Amount.sum([])).toBe(Amount.ZERO);
  });
});

describe('Amount.mulRatio', () => {
  /** floor(p / d) for any signs, computed independently of mulRatio's truncation logic. */
  function floorDiv(p: bigint, d: bigint): bigint {
    const n = d < 0n ? -p : p;
    const m = d < 0n ? -d : d;
    const q = n / m;
    return n < 0n && q * m !== n ? q - 1n : q;
  }
  /** Round half to even by distance, the textbook definition. */
  function halfEven(p: bigint, d: bigint): bigint {
    const lo = floorDiv(p, d);
    const n = d < 0n ? -p : p;
    const m = d < 0n ? -d : d;
    const below = n - lo * m; // distance to lo, times m
    const above = m - below; // distance to lo + 1, times m
    if (below === 0n) return lo;
    if (below < above) return lo;
    if (below > above) return lo + 1n;
    return lo % 2n === 0n ? lo : lo + 1n;
  }

  it.each([
    // 1 unit × 1/2: exactly half → even (0); 3 units × 1/2 = 1.5 → 2; 5/2 = 2.5 → 2
    [1n, 1n, 2n, 'half_even', 0n],
    [3n, 1n, 2n, 'half_even', 2n],
    [5n, 1n, 2n, 'half_even', 2n],
    [7n, 1n, 2n, 'half_even', 4n],
    [-3n, 1n, 2n, 'half_even', -2n],
    [-5n, 1n, 2n, 'half_even', -2n],
    [10n, 1n, 3n, 'down', 3n],
    [10n, 1n, 3n, 'up', 4n],
    [10n, 1n, 3n, 'half_even', 3n],
    [20n, 1n, 3n, 'half_even', 7n],
    [9n, 1n, 3n, 'up', 3n],
    [9n, 1n, 3n, 'down', 3n],
    [3n, -1n, 2n, 'half_even', -2n],
    [3n, 1n, -2n, 'half_even', -2n],
    [-3n, -1n, 2n, 'half_even', 2n],
  ] as const)('%s units × %s / %s (%s) = %s units', (units, num, den, rounding, expected) => {
    expect(Amount.fromUnits(units).mulRatio(num, den, rounding).units).toBe(expected);
  });

  it('49.00 USD over 1000 credits: cost per credit rounds at the 12th decimal', () => {
    const cost = Amount.parse('49');
    expect(cost.mulRatio(1n, 3n, 'down').toString()).toBe('16.333333333333');
    expect(cost.mulRatio(1n, 3n, 'up').toString()).toBe('16.333333333334');
    expect(cost.mulRatio(1n, 3n, 'half_even').toString()).toBe('16.333333333333');
    expect(Amount.parse('2').mulRatio(1n, 3n, 'half_even').toString()).toBe('0.666666666667');
    expect(Amount.parse('100').mulRatio(15n, 100n, 'half_even').toString()).toBe('15');
  });

  it('for non-negative results: down = floor, up = ceiling, half_even = nearest with ties to even', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        fc.bigInt({ min: 0n, max: 10n ** 6n }),
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.boolean(),
        (units, num, den, flipBoth) => {
          // Flipping both signs of the ratio keeps the result non-negative.
          const n = flipBoth ? -num : num;
          const d = flipBoth ? -den : den;
          const a = Amount.fromUnits(units);
          const p = units * num;
          const floor = p / den;
          const ceil = (p + den - 1n) / den;
          expect(a.mulRatio(n, d, 'down').units).toBe(floor);
          expect(a.mulRatio(n, d, 'up').units).toBe(ceil);
          expect(a.mulRatio(n, d, 'half_even').units).toBe(halfEven(p, den));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('half_even is correct for every sign combination and odd-symmetric', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.bigInt({ min: -(10n ** 6n), max: 10n ** 6n }),
        fc.bigInt({ min: -(10n ** 6n), max: 10n ** 6n }).filter((d) => d !== 0n),
        (units, num, den) => {
          const a = Amount.fromUnits(units);
          expect(a.mulRatio(num, den, 'half_even').units).toBe(halfEven(units * num, den));
          expect(a.negated().mulRatio(num, den, 'half_even').units).toBe(
            -a.mulRatio(num, den, 'half_even').units,
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('exact ratios do not round under any rule', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }),
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.constantFrom('down' as const, 'up' as const, 'half_even' as const),
        (units, den, rounding) => {
          const a = Amount.fromUnits(units * den);
          expect(a.mulRatio(1n, den, rounding).units).toBe(units);
          expect(a.mulRatio(-1n, -den, rounding).units).toBe(units);
        },
      ),
    );
  });

  it('refuses a zero denominator', () => {
    expect(() => Amount.parse('1').mulRatio(1n, 0n, 'down')).toThrow(RangeError);
  });

  // `down` rounds toward zero and `up` away from zero, so they bracket the exact value for either sign.
  it('down and up bracket the exact value for negative results too', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: -1n }),
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.bigInt({ min: 2n, max: 10n ** 6n }),
        (units, num, den) => {
          fc.pre((units * num) % den !== 0n);
          const a = Amount.fromUnits(units);
          const down = a.mulRatio(num, den, 'down').units;
          const up = a.mulRatio(num, den, 'up').units;
          const diff = up > down ? up - down : down - up;
          expect(diff).toBe(1n);
        },
      ),
    );
  });
});
