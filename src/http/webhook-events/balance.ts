import { Type } from '@sinclair/typebox';
import type { WebhookEventDefinition } from './definition.js';

/**
 * The `data` of the balance and expiry events (src/services/balance-alerts.ts writes them): their
 * published JSON Schemas. Amounts are decimal strings; instants RFC 3339. Every event names its
 * customer and credit type.
 */

const DECIMAL_PATTERN = '^-?[0-9]+(\\.[0-9]+)?$';
const Decimal = Type.String({ pattern: DECIMAL_PATTERN, description: 'Exact decimal string' });
const decimal = (description: string) => Type.String({ pattern: DECIMAL_PATTERN, description });
const Instant = Type.String({ format: 'date-time' });

const ledgerFields = {
  customer_id: Type.String(),
  credit_type: Type.String(),
};

/** The balance a write found and the one it left (recorded available: free credits less overage owed). */
const movedFields = {
  balance_before: Decimal,
  balance_after: Decimal,
};

const ThresholdRef = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('amount'), Type.Literal('percent')]),
    value: Decimal,
    level: decimal(
      'The threshold in credits when it was evaluated (a percent of the credits granted in force)',
    ),
  },
  { additionalProperties: false },
);

const thresholdEvent = (description: string) =>
  Type.Object(
    { ...ledgerFields, threshold: ThresholdRef, ...movedFields },
    { additionalProperties: false, description },
  );

/** The balance events: thresholds, depletion, overage, and expiries. */
export const BALANCE_EVENTS: readonly WebhookEventDefinition[] = [
  {
    type: 'balance.low',
    summary:
      'A write took the available balance from above a threshold to at or below it (once per crossing; the threshold re-arms on balance.recovered).',
    data: thresholdEvent('balance_before > threshold.level ≥ balance_after'),
  },
  {
    type: 'balance.recovered',
    summary:
      'The available balance rose above a threshold that had fired balance.low; the threshold is armed again.',
    data: thresholdEvent('balance_after > threshold.level'),
  },
  {
    type: 'balance.depleted',
    summary: 'A write took the available balance from above 0 to 0 or below (once per depletion).',
    data: Type.Object({ ...ledgerFields, ...movedFields }, { additionalProperties: false }),
  },
  {
    type: 'overage.started',
    summary: 'A write made the customer owe overage where it owed none.',
    data: Type.Object(
      { ...ledgerFields, ...movedFields, overage: decimal('Overage owed now') },
      { additionalProperties: false },
    ),
  },
  {
    type: 'grant.expired',
    summary: 'A grant reached its expiry and its unused credits left (applied on access or by the sweeper).',
    data: Type.Object(
      {
        ...ledgerFields,
        grant_id: Type.String(),
        amount: decimal('What the grant granted'),
        amount_expired: decimal('Its unused credits that expired'),
        expired_at: Instant,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'grant.expiring_soon',
    summary:
      'An open grant expires within a notice lead time (default 7 days and 1 day; once per grant and lead time).',
    data: Type.Object(
      {
        ...ledgerFields,
        grant_id: Type.String(),
        expires_at: Instant,
        lead_seconds: Type.Integer({ minimum: 1, description: 'The lead time this notice is for' }),
        remaining: decimal('Its remaining credits when noticed'),
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'balance.runway_below',
    summary:
      'The forecast runway (p50 of GET /v1/customers/{id}/forecast) fell under a runway_hours threshold, found by a periodic sweep; once per crossing, the threshold re-arms silently when the runway is back at or above it.',
    data: Type.Object(
      {
        ...ledgerFields,
        threshold: Type.Object(
          {
            id: Type.String(),
            kind: Type.Literal('runway_hours'),
            value: decimal('Hours of runway'),
          },
          { additionalProperties: false },
        ),
        runway_seconds: Type.Integer({ minimum: 0, description: 'Forecast runway when swept (0: depleted)' }),
        available: decimal('Available balance the forecast started from'),
        expected_depletion_at: {
          ...Instant,
          description: 'Median (p50) depletion; the sweep time when depleted',
        },
        depletion_p10: Type.Union([Instant, Type.Null()]),
        depletion_p90: Type.Union([Instant, Type.Null()], { description: 'null: beyond the horizon' }),
        forecast_at: Instant,
      },
      { additionalProperties: false },
    ),
  },
  {
    type: 'hold.expired',
    summary: "A hold's TTL lapsed before it was captured or released; its credits are free again.",
    data: Type.Object(
      {
        ...ledgerFields,
        hold_id: Type.String(),
        amount: decimal('What the hold reserved'),
        expired_at: Instant,
      },
      { additionalProperties: false },
    ),
  },
];
