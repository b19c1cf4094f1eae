import { Type } from '@sinclair/typebox';
import type { WebhookEventDefinition } from './definition.js';

const Decimal = Type.String({ pattern: '^-?\\d+(\\.\\d+)?$', description: 'A decimal amount' });
const Time = Type.String({ format: 'date-time' });
const Money = Type.Object({ amount: Decimal, currency: Type.String() }, { additionalProperties: false });

/** Events of the ledger, purchases, subscriptions and webhook endpoints themselves. */
export const CORE_WEBHOOK_EVENTS: readonly WebhookEventDefinition[] = [
  {
    type: 'grant.created',
    summary:
      'Credits entered a ledger: a grant by the API, a purchase (API or auto top-up), or an allowance at a subscription start or renewal',
    data: Type.Object(
      {
        grant_id: Type.String(),
        customer_id: Type.String(),
        credit_type: Type.String(),
        category: Type.String(),
        amount: Decimal,
        priority: Type.Integer(),
        effective_at: Time,
        expires_at: Type.Union([Time, Type.Null()]),
        cost_basis: Type.Union([Money, Type.Null()]),
        description: Type.Union([Type.String(), Type.Null()]),
        metadata: Type.Record(Type.String(), Type.Unknown()),
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'grant.voided',
    summary: "A grant was voided: its free remainder (`amount_voided`) left the customer's balance",
    data: Type.Object(
      {
        grant_id: Type.String(),
        customer_id: Type.String(),
        credit_type: Type.String(),
        amount_voided: Decimal,
        reason: Type.Union([Type.String(), Type.Null()]),
        voided_at: Time,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'purchase.created',
    summary: 'Credit packs were bought (by the API or by auto top-up); the grant follows as grant.created',
    data: Type.Object(
      {
        purchase_id: Type.String(),
        customer_id: Type.String(),
        pack_id: Type.String(),
        quantity: Type.Integer({ minimum: 1 }),
        credits: Decimal,
        price: Money,
        grant_id: Type.String(),
        source: Type.Union([Type.Literal('api'), Type.Literal('auto_top_up')]),
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'subscription.renewed',
    summary: "A subscription's allowances were reset for a new period",
    data: Type.Object(
      {
        subscription_id: Type.String(),
        customer_id: Type.String(),
        plan_id: Type.String(),
        plan_version: Type.Integer(),
        period_start: Time,
        period_end: Time,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'subscription.canceled',
    summary: 'A subscription was canceled, at once or at the end of its period (`ends_at`)',
    data: Type.Object(
      {
        subscription_id: Type.String(),
        customer_id: Type.String(),
        plan_id: Type.String(),
        at_period_end: Type.Boolean(),
        canceled_at: Time,
        ends_at: Time,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'endpoint.disabled',
    summary:
      'A webhook endpoint was disabled by the dispatcher: it answered 410 (`gone`) or failed for too long (`failing`)',
    data: Type.Object(
      {
        endpoint_id: Type.String(),
        url: Type.String(),
        reason: Type.Union([Type.Literal('gone'), Type.Literal('failing')]),
        failing_since: Type.Union([Time, Type.Null()]),
      },
      { additionalProperties: false },
    ),
  },
];
