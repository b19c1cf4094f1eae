import { type TSchema, Type } from '@sinclair/typebox';
import { GRANT_CATEGORIES, GRANT_STATUSES } from '../domain/ledger/types.js';

/**
 * The JSON Schemas that validate requests and, through @fastify/swagger, make /openapi.json. One
 * source for both, so the published contract cannot drift from what the server accepts.
 */

/** Marks a schema as a credit amount so a validation failure maps to `invalid_amount`. */
const AMOUNT_MARK = { 'x-amount': true } as const;

/**
 * A client-chosen id: 1 to 128 of `A–Z a–z 0–9 . _ : -`, but not `.` or `..` and without `..`
 * inside, so an id is never read as a path segment that climbs (ids travel in URL paths).
 */
export const Id = Type.String({
  pattern: '^(?!\\.{1,2}$)(?!.*\\.\\.)[A-Za-z0-9._:-]{1,128}$',
  description: 'Client-chosen id: 1 to 128 of A-Z a-z 0-9 . _ : - (not "." or "..", no "..")',
});
/** A server-made opaque id, as it appears in paths. */
export const OpaqueId = Type.String({ pattern: '^[A-Za-z0-9_]{1,64}$' });
/** An amount of credits: a decimal string, at most 12 decimals; JSON numbers are refused. */
export const AmountText = Type.String({
  pattern: '^-?[0-9]+(\\.[0-9]+)?$',
  maxLength: 64,
  description: 'Exact decimal string, e.g. "1500" or "0.000125" (at most 12 decimals)',
  ...AMOUNT_MARK,
});
/** A decimal money value (cost basis, prices). */
export const MoneyText = Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$', maxLength: 40, ...AMOUNT_MARK });
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code' });
export const Time = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp' });
export const Metadata = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), {
  maxProperties: 50,
  description: 'Free-form key/value pairs (at most 50 keys, 16 KiB serialised)',
});
export const Description = Type.String({ maxLength: 1000 });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  },
  { $id: 'Error' },
);

// ---- requests ----

export const CreateCustomerBody = Type.Object(
  {
    id: Id,
    name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const UpdateCustomerBody = Type.Object(
  {
    name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const CreateCreditTypeBody = Type.Object(
  { id: Id, name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))) },
  { additionalProperties: false },
);

export const CreateGrantBody = Type.Object(
  {
    amount: AmountText,
    credit_type: Type.Optional(Id),
    category: Type.Optional(Type.Union(GRANT_CATEGORIES.map((c) => Type.Literal(c)))),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    effective_at: Type.Optional(Time),
    expires_at: Type.Optional(Nullable(Time)),
    cost_basis: Type.Optional(
      Nullable(Type.Object({ amount: MoneyText, currency: Currency }, { additionalProperties: false })),
    ),
    applies_to: Type.Optional(Nullable(Type.Array(Id, { maxItems: 100 }))),
    description: Type.Optional(Nullable(Description)),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const VoidGrantBody = Type.Object(
  { reason: Type.Optional(Nullable(Description)) },
  { additionalProperties: false },
);

export const CreateDebitBody = Type.Object(
  {
    amount: AmountText,
    credit_type: Type.Optional(Id),
    description: Type.Optional(Nullable(Description)),
    metadata: Type.Optional(Metadata),
    allow_overage: Type.Optional(Type.Boolean()),
    feature_id: Type.Optional(
      Nullable({
        ...Id,
        description: 'The feature the credits pay for: draws only on grants that apply to it',
      }),
    ),
    quantity: Type.Optional(AmountText),
    manual: Type.Optional(
      Type.Boolean({
        description:
          "An operator's adjustment, not usage: recorded in the audit log (default false; usage debits are not audited)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const CreateHoldBody = Type.Object(
  {
    amount: AmountText,
    credit_type: Type.Optional(Id),
    feature_id: Type.Optional(Nullable(Id)),
    ttl_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, description: 'Default 300' }),
    ),
    description: Type.Optional(Nullable(Description)),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const CaptureHoldBody = Type.Object(
  {
    amount: Type.Optional(AmountText),
    allow_overage: Type.Optional(Type.Boolean()),
    description: Type.Optional(Nullable(Description)),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const EmptyBody = Type.Object({}, { additionalProperties: false });

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1–1000, default 100' })),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const ListGrantsQuery = Type.Object(
  {
    ...ListQuery.properties,
    status: Type.Optional(Type.Union(GRANT_STATUSES.map((s) => Type.Literal(s)))),
    credit_type: Type.Optional(Id),
  },
  { additionalProperties: false },
);

export const BalanceQuery = Type.Object(
  { credit_type: Type.Optional(Id), at: Type.Optional(Time), feature_id: Type.Optional(Id) },
  { additionalProperties: false },
);

/** A balance series: from, from + step, … up to and including to (at most 1,000 points). */
export const BalanceSeriesQuery = Type.Object(
  {
    credit_type: Type.Optional(Id),
    from: Time,
    to: Type.Optional(Time),
    step: Type.Union([Type.Literal('day'), Type.Literal('hour')], {
      description: 'Spacing of the points: `day` (24 h) or `hour`; at most 1,000 points per series',
    }),
  },
  { additionalProperties: false },
);

export const BalanceSeriesBody = Type.Object({
  customer_id: Type.String(),
  credit_type: Type.String(),
  step: Type.String(),
  points: Type.Array(
    Type.Object({
      at: Type.String(),
      available: Type.String(),
      held: Type.String(),
      overage: Type.String(),
    }),
  ),
});

export const LedgerQuery = Type.Object(
  {
    ...ListQuery.properties,
    credit_type: Type.Optional(Id),
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    order: Type.Optional(
      Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
        description:
          'Default asc (oldest first); desc lists newest first. A cursor is valid only with the order it came from',
      }),
    ),
  },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Id });
export const GrantIdParams = Type.Object({ grant_id: OpaqueId });
export const HoldIdParams = Type.Object({ hold_id: OpaqueId });

// ---- responses ----

export const CustomerBody = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  metadata: Metadata,
  created_at: Time,
});

export const CreditTypeBody = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  created_at: Time,
});

const DrawdownBody = Type.Object({ grant_id: Type.String(), amount: AmountText });

export const GrantBody = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  credit_type: Type.String(),
  category: Type.String(),
  amount: AmountText,
  remaining: AmountText,
  held: AmountText,
  priority: Type.Integer(),
  effective_at: Time,
  expires_at: Nullable(Time),
  status: Type.Union(GRANT_STATUSES.map((s) => Type.Literal(s))),
  cost_basis: Nullable(Type.Object({ amount: MoneyText, currency: Currency })),
  applies_to: Nullable(Type.Array(Type.String())),
  description: Nullable(Type.String()),
  metadata: Metadata,
  created_at: Time,
  voided_at: Nullable(Time),
  expired_at: Nullable(Time),
});

export const BalanceBody = Type.Object({
  customer_id: Type.String(),
  credit_type: Type.String(),
  at: Time,
  available: AmountText,
  held: AmountText,
  overage: AmountText,
  grants: Type.Array(
    Type.Object({
      grant_id: Type.String(),
      remaining: AmountText,
      expires_at: Nullable(Time),
      priority: Type.Integer(),
      category: Type.String(),
    }),
  ),
  next_expiry: Nullable(Type.Object({ at: Time, amount: AmountText })),
});

export const DebitBody = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  credit_type: Type.String(),
  amount: AmountText,
  drawdowns: Type.Array(DrawdownBody),
  overage: AmountText,
  hold_id: Nullable(Type.String()),
  feature_id: Nullable(Type.String()),
  balance_after: BalanceBody,
  description: Nullable(Type.String()),
  metadata: Metadata,
  created_at: Time,
});

export const HoldBody = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  credit_type: Type.String(),
  amount: AmountText,
  status: Type.Union(['active', 'captured', 'released', 'expired'].map((s) => Type.Literal(s))),
  expires_at: Time,
  drawdowns: Type.Array(DrawdownBody),
  captured_amount: Nullable(AmountText),
  feature_id: Nullable(Type.String()),
  closed_at: Nullable(Time),
  description: Nullable(Type.String()),
  metadata: Metadata,
  created_at: Time,
});

export const EntryBody = Type.Object({
  id: Type.String(),
  type: Type.String(),
  amount: AmountText,
  credit_type: Type.String(),
  grant_id: Nullable(Type.String()),
  ref: Nullable(Type.String()),
  at: Time,
  balance_after: AmountText,
  from_account: Type.String(),
  to_account: Type.String(),
  recorded_at: Time,
});

/** The list envelope of the contract. */
export const ListOf = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), next_cursor: Nullable(Type.String()) });

/** Standard error responses, referenced by every route so OpenAPI lists them. */
export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
} as const;

/** `GET /v1/customers/{id}/forecast`: one credit type (default `credits`). */
export const ForecastQuery = Type.Object({ credit_type: Type.Optional(Id) }, { additionalProperties: false });

/** A depletion forecast: when the available balance is expected to run out, and why (docs/forecast.md). */
export const ForecastBody = Type.Object({
  customer_id: Type.String(),
  credit_type: Type.String(),
  at: Type.String({ description: 'When the forecast was made' }),
  status: Type.Union([Type.Literal('forecast'), Type.Literal('no_recent_usage'), Type.Literal('depleted')], {
    description:
      '`forecast`: depletion instants below (null ones are beyond the horizon); `no_recent_usage`: nothing consumed in the window, no date; `depleted`: nothing available now',
  }),
  available: Type.String(),
  held: Type.String(),
  overage: Type.String(),
  depletion: Nullable(
    Type.Object({
      expected_at: Nullable(Type.String({ description: 'The point forecast (no noise)' })),
      p10: Nullable(Type.String({ description: '10 % of simulated futures have run out by then' })),
      p50: Nullable(Type.String()),
      p90: Nullable(Type.String()),
      horizon_end: Type.String({ description: 'Depletions later than this are reported as null' }),
    }),
  ),
  runway_seconds: Nullable(Type.Integer({ description: 'Seconds from `at` to p50; null when none' })),
  model: Nullable(
    Type.Object({
      method: Type.String(),
      description: Type.String(),
      window_days: Type.Integer(),
      mean_per_day: Type.String(),
      level_per_day: Type.String(),
      trend_per_day: Type.String(),
      weekday_factors: Type.Array(Type.Number(), { description: 'Sunday first' }),
    }),
  ),
  daily_consumption: Type.Array(Type.Object({ day: Type.String(), consumed: Type.String() }), {
    description: 'The window the model saw, oldest first; the last day is today so far',
  }),
  balance_band: Type.Array(
    Type.Object({ at: Type.String(), p10: Type.String(), p50: Type.String(), p90: Type.String() }),
    { description: 'Projected available balance at the end of each coming day (at most 90)' },
  ),
  known_future: Type.Object({
    holds: Type.Array(
      Type.Object({ hold_id: Type.String(), amount: Type.String(), expires_at: Type.String() }),
    ),
    expiries: Type.Array(
      Type.Object({
        grant_id: Type.String(),
        at: Type.String(),
        remaining: Type.String(),
      }),
    ),
    allowance_resets: Type.Array(
      Type.Object({
        at: Type.String(),
        amount: Type.String(),
        subscription_id: Type.String(),
        expires_at: Nullable(Type.String()),
      }),
    ),
    auto_top_up: Nullable(
      Type.Object({
        pack_id: Type.String(),
        quantity: Type.Integer(),
        threshold: Type.String(),
        credits: Type.String(),
        fires_at: Type.Array(Type.String(), {
          description: 'When the point forecast buys (the rule fires below its threshold)',
        }),
      }),
    ),
    projected_expiries: Type.Array(
      Type.Object({ grant_id: Type.String(), at: Type.String(), unused: Type.String() }),
      { description: 'What the point forecast expects to expire unused' },
    ),
  }),
});

/** `GET /v1/customer-summaries`: a page of customers with balances and burn of one credit type. */
export const CustomerSummariesQuery = Type.Object(
  {
    ...ListQuery.properties,
    credit_type: Type.Optional(Id),
    sort: Type.Optional(
      Type.Union(
        ['id', 'available', 'burn_per_day', 'runway', 'expiring_soon'].map((v) => Type.Literal(v)),
        {
          description:
            'Order of the whole list (default id). Any other than id, or a search, computes every customer of the workspace per page (correct for any count, cost O(customers))',
        },
      ),
    ),
    order: Type.Optional(
      Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
        description: 'Default asc; runway asc puts customers without a runway last',
      }),
    ),
    q: Type.Optional(
      Type.String({ maxLength: 128, description: "Case-insensitive substring of the customer's id or name" }),
    ),
    burning: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], {
        description: 'true: only customers with a runway (burning credits): the at-risk view',
      }),
    ),
  },
  { additionalProperties: false },
);

/** `GET /v1/customer-summaries/totals`: one credit type. */
export const SummaryTotalsQuery = Type.Object(
  { credit_type: Type.Optional(Id) },
  { additionalProperties: false },
);

/** A workspace's totals over every customer (the dashboard's overview). */
export const SummaryTotalsBody = Type.Object({
  credit_type: Type.String(),
  customers: Type.Integer({ description: 'Customers summed (every customer of the workspace)' }),
  available: Type.String(),
  held: Type.String(),
  overage: Type.String({ description: 'Overage owed' }),
  expiring_soon: Type.String({ description: 'Credits in grants that expire within 7 days' }),
  daily_consumption: Type.Array(Type.Object({ day: Type.String(), consumed: Type.String() }), {
    description: 'The last 14 UTC days, oldest first; the last is today so far',
  }),
});

/** One customer's balance and burn (the dashboard's customer list, at-risk view and overview). */
export const CustomerSummaryBody = Type.Object({
  customer: CustomerBody,
  credit_type: Type.String(),
  available: Type.String(),
  held: Type.String(),
  overage: Type.String(),
  burn_per_day: Type.String({
    description:
      'Mean daily consumption over the last 7 days and today so far, counted from the first day of use',
  }),
  runway_seconds: Nullable(
    Type.Integer({
      description: 'available ÷ burn_per_day; null when nothing burns (the forecast is finer)',
    }),
  ),
  daily_consumption: Type.Array(Type.Object({ day: Type.String(), consumed: Type.String() }), {
    description: 'The last 14 UTC days, oldest first; the last is today so far',
  }),
  expiring_soon: Type.String({ description: 'Credits in grants that expire within 7 days' }),
  next_expiry: Nullable(Type.Object({ at: Type.String(), amount: Type.String() })),
});
