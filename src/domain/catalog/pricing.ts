import { Amount } from '../amount/amount.js';
import type { CreditPack, Money } from './catalog.js';

/** Currencies without minor units (ISO 4217 exponent 0). */
const ZERO_DECIMAL_CURRENCIES = new Set([
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'ISK',
  'JPY',
  'KMF',
  'KRW',
  'PYG',
  'RWF',
  'UGX',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
]);

/** Currencies with three decimal places of minor unit (ISO 4217 exponent 3). */
const THREE_DECIMAL_CURRENCIES = new Set(['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND']);

/** The minor-unit exponent of a currency (ISO 4217: 0, 3, or 2 for every other code). */
export function currencyExponent(currency: string): number {
  const code = currency.toUpperCase();
  if (ZERO_DECIMAL_CURRENCIES.has(code)) return 0;
  return THREE_DECIMAL_CURRENCIES.has(code) ? 3 : 2;
}

/** Rounds money half-up to the currency's minor unit. */
export function roundMoney(amount: Amount, currency: string): Amount {
  return roundRatioToMinorUnit(amount.units, 1n, currency);
}

/** (numerator ÷ denominator) 10^-12 units, rounded half-up (away from zero on ties) to the minor unit. */
function roundRatioToMinorUnit(numerator: bigint, denominator: bigint, currency: string): Amount {
  const step = 10n ** BigInt(12 - currencyExponent(currency));
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = (denominator < 0n ? -denominator : denominator) * step;
  const steps = (2n * n + d) / (2n * d);
  return Amount.fromUnits((negative ? -steps : steps) * step);
}

/** The discount that applies to `quantity` packs: the tier with the highest `minQuantity` reached. */
export function discountFor(pack: CreditPack, quantity: number): Amount {
  let best: { minQuantity: number; percentOff: Amount } | null = null;
  for (const tier of pack.volumeDiscounts) {
    if (quantity >= tier.minQuantity && (best === null || tier.minQuantity > best.minQuantity)) best = tier;
  }
  return best?.percentOff ?? Amount.ZERO;
}

/**
 * What buying `quantity` packs costs and grants: credits = pack credits × quantity (exact), price =
 * unit price × quantity × (1 − discount%), computed exactly and rounded half-up to the currency's
 * minor unit once, on the total. The price becomes the grant's cost basis.
 */
export function pricePurchase(
  pack: CreditPack,
  quantity: number,
): { readonly credits: Amount; readonly price: Money; readonly percentOff: Amount } {
  const q = BigInt(quantity);
  const percentOff = discountFor(pack, quantity);
  const hundred = Amount.of('100').units;
  const price = roundRatioToMinorUnit(
    pack.price.amount.units * q * (hundred - percentOff.units),
    hundred,
    pack.price.currency,
  );
  return {
    credits: Amount.fromUnits(pack.credits.units * q),
    price: { amount: price, currency: pack.price.currency },
    percentOff,
  };
}
