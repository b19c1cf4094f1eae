/**
 * Exact decimal arithmetic for display (sums of the API's amount strings) with bigint, 12 decimals
 * as the server keeps them. Numbers are used only to draw charts, never for the figures shown.
 */
const SCALE = 12;
const FACTOR = 10n ** BigInt(SCALE);

/** An amount string ("1500", "-0.25") as units of 10^-12. */
export function units(text: string): bigint {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) return 0n;
  const [, sign, whole = '0', fraction = ''] = match;
  const value = BigInt(whole) * FACTOR + BigInt(fraction.padEnd(SCALE, '0').slice(0, SCALE) || '0');
  return sign ? -value : value;
}

/** Units back to the shortest exact decimal string. */
export function fromUnits(value: bigint): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / FACTOR;
  const fraction = (abs % FACTOR).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** The exact sum of amount strings. */
export function sum(values: readonly string[]): string {
  return fromUnits(values.reduce((s, v) => s + units(v), 0n));
}

/** Compares two amount strings exactly. */
export function compare(a: string, b: string): number {
  const d = units(a) - units(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** An amount with thousands separators and at most `decimals` decimals (cut, not rounded: exact digits). */
export function formatAmount(text: string, decimals = 4): string {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return text;
  const [, sign = '', whole = '0', fraction = ''] = match;
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cut = fraction.slice(0, decimals).replace(/0+$/, '');
  const more = fraction.length > decimals && /[1-9]/.test(fraction.slice(decimals)) ? '…' : '';
  return `${sign}${grouped}${cut ? `.${cut}` : ''}${more}`;
}

/** For charts only: an amount string as a float. */
export function toChartNumber(text: string): number {
  return Number(text);
}
