import { Amount } from '../amount/amount.js';
import { dimensionValue, type MeterDefinition, quantityOf } from '../metering/meter.js';
import { civilFromDays } from '../time/civil.js';
import type { Instant } from '../time/instant.js';

/** One step of graduated pricing: units up to `upTo` (cumulative; null = no bound) cost `creditsPerUnit` each. */
export interface Tier {
  readonly upTo: Amount | null;
  readonly creditsPerUnit: Amount;
}

/** How a rate turns a quantity into credits. */
export type Pricing =
  | { readonly kind: 'per_unit'; readonly creditsPerUnit: Amount }
  | { readonly kind: 'package'; readonly size: Amount; readonly credits: Amount }
  | { readonly kind: 'tiers'; readonly tiers: readonly Tier[] };

/** A rate: prices the events of one meter (optionally only some of its dimension values) in a credit type. */
export interface RateDefinition {
  readonly id: string;
  readonly meterId: string;
  /** Dimension name (a `group_by` of the meter) → the value an event must have. */
  readonly filter: Readonly<Record<string, string>>;
  readonly creditType: string;
  readonly pricing: Pricing;
  readonly createdAt: Instant;
}

/** Whether an event's data passes the rate's dimension filter. */
export function rateMatches(rate: RateDefinition, meter: MeterDefinition, data: unknown): boolean {
  for (const [dimension, expected] of Object.entries(rate.filter)) {
    const path = meter.groupBy[dimension];
    if (!path || dimensionValue(data, path) !== expected) return false;
  }
  return true;
}

/**
 * Whether a pricing's price depends on the usage earlier in the rating period (graduated tiers
 * only). Rates never change once created, so usage counters are kept only for rates where this
 * holds: a per-unit or package rate prices every event alone, and counting its usage would cost
 * two statements per event for nothing.
 */
export function pricingUsesPeriodUsage(pricing: Pricing): boolean {
  return pricing.kind === 'tiers';
}

/**
 * Credits for one event of `quantity`, given the customer's usage of this rate earlier in the
 * same period (`usageBefore`, used by graduated tiers only).
 *
 * Rounding (the only place rating rounds): a per-unit or tier product with more than 12
 * decimals is rounded **up** at the 12th decimal, per event and per tier segment; a package
 * rate charges ⌈quantity ÷ size⌉ packages per event.
 */
export function priceQuantity(pricing: Pricing, quantity: Amount, usageBefore: Amount): Amount {
  switch (pricing.kind) {
    case 'per_unit':
      return quantity.times(pricing.creditsPerUnit, 'up');
    case 'package':
      return Amount.fromUnits(quantity.ceilDiv(pricing.size) * pricing.credits.units);
    case 'tiers': {
      let total = Amount.ZERO;
      let lower = Amount.ZERO;
      const from = usageBefore;
      const to = usageBefore.plus(quantity);
      for (const tier of pricing.tiers) {
        const upper = tier.upTo;
        const start = Amount.max(from, lower);
        const end = upper === null ? to : Amount.min(to, upper);
        if (end.greaterThan(start)) total = total.plus(end.minus(start).times(tier.creditsPerUnit, 'up'));
        if (upper === null || !to.greaterThan(upper)) break;
        lower = upper;
      }
      return total;
    }
  }
}

/**
 * The most one event of `quantity` can cost by this pricing, whatever the usage before it (for
 * tiers: at its dearest tier, plus the rounding of each segment). Ingest refuses an event whose
 * bound leaves the value range, so no single burn can.
 */
export function priceBound(pricing: Pricing, quantity: Amount): Amount {
  if (pricing.kind !== 'tiers') return priceQuantity(pricing, quantity, Amount.ZERO);
  let dearest = Amount.ZERO;
  for (const tier of pricing.tiers) dearest = Amount.max(dearest, tier.creditsPerUnit);
  return quantity.times(dearest, 'up').plus(Amount.fromUnits(BigInt(pricing.tiers.length)));
}

/** A rate's price for one event, or null when the rate does not apply to it. */
export function rateEvent(
  rate: RateDefinition,
  meter: MeterDefinition,
  event: { readonly type: string; readonly data: unknown },
  usageBefore: Amount,
): { readonly quantity: Amount; readonly credits: Amount } | null {
  if (event.type !== meter.eventType || !rateMatches(rate, meter, event.data)) return null;
  const quantity = quantityOf(meter, event.data);
  if (quantity === null || quantity.isNegative()) return null;
  return { quantity, credits: priceQuantity(rate.pricing, quantity, usageBefore) };
}

/** The rating period of an instant: the calendar month in UTC (graduated tiers restart each month). */
export function ratingPeriodStart(instant: Instant): Instant {
  const days = Math.floor(instant / 86_400_000);
  return (days - (civilFromDays(days).day - 1)) * 86_400_000;
}
