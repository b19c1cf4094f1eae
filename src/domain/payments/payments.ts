import { Amount } from '../amount/amount.js';
import { currencyExponent } from '../catalog/pricing.js';
import type { Instant } from '../time/instant.js';

/**
 * Payments in: what Burndown remembers of money a payment provider collected for credits, and the
 * exact rules that turn refunds and disputes of that money into credits taken back. Pure: the
 * services feed it provider amounts (integer minor units, as Stripe sends them) and store the
 * records.
 */

/** The money of a payment provider in decimal: minor units × 10^-exponent of the currency, exactly. */
export function fromMinorUnits(minor: bigint, currency: string): Amount {
  return Amount.fromUnits(minor * 10n ** BigInt(12 - currencyExponent(currency)));
}

/**
 * A decimal amount of money as the provider's integer minor units. Exact or null: a price with more
 * decimals than the currency has cannot be charged as it is (pack prices are rounded to the minor
 * unit when priced, so this does not happen for them).
 */
export function toMinorUnits(amount: Amount, currency: string): bigint | null {
  const step = 10n ** BigInt(12 - currencyExponent(currency));
  return amount.units % step === 0n ? amount.units / step : null;
}

/** Where a dispute of a payment stands. */
export type DisputeStatus = 'opened' | 'won' | 'lost';

/** A dispute of a payment (a chargeback) and the credits it concerns. */
export interface PaymentDispute {
  readonly id: string;
  status: DisputeStatus;
  /** The disputed money, in minor units. */
  readonly amountMinor: bigint;
  /** The credits of the purchase the disputed money paid for ({@link disputedCredits}). */
  readonly credits: Amount;
  /** The hold that freezes them while the dispute is open (null: nothing was free to hold). */
  readonly holdId: string | null;
}

/**
 * A payment that bought credits: a Stripe Checkout Session or an auto top-up charge, the purchase
 * and grant it made, and what refunds and disputes have taken back of it so far. Keyed by its
 * source id (`cs_…` or the top-up's `tpu_…`); found again by the provider's payment intent or charge.
 */
export interface PaymentRecord {
  readonly workspaceId: string;
  /** The Checkout Session id, or the pending top-up id for an auto top-up. */
  readonly id: string;
  readonly customerId: string;
  readonly purchaseId: string;
  readonly grantId: string;
  readonly creditType: string;
  /** Credits the purchase granted. */
  readonly credits: Amount;
  /** Money paid, in the provider's minor units, and its currency (upper case ISO 4217). */
  readonly amountMinor: bigint;
  readonly currency: string;
  paymentIntentId: string | null;
  chargeId: string | null;
  /** The cumulative `amount_refunded` already turned into clawbacks (minor units). */
  refundedMinor: bigint;
  /** Credits taken back for refunds so far. */
  refundCredits: Amount;
  /** Credits taken back for lost disputes so far. */
  disputeCredits: Amount;
  dispute: PaymentDispute | null;
  readonly createdAt: Instant;
  updatedAt: Instant;
}

/** Credits taken back of a payment so far, for refunds and lost disputes together. */
export function creditsTakenBack(payment: PaymentRecord): Amount {
  return payment.refundCredits.plus(payment.disputeCredits);
}

/**
 * The credits a refund takes back now, from the change of the cumulative refunded money.
 *
 * Rule: the credits due for a cumulative refund R of a payment P that granted C credits are
 * `C × R / P`, rounded down at the 12th decimal, and exactly C once R = P (a full refund takes
 * everything back). What is taken now is what is due less what earlier refunds took, so partial
 * refunds add up to exactly the share of their sum, whatever their order. Never more than the
 * credits not already taken back (a lost dispute took some). A cumulative amount that did not
 * grow (a repeated or reordered event) takes nothing.
 */
export function refundClawback(
  payment: PaymentRecord,
  cumulativeRefundedMinor: bigint,
): { readonly credits: Amount; readonly refundedNowMinor: bigint } {
  const refundedNowMinor = cumulativeRefundedMinor - payment.refundedMinor;
  if (refundedNowMinor <= 0n || payment.amountMinor <= 0n)
    return { credits: Amount.ZERO, refundedNowMinor: 0n };
  const refunded =
    cumulativeRefundedMinor >= payment.amountMinor ? payment.amountMinor : cumulativeRefundedMinor;
  const due =
    refunded === payment.amountMinor
      ? payment.credits
      : payment.credits.mulRatio(refunded, payment.amountMinor, 'down');
  const left = payment.credits.minus(creditsTakenBack(payment));
  const credits = Amount.max(Amount.ZERO, Amount.min(due.minus(payment.refundCredits), left));
  return { credits, refundedNowMinor };
}

/**
 * The credits a dispute of `disputedMinor` concerns: `C × disputed / P` rounded down at the 12th
 * decimal (all C when the whole payment is disputed), at most the credits not already taken back.
 */
export function disputedCredits(payment: PaymentRecord, disputedMinor: bigint): Amount {
  if (payment.amountMinor <= 0n || disputedMinor <= 0n) return Amount.ZERO;
  const share =
    disputedMinor >= payment.amountMinor
      ? payment.credits
      : payment.credits.mulRatio(disputedMinor, payment.amountMinor, 'down');
  return Amount.max(Amount.ZERO, Amount.min(share, payment.credits.minus(creditsTakenBack(payment))));
}

/** Where a Stripe event ended: applied, not a type Burndown acts on, or refused with a reason. */
export type StripeEventStatus = 'processed' | 'ignored' | 'failed';

/** A Stripe event as received, once per id: what exactly-once processing is keyed on. */
export interface StripeEventRecord {
  readonly workspaceId: string;
  /** Stripe's event id (`evt_…`). */
  readonly id: string;
  readonly type: string;
  readonly status: StripeEventStatus;
  /** Why it failed (unknown customer or pack, payment not found, …); null otherwise. */
  readonly reason: string | null;
  readonly customerId: string | null;
  /** The Stripe object it was about (`cs_…`, `ch_…`, `dp_…`). */
  readonly objectId: string | null;
  readonly receivedAt: Instant;
}

/** Where an auto top-up charged through a payment provider stands. */
export type TopUpStatus = 'pending' | 'succeeded' | 'failed';

/**
 * An auto top-up waiting for (or done with) its charge: recorded in the burn's transaction when the
 * balance crossed the threshold, charged later outside any transaction, granted in a second one.
 */
export interface PendingTopUp {
  readonly workspaceId: string;
  /** `tpu_…`: also the idempotency key of the charge, so a retried charge is charged once. */
  readonly id: string;
  readonly customerId: string;
  readonly packId: string;
  readonly quantity: number;
  readonly creditType: string;
  /** The price to charge (the pack price for the quantity), in decimal, and its currency. */
  readonly priceAmount: Amount;
  readonly currency: string;
  status: TopUpStatus;
  reason: string | null;
  /** The provider's reference of the charge (a payment intent id), once known. */
  providerRef: string | null;
  purchaseId: string | null;
  readonly createdAt: Instant;
  updatedAt: Instant;
}
