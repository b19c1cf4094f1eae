import { Type } from '@sinclair/typebox';
import { FEATURE_TYPES } from '../domain/catalog/catalog.js';
import { PERIODS } from '../domain/time/periods.js';
import { AmountText, Currency, Id, Metadata, MoneyText, Nullable, Time } from './schemas.js';

/** Schemas of features, plans, subscriptions, credit packs, purchases, auto top-up and check. */

const PeriodText = Type.Union(
  PERIODS.map((p) => Type.Literal(p)),
  { description: 'ISO 8601 duration of one day, week, month or year' },
);
const Name = Type.String({ maxLength: 256 });
const Price = Type.Object({ amount: MoneyText, currency: Currency }, { additionalProperties: false });
const Percent = Type.String({ pattern: '^[0-9]{1,3}(\\.[0-9]{1,12})?$', description: 'Percent, 0–100' });

// ---- requests ----

export const FeatureFields = {
  type: Type.Union(FEATURE_TYPES.map((t) => Type.Literal(t))),
  name: Type.Optional(Nullable(Name)),
  credit_type: Type.Optional(Id),
  rate_ids: Type.Optional(Type.Array(Id, { maxItems: 50 })),
  credits_per_use: Type.Optional(Nullable(AmountText)),
  metadata: Type.Optional(Metadata),
};

export const CreateFeatureBody = Type.Object({ id: Id, ...FeatureFields }, { additionalProperties: false });
export const ReplaceFeatureBody = Type.Object(FeatureFields, { additionalProperties: false });

const EntitlementInput = Type.Object(
  {
    feature_id: Id,
    usage_limit: Type.Optional(
      Nullable(Type.Object({ amount: AmountText, period: PeriodText }, { additionalProperties: false })),
    ),
    config: Type.Optional(Nullable(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown()))),
    overage: Type.Optional(
      Nullable(
        Type.Object(
          { max: Type.Optional(Nullable(AmountText)) },
          {
            additionalProperties: false,
            description: 'Soft limit: use may run into overage debt up to max (null: uncapped)',
          },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

const AllowanceInput = Type.Object(
  {
    credit_type: Type.Optional(Id),
    amount: AmountText,
    period: PeriodText,
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Default 5' })),
    rollover: Type.Optional(
      Nullable(
        Type.Object(
          {
            max: Type.Optional(AmountText),
            max_percent: Type.Optional(Percent),
            expires_after_periods: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1000 }))),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    applies_to: Type.Optional(Nullable(Type.Array(Id, { maxItems: 100 }))),
  },
  { additionalProperties: false },
);

export const PlanFields = {
  name: Type.Optional(Nullable(Name)),
  time_zone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone, default UTC' })),
  billing_period: Type.Optional(PeriodText),
  entitlements: Type.Optional(Type.Array(EntitlementInput, { maxItems: 200 })),
  allowances: Type.Optional(Type.Array(AllowanceInput, { maxItems: 20 })),
  price: Type.Optional(Nullable(Price)),
  metadata: Type.Optional(Metadata),
};

export const CreatePlanBody = Type.Object({ id: Id, ...PlanFields }, { additionalProperties: false });
export const ReplacePlanBody = Type.Object(PlanFields, { additionalProperties: false });

export const CreateSubscriptionBody = Type.Object(
  {
    plan_id: Id,
    plan_version: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
    start_at: Type.Optional(Time),
    allow_multiple: Type.Optional(
      Type.Boolean({
        description:
          'Default false: a customer with a live subscription to this plan gets 409 already_subscribed',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CancelSubscriptionBody = Type.Object(
  { at_period_end: Type.Optional(Type.Boolean({ description: 'Default false: end now' })) },
  { additionalProperties: false },
);

export const ChangeSubscriptionBody = Type.Object(
  {
    plan_id: Id,
    plan_version: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Default: the latest version' }),
    ),
    at: Type.Optional(
      Type.Union([Type.Literal('now'), Type.Literal('period_end')], {
        description: 'Default: now for an upgrade (price not lower), period_end for a downgrade',
      }),
    ),
    allow_multiple: Type.Optional(
      Type.Boolean({
        description:
          'Default false: moving onto a plan another live subscription of the customer is on is a 409 already_subscribed',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CreateCreditPackBody = Type.Object(
  {
    id: Id,
    name: Type.Optional(Nullable(Name)),
    credit_type: Type.Optional(Id),
    credits: AmountText,
    price: Price,
    volume_discounts: Type.Optional(
      Type.Array(
        Type.Object(
          { min_quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }), percent_off: Percent },
          { additionalProperties: false },
        ),
        { maxItems: 20 },
      ),
    ),
    expires_after_days: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 36_500 }))),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Default 10' })),
  },
  { additionalProperties: false },
);

export const CreatePurchaseBody = Type.Object(
  {
    pack_id: Id,
    quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Default 1' })),
  },
  { additionalProperties: false },
);

export const PutAutoTopUpBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Default true' })),
    threshold: AmountText,
    pack_id: Id,
    quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    max_per_period: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Default 1' })),
    period: Type.Optional(PeriodText),
    provider: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('stripe')], {
        description:
          "Who charges the top-up. `none` (default): the packs are granted at once and charging is up to you; `stripe`: the top-up is charged off session through Stripe (the customer's metadata `stripe_customer_id` and `stripe_payment_method_id`) and granted only when the charge succeeds (`topup.succeeded` / `topup.failed`).",
      }),
    ),
  },
  { additionalProperties: false },
);

export const CheckRequestBody = Type.Object(
  {
    customer_id: Id,
    feature_id: Id,
    quantity: Type.Optional(AmountText),
    hold: Type.Optional(
      Nullable(
        Type.Object(
          {
            ttl_seconds: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 30 * 24 * 3600,
                description: 'Default 60; at most BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS (default 900)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

export const SubscriptionIdParams = Type.Object({
  subscription_id: Type.String({ pattern: '^[A-Za-z0-9_]{1,64}$' }),
});

// ---- responses ----

const Json = Type.Record(Type.String(), Type.Unknown());

export const FeatureBody = Type.Object({
  id: Type.String(),
  type: Type.String(),
  name: Nullable(Type.String()),
  credit_type: Type.String(),
  rate_ids: Type.Array(Type.String()),
  credits_per_use: Nullable(AmountText),
  metadata: Metadata,
  archived: Type.Boolean(),
  created_at: Time,
  updated_at: Time,
});

export const PlanBody = Type.Object({
  id: Type.String(),
  version: Type.Integer(),
  name: Nullable(Type.String()),
  time_zone: Type.String(),
  billing_period: Type.String(),
  entitlements: Type.Array(
    Type.Object({
      feature_id: Type.String(),
      usage_limit: Nullable(Type.Object({ amount: AmountText, period: Type.String() })),
      config: Nullable(Json),
      overage: Nullable(Type.Object({ max: Nullable(AmountText) })),
    }),
  ),
  allowances: Type.Array(
    Type.Object({
      credit_type: Type.String(),
      amount: AmountText,
      period: Type.String(),
      priority: Type.Integer(),
      rollover: Nullable(
        Type.Object({
          max: Nullable(AmountText),
          max_percent: Nullable(Type.String()),
          expires_after_periods: Nullable(Type.Integer()),
        }),
      ),
      applies_to: Nullable(Type.Array(Type.String())),
    }),
  ),
  price: Nullable(Type.Object({ amount: Type.String(), currency: Type.String() })),
  metadata: Metadata,
  created_at: Time,
});

const PeriodBody = Type.Object({ start: Time, end: Time });

export const SubscriptionBody = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  plan_id: Type.String(),
  plan_version: Type.Integer(),
  status: Type.String(),
  start_at: Time,
  time_zone: Type.String(),
  current_period: PeriodBody,
  cancel_at: Nullable(Time),
  ended_at: Nullable(Time),
  pending_change: Nullable(Type.Object({ plan_id: Type.String(), plan_version: Type.Integer(), at: Time })),
  created_at: Time,
});

export const CreditPackBody = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  credit_type: Type.String(),
  credits: AmountText,
  price: Type.Object({ amount: Type.String(), currency: Type.String() }),
  volume_discounts: Type.Array(Type.Object({ min_quantity: Type.Integer(), percent_off: Type.String() })),
  expires_after_days: Nullable(Type.Integer()),
  priority: Type.Integer(),
  created_at: Time,
});

export const PurchaseBody = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  pack_id: Type.String(),
  quantity: Type.Integer(),
  credits: AmountText,
  price: Type.Object({ amount: Type.String(), currency: Type.String() }),
  percent_off: Type.String(),
  grant_id: Type.String(),
  source: Type.String(),
  created_at: Time,
});

export const AutoTopUpBody = Type.Object({
  customer_id: Type.String(),
  enabled: Type.Boolean(),
  threshold: AmountText,
  pack_id: Type.String(),
  quantity: Type.Integer(),
  max_per_period: Type.Integer(),
  period: Type.String(),
  provider: Type.Union([Type.Literal('none'), Type.Literal('stripe')]),
  current_period_start: Time,
  count_in_period: Type.Integer(),
  updated_at: Time,
});

export const CheckBody = Type.Object({
  allowed: Type.Boolean(),
  reason: Type.Union(
    ['ok', 'insufficient_credits', 'no_entitlement', 'limit_reached'].map((r) => Type.Literal(r)),
  ),
  credits: AmountText,
  available: AmountText,
  hold_id: Nullable(Type.String()),
  credit_type: Type.String(),
  feature_type: Type.String(),
  config: Nullable(Json),
  usage: Nullable(Type.Object({ used: AmountText, limit: AmountText, period_start: Time })),
});
