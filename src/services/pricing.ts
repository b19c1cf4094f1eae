import { Amount } from '../domain/amount/amount.js';
import type { Pricing } from '../domain/rating/rate.js';
import type { StoredPricing } from '../ports/storage.js';

/** Stored pricing (decimal strings) to the domain's. */
export function compilePricing(pricing: StoredPricing): Pricing {
  if ('credits_per_unit' in pricing)
    return { kind: 'per_unit', creditsPerUnit: Amount.parse(pricing.credits_per_unit) };
  if ('package' in pricing) {
    return {
      kind: 'package',
      size: Amount.parse(pricing.package.size),
      credits: Amount.parse(pricing.package.credits),
    };
  }
  return {
    kind: 'tiers',
    tiers: pricing.tiers.map((t) => ({
      upTo: t.up_to === null ? null : Amount.parse(t.up_to),
      creditsPerUnit: Amount.parse(t.credits_per_unit),
    })),
  };
}
