import type { Static } from '@sinclair/typebox';
import { Amount } from '../domain/amount/amount.js';
import type { Allowance, Entitlement, FeatureType } from '../domain/catalog/catalog.js';
import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import type { Period } from '../domain/time/periods.js';
import { isValidTimeZone } from '../domain/time/zoned.js';
import type { CreditPackInput, FeatureInput, PlanInput } from '../services/catalog.js';
import { DEFAULT_CREDIT_TYPE } from '../services/context.js';
import { requirePositiveAmount } from '../services/ledger.js';
import type { CreateCreditPackBody, FeatureFields, PlanFields, PutAutoTopUpBody } from './plan-schemas.js';
import { readMetadata } from './route-helpers.js';

/** Default priority of allowance grants: below the grant default (10), so allowances burn first. */
export const DEFAULT_ALLOWANCE_PRIORITY = 5;

type FeatureBody = { [K in keyof typeof FeatureFields]: Static<(typeof FeatureFields)[K]> };
type PlanBodyFields = { [K in keyof typeof PlanFields]: Static<(typeof PlanFields)[K]> };

/** A non-negative amount (percentages, caps that may be zero). */
function readNonNegative(text: string, field: string): Amount {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string' || parsed.isNegative()) {
    throw new BurndownError(
      ErrorCode.invalidAmount,
      `${field} must be a decimal string ≥ 0 with at most 12 decimals`,
      {
        field,
      },
    );
  }
  return parsed;
}

function readPercent(text: string, field: string): Amount {
  const percent = readNonNegative(text, field);
  if (percent.greaterThan(Amount.of('100'))) throw invalidRequest(`${field} must be at most 100`, { field });
  return percent;
}

/** A feature body as the service's input. */
export function readFeature(id: string, body: Partial<FeatureBody> & { type: FeatureType }): FeatureInput {
  return {
    id,
    type: body.type,
    name: body.name ?? null,
    creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
    rateIds: [...new Set(body.rate_ids ?? [])],
    creditsPerUse:
      body.credits_per_use === undefined || body.credits_per_use === null
        ? null
        : requirePositiveAmount(body.credits_per_use, 'credits_per_use'),
    metadata: readMetadata(body.metadata),
  };
}

function readEntitlement(e: NonNullable<PlanBodyFields['entitlements']>[number], i: number): Entitlement {
  const field = `entitlements[${i}]`;
  return {
    featureId: e.feature_id,
    usageLimit: e.usage_limit
      ? {
          amount: readNonNegative(e.usage_limit.amount, `${field}.usage_limit.amount`),
          period: e.usage_limit.period as Period,
        }
      : null,
    config: e.config ? readMetadata(e.config, `${field}.config`) : null,
    overage: e.overage
      ? {
          max:
            e.overage.max === undefined || e.overage.max === null
              ? null
              : readNonNegative(e.overage.max, `${field}.overage.max`),
        }
      : null,
  };
}

function readAllowance(a: NonNullable<PlanBodyFields['allowances']>[number], i: number): Allowance {
  const field = `allowances[${i}]`;
  const r = a.rollover ?? null;
  if (r !== null && (r.max === undefined) === (r.max_percent === undefined)) {
    throw invalidRequest(`${field}.rollover needs exactly one of max and max_percent`, {
      field: `${field}.rollover`,
    });
  }
  return {
    creditType: a.credit_type ?? DEFAULT_CREDIT_TYPE,
    amount: requirePositiveAmount(a.amount, `${field}.amount`),
    period: a.period as Period,
    priority: a.priority ?? DEFAULT_ALLOWANCE_PRIORITY,
    rollover:
      r === null
        ? null
        : {
            max: r.max === undefined ? null : readNonNegative(r.max, `${field}.rollover.max`),
            maxPercent:
              r.max_percent === undefined
                ? null
                : readPercent(r.max_percent, `${field}.rollover.max_percent`),
            expiresAfterPeriods: r.expires_after_periods ?? null,
          },
    appliesTo: a.applies_to ? [...new Set(a.applies_to)] : null,
  };
}

/** A plan body as the service's input (one version). */
export function readPlan(id: string, body: Partial<PlanBodyFields>): PlanInput {
  const requested = body.time_zone ?? 'UTC';
  if (!isValidTimeZone(requested)) {
    throw invalidRequest(`time_zone "${requested}" is not an IANA time zone`, { field: 'time_zone' });
  }
  // Stored as the canonical name ("europe/berlin" → "Europe/Berlin").
  const timeZone = new Intl.DateTimeFormat('en-US', { timeZone: requested }).resolvedOptions().timeZone;
  return {
    id,
    name: body.name ?? null,
    timeZone,
    billingPeriod: (body.billing_period ?? 'P1M') as Period,
    entitlements: (body.entitlements ?? []).map(readEntitlement),
    allowances: (body.allowances ?? []).map(readAllowance),
    price: body.price
      ? { amount: readNonNegative(body.price.amount, 'price.amount'), currency: body.price.currency }
      : null,
    metadata: readMetadata(body.metadata),
  };
}

/** A credit pack body as the service's input. */
export function readCreditPack(body: Static<typeof CreateCreditPackBody>): CreditPackInput {
  return {
    id: body.id,
    name: body.name ?? null,
    creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
    credits: requirePositiveAmount(body.credits, 'credits'),
    price: { amount: readNonNegative(body.price.amount, 'price.amount'), currency: body.price.currency },
    volumeDiscounts: (body.volume_discounts ?? []).map((d, i) => ({
      minQuantity: d.min_quantity,
      percentOff: readPercent(d.percent_off, `volume_discounts[${i}].percent_off`),
    })),
    expiresAfterDays: body.expires_after_days ?? null,
    priority: body.priority ?? 10,
  };
}

/** An auto top-up body, validated. */
export function readAutoTopUp(body: Static<typeof PutAutoTopUpBody>) {
  return {
    enabled: body.enabled ?? true,
    threshold: readNonNegative(body.threshold, 'threshold'),
    packId: body.pack_id,
    quantity: body.quantity ?? 1,
    maxPerPeriod: body.max_per_period ?? 1,
    period: (body.period ?? 'P1M') as Period,
    provider: body.provider ?? 'none',
  };
}
