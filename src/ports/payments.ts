import type { Amount } from '../domain/amount/amount.js';

/**
 * A request to charge a customer off session (no one is there to confirm): an auto top-up. The
 * idempotency key makes a retried charge (after a crash between charging and granting) return the
 * first charge's outcome instead of charging twice.
 */
export interface ChargeRequest {
  /** The pending top-up id (`tpu_…`): the provider's idempotency key. */
  readonly idempotencyKey: string;
  readonly workspaceId: string;
  readonly customerId: string;
  /** The customer's metadata: where adapters find the provider's customer and payment method ids. */
  readonly customerMetadata: Readonly<Record<string, unknown>>;
  /** The price, in decimal, and its currency (ISO 4217, upper case). */
  readonly amount: Amount;
  readonly currency: string;
  readonly description: string;
}

/** How a charge ended: money collected (with the provider's reference), or refused with a reason. */
export type ChargeOutcome =
  | {
      readonly status: 'succeeded';
      /** The provider's payment reference (a Stripe PaymentIntent id). */
      readonly paymentIntentId: string;
      readonly chargeId: string | null;
      /** Money collected, in the provider's minor units. */
      readonly amountMinor: bigint;
    }
  | { readonly status: 'failed'; readonly reason: string; readonly paymentIntentId: string | null };

/**
 * The payment provider port: charges money. A network call, so callers never make it inside a
 * write transaction or a customer's lock. A failure the provider reports (card declined, no
 * payment method) is a `failed` outcome; only an unknown outcome (a timeout, a crash) throws, and
 * the caller retries later with the same idempotency key.
 */
export interface PaymentProvider {
  /** A short name for logs and records (`stripe`, `test`). */
  readonly name: string;
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
}
