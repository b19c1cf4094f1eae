import { Amount } from '../amount/amount.js';
import type { Entitlement, Feature } from '../catalog/catalog.js';

/** Why a check answered as it did (docs/api.md "Check"). */
export type CheckReason = 'ok' | 'insufficient_credits' | 'no_entitlement' | 'limit_reached';

/** Everything a check decides on, gathered by the caller (no I/O here). */
export interface CheckFacts {
  readonly feature: Feature;
  /** The customer's entitlement to the feature through an active subscription, or null. */
  readonly entitlement: Entitlement | null;
  readonly quantity: Amount;
  /** What the quantity costs in credits (zero for boolean, config and unpriced metered features). */
  readonly credits: Amount;
  /** What a burn for this feature may draw on now, minus overage owed (may be negative). */
  readonly available: Amount;
  /** Usage of the feature already counted in the current usage-limit period. */
  readonly usedInPeriod: Amount;
}

/** A check's answer. `reserve` is what a hold should pin when the caller asked for one. */
export interface CheckDecision {
  readonly allowed: boolean;
  readonly reason: CheckReason;
  readonly reserve: Amount;
}

const refuse = (reason: CheckReason): CheckDecision => ({ allowed: false, reason, reserve: Amount.ZERO });

/**
 * Decides whether the customer may use `quantity` of the feature now. Order: entitlement, usage
 * limit, then credits. Credits: allowed when they fit the available balance; otherwise, under a
 * soft limit (entitlement with `overage`), allowed while the debt after the burn stays within the
 * cap (`limit_reached` past it); under a hard limit, `insufficient_credits`. A hold reserves what
 * the balance can cover (all of it unless the use runs into overage).
 */
export function decideCheck(facts: CheckFacts): CheckDecision {
  const { feature, entitlement } = facts;
  if (entitlement === null || feature.archivedAt !== null) return refuse('no_entitlement');
  if (feature.type !== 'metered') return { allowed: true, reason: 'ok', reserve: Amount.ZERO };
  const limit = entitlement.usageLimit;
  if (limit !== null && facts.usedInPeriod.plus(facts.quantity).greaterThan(limit.amount)) {
    return refuse('limit_reached');
  }
  if (!facts.credits.isPositive()) return { allowed: true, reason: 'ok', reserve: Amount.ZERO };
  if (!facts.credits.greaterThan(facts.available)) {
    return { allowed: true, reason: 'ok', reserve: facts.credits };
  }
  if (entitlement.overage === null) return refuse('insufficient_credits');
  const debtAfter = facts.credits.minus(facts.available);
  const max = entitlement.overage.max;
  if (max !== null && debtAfter.greaterThan(max)) return refuse('limit_reached');
  return { allowed: true, reason: 'ok', reserve: Amount.max(Amount.ZERO, facts.available) };
}
