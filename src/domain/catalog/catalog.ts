import type { Amount } from '../amount/amount.js';
import type { Instant } from '../time/instant.js';
import type { Period } from '../time/periods.js';

/** What a customer can be entitled to (docs/design.md "Plans, allowances and resets"). */
export type FeatureType = 'boolean' | 'metered' | 'config';
export const FEATURE_TYPES: readonly FeatureType[] = ['boolean', 'metered', 'config'];

/**
 * A feature. A metered one is priced in credits either by its rates (the quantity a check asks
 * about is priced like usage) or by a fixed `creditsPerUse`; with neither it is only counted
 * against usage limits.
 */
export interface Feature {
  readonly workspaceId: string;
  readonly id: string;
  readonly type: FeatureType;
  readonly name: string | null;
  readonly creditType: string;
  readonly rateIds: readonly string[];
  readonly creditsPerUse: Amount | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Instant;
  readonly updatedAt: Instant;
  /** Archived features keep their history but entitle nobody any more. */
  readonly archivedAt: Instant | null;
}

/** A cap on how much of a metered feature may be used per period of the subscription. */
export interface UsageLimit {
  readonly amount: Amount;
  readonly period: Period;
}

/**
 * How a plan grants one feature. `overage` null is a hard limit (no credits, no use); otherwise
 * use may run into overage debt up to `max` (null: uncapped), past which check says `limit_reached`.
 */
export interface Entitlement {
  readonly featureId: string;
  readonly usageLimit: UsageLimit | null;
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly overage: { readonly max: Amount | null } | null;
}

/**
 * What is left of an allowance at a reset and may be carried into the next period: up to `max`
 * credits or `maxPercent` of the allowance, in total across live rollovers, optionally expiring
 * `expiresAfterPeriods` periods after the reset that carried it.
 */
export interface RolloverRule {
  readonly max: Amount | null;
  readonly maxPercent: Amount | null;
  readonly expiresAfterPeriods: number | null;
}

/** Credits a plan grants every period, as `allowance` grants that expire at the next reset. */
export interface Allowance {
  readonly creditType: string;
  readonly amount: Amount;
  readonly period: Period;
  readonly priority: number;
  readonly rollover: RolloverRule | null;
  readonly appliesTo: readonly string[] | null;
}

/** A price for reference (invoicing is the payment provider's job). */
export interface Money {
  readonly amount: Amount;
  readonly currency: string;
}

/** One immutable version of a plan: editing a plan makes a new version, subscriptions keep theirs. */
export interface PlanVersion {
  readonly workspaceId: string;
  readonly id: string;
  readonly version: number;
  readonly name: string | null;
  readonly timeZone: string;
  /** The subscription's billing period: what `current_period`, cancel at period end and downgrades follow. */
  readonly billingPeriod: Period;
  readonly entitlements: readonly Entitlement[];
  readonly allowances: readonly Allowance[];
  readonly price: Money | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Instant;
}

/** A discount that applies from a quantity on (the highest matching tier wins). */
export interface VolumeDiscount {
  readonly minQuantity: number;
  readonly percentOff: Amount;
}

/** A product to buy: `credits` of a type for `price`, cheaper in bulk. */
export interface CreditPack {
  readonly workspaceId: string;
  readonly id: string;
  readonly name: string | null;
  readonly creditType: string;
  readonly credits: Amount;
  readonly price: Money;
  readonly volumeDiscounts: readonly VolumeDiscount[];
  /** Purchased credits expire this many days after purchase; null: never. */
  readonly expiresAfterDays: number | null;
  readonly priority: number;
  readonly createdAt: Instant;
}
