import { Type } from '@sinclair/typebox';
import type { WebhookEventDefinition } from './definition.js';

/** A decimal amount as the webhooks carry it (credits or money, never a JSON number). */
const Decimal = Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', description: 'Exact decimal string' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

/** What every payment fact names: who paid, for which purchase and grant. */
const paymentFields = {
  customer_id: Type.String(),
  purchase_id: Type.String(),
  grant_id: Type.String(),
  credit_type: Type.String(),
  charge_id: Nullable(Type.String()),
  payment_intent_id: Nullable(Type.String()),
  currency: Type.String({ description: 'ISO 4217, upper case' }),
};

/** What every top-up fact names: the customer, the top-up and what it buys. */
const topUpFields = {
  customer_id: Type.String(),
  top_up_id: Type.String({ description: 'The pending top-up (`tpu_…`), also the charge idempotency key' }),
  pack_id: Type.String(),
  quantity: Type.Integer({ minimum: 1 }),
  credit_type: Type.String(),
  amount: Decimal,
  currency: Type.String(),
  payment_intent_id: Nullable(Type.String()),
};

/**
 * The webhook events of payments in (Stripe refunds and disputes, auto top-ups charged through a
 * payment provider): their types and the JSON Schemas of their `data`, for the OpenAPI `webhooks`
 * section and for tests that check every emitted fact against its schema.
 */
export const PAYMENT_EVENTS: readonly WebhookEventDefinition[] = [
  {
    type: 'payment.refunded',
    summary:
      'A payment that bought credits was (partly) refunded: the credits of the refunded share were clawed back; what the grant no longer had became overage',
    data: Type.Object(
      {
        ...paymentFields,
        amount_refunded: Decimal,
        amount_refunded_total: Decimal,
        credits_clawed_back: Decimal,
        credits_became_overage: Decimal,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'payment.disputed',
    summary:
      'A payment that bought credits was disputed (`opened`: its credits are held), or the dispute closed (`won`: released; `lost`: clawed back)',
    data: Type.Object(
      {
        ...paymentFields,
        dispute_id: Type.String(),
        status: Type.Union([Type.Literal('opened'), Type.Literal('won'), Type.Literal('lost')]),
        amount_disputed: Decimal,
        credits_disputed: Decimal,
        credits_held: Decimal,
        credits_clawed_back: Decimal,
        credits_became_overage: Decimal,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'topup.succeeded',
    summary: 'An auto top-up was charged through the payment provider and its packs granted',
    data: Type.Object(
      {
        ...topUpFields,
        purchase_id: Type.String(),
        grant_id: Type.String(),
        credits: Decimal,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'topup.failed',
    summary: 'An auto top-up charge failed (declined, no saved payment method): nothing was granted',
    data: Type.Object({ ...topUpFields, reason: Type.String() }, { additionalProperties: false }),
  },
];
