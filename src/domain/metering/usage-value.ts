import { Amount, MAX_INTEGER_DIGITS } from '../amount/amount.js';

/**
 * Turns a usage value from event data into an exact decimal. Producers send JSON numbers
 * (`1200`, `0.5`, `1e-7`) or decimal strings (`"0.000125"`); both are read from their shortest
 * decimal text, never through float arithmetic. Returns null for anything else (booleans,
 * objects, NaN-like text, more than 12 decimals) and for a number past the value range (at most
 * 20 integer digits), which ingest refuses beforehand ({@link isUsageValueOutOfRange}).
 */
export function usageValueFrom(value: unknown): Amount | null {
  const parsed = parseUsageValue(value);
  return parsed === 'out_of_range' ? null : parsed;
}

/**
 * Whether a usage value is a number, but one past the value range (more than 20 integer digits,
 * or an exponent beyond it): such an event is refused with `value_out_of_range` rather than
 * silently left unmetered.
 */
export function isUsageValueOutOfRange(value: unknown): boolean {
  return parseUsageValue(value) === 'out_of_range';
}

/**
 * {@link usageValueFrom} and {@link isUsageValueOutOfRange} in one parse: the value, null when it
 * is no usable number, or `out_of_range` (ingest reads each event once, not once per check).
 */
export function parseUsageValue(value: unknown): Amount | null | 'out_of_range' {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    text = expandExponent(String(value));
  } else if (typeof value === 'string') {
    text = expandExponent(value.trim());
  } else return null;
  if (text === 'out_of_range') return text;
  const parsed = Amount.tryParse(text, MAX_INTEGER_DIGITS);
  if (parsed === 'too_large') return 'out_of_range';
  return typeof parsed === 'string' ? null : parsed;
}

/** `1.5e-7` → `0.00000015`, `2e21` → `2000000000000000000000`, by moving the decimal point in the text. */
function expandExponent(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/.exec(text);
  if (!m) return text;
  const [, sign = '', integer = '', fraction = '', exponentText = '0'] = m;
  const exponent = Number(exponentText);
  if (Math.abs(exponent) > 40) {
    // Far past the range either way: too large unless the digits are all zero; too small is left
    // for the parser to refuse (more than 12 decimals).
    if (exponent > 0 && /[1-9]/.test(integer + fraction)) return 'out_of_range';
    return exponent > 0 ? '0' : text;
  }
  const digits = integer + fraction;
  const point = integer.length + exponent;
  let result: string;
  if (point <= 0) result = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) result = digits + '0'.repeat(point - digits.length);
  else result = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${sign}${result}`;
}
