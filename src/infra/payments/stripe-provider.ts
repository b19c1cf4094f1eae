import Stripe from 'stripe';
import { toMinorUnits } from '../../domain/payments/payments.js';
import type { ChargeOutcome, ChargeRequest, PaymentProvider } from '../../ports/payments.js';

/**
 * The Stripe adapter of the payment provider port: an off-session PaymentIntent, confirmed at
 * once, on the customer's saved card. The customer's Stripe ids come from its Burndown metadata:
 * `stripe_customer_id` (`cus_…`) and `stripe_payment_method_id` (`pm_…`, a card saved for off-session
 * use, e.g. by a Checkout Session in `setup` mode or with `setup_future_usage: 'off_session'`).
 *
 * The top-up id is the idempotency key, so a retried charge returns the first PaymentIntent. A
 * decline (or an authentication the customer must complete, which off session cannot) is a
 * `failed` outcome; a network or API error throws, and the worker retries later.
 */
export class StripePaymentProvider implements PaymentProvider {
  readonly name = 'stripe';
  private readonly stripe: Stripe;

  constructor(secretKey: string, options: { readonly timeoutMs?: number } = {}) {
    this.stripe = new Stripe(secretKey, { timeout: options.timeoutMs ?? 30_000, maxNetworkRetries: 2 });
  }

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const customer = metadataText(request.customerMetadata, 'stripe_customer_id');
    const paymentMethod = metadataText(request.customerMetadata, 'stripe_payment_method_id');
    if (customer === null || paymentMethod === null) {
      return {
        status: 'failed',
        reason: 'the customer has no stripe_customer_id and stripe_payment_method_id in its metadata',
        paymentIntentId: null,
      };
    }
    const minor = toMinorUnits(request.amount, request.currency);
    // Stripe's API takes amounts as JSON integers; beyond 2^53 no real price goes.
    if (minor === null || minor <= 0n || minor > BigInt(Number.MAX_SAFE_INTEGER)) {
      return {
        status: 'failed',
        reason: `${request.amount.toString()} ${request.currency} cannot be charged in minor units`,
        paymentIntentId: null,
      };
    }
    try {
      const intent = await this.stripe.paymentIntents.create(
        {
          amount: Number(minor),
          currency: request.currency.toLowerCase(),
          customer,
          payment_method: paymentMethod,
          off_session: true,
          confirm: true,
          description: request.description,
          metadata: {
            burndown_workspace_id: request.workspaceId,
            burndown_customer_id: request.customerId,
            burndown_top_up_id: request.idempotencyKey,
          },
        },
        { idempotencyKey: request.idempotencyKey },
      );
      if (intent.status === 'succeeded') {
        return {
          status: 'succeeded',
          paymentIntentId: intent.id,
          chargeId:
            typeof intent.latest_charge === 'string'
              ? intent.latest_charge
              : (intent.latest_charge?.id ?? null),
          amountMinor: BigInt(intent.amount_received),
        };
      }
      return {
        status: 'failed',
        reason: `payment intent ${intent.id} is ${intent.status}, not succeeded (off session: no one can complete it)`,
        paymentIntentId: intent.id,
      };
    } catch (error) {
      if (error instanceof Stripe.errors.StripeCardError) {
        const raw = error as Stripe.errors.StripeCardError & { payment_intent?: { id?: string } };
        return {
          status: 'failed',
          reason: `card declined: ${error.decline_code ?? error.code ?? 'unknown'} (${error.message})`,
          paymentIntentId: raw.payment_intent?.id ?? null,
        };
      }
      throw error;
    }
  }
}

function metadataText(metadata: Readonly<Record<string, unknown>>, key: string): string | null {
  const v = metadata[key];
  return typeof v === 'string' && v !== '' ? v : null;
}
