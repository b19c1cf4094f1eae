import { Amount } from '../amount/amount.js';
import type { CreditPack, Money } from './catalog.js';

/** Currencies without minor units (ISO 4217 exponent 0); every other currency is priced to the cent. */
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

/** The minor-unit exponent of a currency (2 unless it has none). */
export function currencyExponent(currency: string): number {
  return ZERO_DECIMAL_CURRENCIES.has(currency.toUpperCase()) ? 0 : 2;
}

/** Rounds money half-up to the currency's minor unit: the one rounding rule of pack prices. */
export function roundMoney(amount: Amount, currency: string): Amount {
  const step = 10n ** BigInt(12 - currencyExponent(currency));
  const units = amount.units;
  const sign = units < 0n ? -1n : 1n;
  const magnitude = units * sign;
  const rounded = ((magnitude + step / 2n) / step) * step;
  return Amount.fromUnits(rounded * sign);
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
 * unit price × quantity × (1 − discount%), rounded half-up to the currency's minor unit once, on
 * the total. The price becomes the grant's cost basis.
 */
export function pricePurchase(
  pack: CreditPack,
  quantity: number,
): { readonly credits: Amount; readonly price: Money; readonly percentOff: Amount } {
  const q = BigInt(quantity);
  const percentOff = discountFor(pack, quantity);
  const gross = Amount.fromUnits(pack.price.amount.units * q);
  // gross × (100 − percent) / 100, exact in 10^-12 units before the one rounding to the cent.
  const net = gross.mulRatio(Amount.of('100').minus(percentOff).units, Amount.of('100').units, 'half_even');
  return {
    credits: Amount.fromUnits(pack.credits.units * q),
    price: { amount: roundMoney(net, pack.price.currency), currency: pack.price.currency },
    percentOff,
  };
}
