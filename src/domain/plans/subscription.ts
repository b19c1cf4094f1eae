import type { Amount } from '../amount/amount.js';
import type { Instant } from '../time/instant.js';

/** `active` until it ends; `canceled` once ended (now, or at the period end it was canceled for). */
export type SubscriptionStatus = 'active' | 'canceled';

/** A plan change waiting for a period end (downgrades and migrations to a cheaper version). */
export interface PendingChange {
  readonly planId: string;
  readonly planVersion: number;
  readonly at: Instant;
}

/**
 * A customer on one version of a plan. Periods are anniversaries of `anchorAt` in `timeZone`.
 * `nextAllowancePeriod[i]` is the index of the next period whose allowance `i` (of the current plan
 * version) is still to be issued: issuing advances it in the same transaction as the grant, which
 * is what makes every reset happen exactly once, however late it is processed.
 */
export interface Subscription {
  readonly workspaceId: string;
  readonly id: string;
  readonly customerId: string;
  planId: string;
  planVersion: number;
  status: SubscriptionStatus;
  readonly anchorAt: Instant;
  timeZone: string;
  nextAllowancePeriod: number[];
  /** Every credit type the subscription granted allowances in (all are cleared when it ends). */
  grantedCreditTypes: string[];
  /** When a cancel at period end takes effect. */
  cancelAt: Instant | null;
  endedAt: Instant | null;
  pendingChange: PendingChange | null;
  /** The earliest instant something is due (a reset, a change, the end); null when nothing is. */
  nextDueAt: Instant | null;
  readonly createdAt: Instant;
  updatedAt: Instant;
}

/** Who charges an auto top-up (see {@link AutoTopUp.provider}). */
export type AutoTopUpProvider = 'none' | 'stripe';

/** An auto top-up rule: buy `quantity` packs when the balance falls below `threshold`. */
export interface AutoTopUp {
  readonly workspaceId: string;
  readonly customerId: string;
  readonly enabled: boolean;
  readonly threshold: Amount;
  readonly packId: string;
  readonly quantity: number;
  readonly maxPerPeriod: number;
  readonly period: 'P1D' | 'P1W' | 'P1M' | 'P1Y';
  /**
   * Who collects the money: `none` grants the packs at once and leaves charging to the operator
   * (the behaviour before payment providers); `stripe` records a pending top-up that a worker
   * charges through the payment provider, granting only once the charge succeeded.
   */
  readonly provider: AutoTopUpProvider;
  /** Periods are anniversaries of this instant (UTC). */
  readonly anchorAt: Instant;
  /** Start of the period `countInPeriod` counts in. */
  periodStart: Instant;
  countInPeriod: number;
  readonly createdAt: Instant;
  updatedAt: Instant;
}

/** A bought credit pack: the record finance reconciles against the payment provider. */
export interface Purchase {
  readonly workspaceId: string;
  readonly id: string;
  readonly customerId: string;
  readonly packId: string;
  readonly quantity: number;
  readonly credits: Amount;
  readonly priceAmount: Amount;
  readonly currency: string;
  readonly percentOff: Amount;
  readonly grantId: string;
  /**
   * `api` for a purchase a client made, `auto_top_up` for one the engine made, `stripe_checkout`
   * for one a paid Stripe Checkout Session made.
   */
  readonly source: 'api' | 'auto_top_up' | 'stripe_checkout';
  readonly createdAt: Instant;
}
