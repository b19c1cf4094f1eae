/**
 * Exact decimal amounts of credits.
 *
 * Credits never touch binary floating point: an {@link Amount} is a signed integer count of
 * 10^-12 credit units held in a `bigint`, so addition and comparison are exact. Rounding happens
 * only in {@link Amount.mulRatio}, and only where a caller names the rounding rule.
 *
 * The amount range is decided here, once (README "Amount range"):
 * - a value a client sends, and a value one operation produces (an event's usage value or its
 *   price by one rate), has at most {@link MAX_INTEGER_DIGITS} integer digits;
 * - a running total the books keep (an account, a grant's remainder, an entry, a usage counter)
 *   stays below 10^{@link MAX_ACCOUNT_INTEGER_DIGITS} in magnitude, checked where it changes, so
 *   both stores (PostgreSQL NUMERIC(48,12) holds 36 integer digits) keep 6 digits of headroom
 *   for sums across accounts, and nothing stored can fail to read back.
 */

/** Number of fractional decimal digits an amount carries exactly. */
export const AMOUNT_SCALE = 12;
const SCALE_FACTOR = 10n ** BigInt(AMOUNT_SCALE);
/** Largest number of integer digits of a client's value or of one priced event (the contract promises at least 15). */
export const MAX_INTEGER_DIGITS = 20;
/**
 * Integer digits a running total may reach (accounts, remainders, entries, usage counters): sums
 * of client values may exceed {@link MAX_INTEGER_DIGITS}; 30 leaves 6 of the 36 digits PostgreSQL's
 * NUMERIC(48,12) columns hold as headroom for sums across accounts.
 */
export const MAX_ACCOUNT_INTEGER_DIGITS = 30;
/** Exclusive bound, in units, of a client value's magnitude. */
const VALUE_LIMIT_UNITS = 10n ** BigInt(MAX_INTEGER_DIGITS + AMOUNT_SCALE);
/** Exclusive bound, in units, of a running total's magnitude. */
const ACCOUNT_LIMIT_UNITS = 10n ** BigInt(MAX_ACCOUNT_INTEGER_DIGITS + AMOUNT_SCALE);

const DECIMAL_PATTERN = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Why a string was refused as an amount; stable so callers can map it to an error message. */
export type AmountParseFailure = 'not_a_decimal_string' | 'too_many_decimals' | 'too_large';

/** An immutable exact decimal. Construct with {@link Amount.parse} or {@link Amount.fromUnits}. */
export class Amount {
  /** The zero amount, shared because amounts are immutable. */
  static readonly ZERO = new Amount(0n);

  /** The formatted text, computed once (amounts are immutable; responses format the same ones often). */
  private text: string | undefined = undefined;

  private constructor(
    /** Signed count of 10^-12 units. */
    readonly units: bigint,
  ) {}

  /** Wraps a raw unit count (10^-12 credits), as stored by the storage adapters. */
  static fromUnits(units: bigint): Amount {
    return units === 0n ? Amount.ZERO : new Amount(units);
  }

  /** Parses a decimal string such as `"1500"` or `"-0.000125"`; returns a failure reason instead of throwing. */
  static tryParse(text: string, maxIntegerDigits = MAX_INTEGER_DIGITS): Amount | AmountParseFailure {
    const match = DECIMAL_PATTERN.exec(text);
    if (!match) return 'not_a_decimal_string';
    const [, sign, integerPart = '0', fractionPart = ''] = match;
    if (fractionPart.length > AMOUNT_SCALE) {
      // Trailing zeros beyond the scale carry no value; anything else would need rounding.
      if (/[1-9]/.test(fractionPart.slice(AMOUNT_SCALE))) return 'too_many_decimals';
    }
    const significantInteger = integerPart.replace(/^0+(?=\d)/, '');
    if (significantInteger.length > maxIntegerDigits) return 'too_large';
    const fraction = fractionPart.slice(0, AMOUNT_SCALE).padEnd(AMOUNT_SCALE, '0');
    const units = BigInt(significantInteger) * SCALE_FACTOR + BigInt(fraction);
    return Amount.fromUnits(sign ? -units : units);
  }

  /**
   * Parses a decimal string, throwing on malformed input; for trusted text such as stored values
   * and literals. It takes any number of integer digits, so whatever a store holds reads back.
   */
  static parse(text: string): Amount {
    const parsed = Amount.tryParse(text, Number.POSITIVE_INFINITY);
    if (typeof parsed === 'string') throw new RangeError(`invalid amount "${text}": ${parsed}`);
    return parsed;
  }

  /** Whole credits as an amount; for tests and literals. */
  static of(value: bigint | string): Amount {
    return typeof value === 'bigint' ? Amount.fromUnits(value * SCALE_FACTOR) : Amount.parse(value);
  }

  plus(other: Amount): Amount {
    return Amount.fromUnits(this.units + other.units);
  }

  minus(other: Amount): Amount {
    return Amount.fromUnits(this.units - other.units);
  }

  negated(): Amount {
    return Amount.fromUnits(-this.units);
  }

  /** -1, 0 or 1, as for a sort comparator. */
  compare(other: Amount): -1 | 0 | 1 {
    return this.units < other.units ? -1 : this.units > other.units ? 1 : 0;
  }

  equals(other: Amount): boolean {
    return this.units === other.units;
  }

  lessThan(other: Amount): boolean {
    return this.units < other.units;
  }

  greaterThan(other: Amount): boolean {
    return this.units > other.units;
  }

  /** Whether a client may send this value, or one event may produce it: at most {@link MAX_INTEGER_DIGITS} integer digits. */
  isWithinValueRange(): boolean {
    return (this.units < 0n ? -this.units : this.units) < VALUE_LIMIT_UNITS;
  }

  /** Whether the books may hold this as a running total: below 10^{@link MAX_ACCOUNT_INTEGER_DIGITS} in magnitude. */
  isWithinAccountRange(): boolean {
    return (this.units < 0n ? -this.units : this.units) < ACCOUNT_LIMIT_UNITS;
  }

  isZero(): boolean {
    return this.units === 0n;
  }

  isPositive(): boolean {
    return this.units > 0n;
  }

  isNegative(): boolean {
    return this.units < 0n;
  }

  /** The smaller of two amounts. */
  static min(a: Amount, b: Amount): Amount {
    return a.units <= b.units ? a : b;
  }

  /** The larger of two amounts. */
  static max(a: Amount, b: Amount): Amount {
    return a.units >= b.units ? a : b;
  }

  /** Sum of many amounts. */
  static sum(amounts: Iterable<Amount>): Amount {
    let total = 0n;
    for (const amount of amounts) total += amount.units;
    return Amount.fromUnits(total);
  }

  /**
   * `this × numerator ÷ denominator`, rounded at the 12th decimal by the named rule: `down`
   * toward zero, `up` away from zero, `half_even` to the nearest (ties to even, banker's rounding).
   * Used for shares (cost basis per credit, percentages).
   */
  mulRatio(numerator: bigint, denominator: bigint, rounding: 'down' | 'up' | 'half_even'): Amount {
    if (denominator === 0n) throw new RangeError('division by zero');
    const product = this.units * numerator;
    let quotient = product / denominator;
    const remainder = product % denominator;
    if (remainder !== 0n) {
      const positive = product < 0n === denominator < 0n;
      const away = positive ? 1n : -1n;
      if (rounding === 'up') quotient += away;
      else if (rounding === 'half_even') {
        const twice = (remainder < 0n ? -remainder : remainder) * 2n;
        const absDenominator = denominator < 0n ? -denominator : denominator;
        if (twice > absDenominator || (twice === absDenominator && quotient % 2n !== 0n)) quotient += away;
      }
    }
    return Amount.fromUnits(quotient);
  }

  /** `this × other`, rounded at the 12th decimal by the named rule (see {@link mulRatio}). */
  times(other: Amount, rounding: 'down' | 'up' | 'half_even'): Amount {
    return this.mulRatio(other.units, SCALE_FACTOR, rounding);
  }

  /** ⌈this ÷ other⌉ as a whole number (e.g. packages needed for a quantity); `other` must be > 0. */
  ceilDiv(other: Amount): bigint {
    if (other.units <= 0n) throw new RangeError('division by a non-positive amount');
    const q = this.units / other.units;
    return this.units % other.units > 0n ? q + 1n : q;
  }

  /** Canonical decimal text: no exponent, no trailing fractional zeros (`"2.5"`, `"1500"`, `"-0.000125"`). */
  toString(): string {
    if (this.text !== undefined) return this.text;
    const negative = this.units < 0n;
    let digits = (negative ? -this.units : this.units).toString();
    if (digits.length <= AMOUNT_SCALE) digits = digits.padStart(AMOUNT_SCALE + 1, '0');
    const integer = digits.slice(0, digits.length - AMOUNT_SCALE);
    let end = digits.length;
    while (end > integer.length && digits.charCodeAt(end - 1) === 48) end -= 1;
    const fraction = digits.slice(integer.length, end);
    this.text = `${negative ? '-' : ''}${integer}${fraction ? `.${fraction}` : ''}`;
    return this.text;
  }

  toJSON(): string {
    return this.toString();
  }
}
