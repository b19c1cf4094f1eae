import { Amount } from '../amount/amount.js';

/** Integer digits a usage value may have (PostgreSQL NUMERIC(48,12) holds 36). */
export const MAX_USAGE_INTEGER_DIGITS = 36;

/**
 * Turns a usage value from event data into an exact decimal. Producers send JSON numbers
 * (`1200`, `0.5`, `1e-7`) or decimal strings (`"0.000125"`); both are read from their shortest
 * decimal text, never through float arithmetic. Returns null for anything else (booleans,
 * objects, NaN-like text, more than 12 decimals).
 */
export function usageValueFrom(value: unknown): Amount | null {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    text = expandExponent(String(value));
  } else if (typeof value === 'string') {
    text = expandExponent(value.trim());
  } else return null;
  // Usage may be larger than any credit amount a client sends (the stores hold 36 integer digits).
  const parsed = Amount.tryParse(text, MAX_USAGE_INTEGER_DIGITS);
  return typeof parsed === 'string' ? null : parsed;
}

/** `1.5e-7` → `0.00000015`, `2e21` → `2000000000000000000000`, by moving the decimal point in the text. */
function expandExponent(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/.exec(text);
  if (!m) return text;
  const [, sign = '', integer = '', fraction = '', exponentText = '0'] = m;
  const exponent = Number(exponentText);
  if (Math.abs(exponent) > 40) return text; // out of range: left for the parser to refuse
  const digits = integer + fraction;
  const point = integer.length + exponent;
  let result: string;
  if (point <= 0) result = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) result = digits + '0'.repeat(point - digits.length);
  else result = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${sign}${result}`;
}
