import { Amount } from '../domain/amount/amount.js';
import type {
  Allowance,
  CreditPack,
  Entitlement,
  Feature,
  FeatureType,
  PlanVersion,
} from '../domain/catalog/catalog.js';
import type { AutoTopUp, Purchase, Subscription } from '../domain/plans/subscription.js';
import type { Period } from '../domain/time/periods.js';

/**
 * Catalogue objects (features, plan versions, packs), subscriptions and auto top-ups are stored
 * as a JSON body next to the columns that are queried. Amounts stay decimal strings in the JSON:
 * never a JSON number.
 */
type Json = Record<string, unknown>;

const amountOrNull = (v: unknown): Amount | null =>
  v === null || v === undefined ? null : Amount.parse(String(v));
const text = (a: Amount | null): string | null => (a === null ? null : a.toString());

export function featureToJson(f: Feature): string {
  return JSON.stringify({
    type: f.type,
    name: f.name,
    credit_type: f.creditType,
    rate_ids: f.rateIds,
    credits_per_use: text(f.creditsPerUse),
    metadata: f.metadata,
    created_at: f.createdAt,
    updated_at: f.updatedAt,
    archived_at: f.archivedAt,
  });
}

export function featureFromJson(workspaceId: string, id: string, body: string): Feature {
  const j = JSON.parse(body) as Json;
  return {
    workspaceId,
    id,
    type: j.type as FeatureType,
    name: (j.name as string | null) ?? null,
    creditType: j.credit_type as string,
    rateIds: j.rate_ids as string[],
    creditsPerUse: amountOrNull(j.credits_per_use),
    metadata: (j.metadata as Json) ?? {},
    createdAt: Number(j.created_at),
    updatedAt: Number(j.updated_at),
    archivedAt: j.archived_at === null || j.archived_at === undefined ? null : Number(j.archived_at),
  };
}

export function planToJson(p: PlanVersion): string {
  return JSON.stringify({
    name: p.name,
    time_zone: p.timeZone,
    billing_period: p.billingPeriod,
    entitlements: p.entitlements.map((e) => ({
      feature_id: e.featureId,
      usage_limit: e.usageLimit
        ? { amount: e.usageLimit.amount.toString(), period: e.usageLimit.period }
        : null,
      config: e.config,
      overage: e.overage ? { max: text(e.overage.max) } : null,
    })),
    allowances: p.allowances.map((a) => ({
      credit_type: a.creditType,
      amount: a.amount.toString(),
      period: a.period,
      priority: a.priority,
      rollover: a.rollover
        ? {
            max: text(a.rollover.max),
            max_percent: text(a.rollover.maxPercent),
            expires_after_periods: a.rollover.expiresAfterPeriods,
          }
        : null,
      applies_to: a.appliesTo,
    })),
    price: p.price ? { amount: p.price.amount.toString(), currency: p.price.currency } : null,
    metadata: p.metadata,
    created_at: p.createdAt,
  });
}

export function planFromJson(workspaceId: string, id: string, version: number, body: string): PlanVersion {
  const j = JSON.parse(body) as Json;
  const entitlements = (j.entitlements as Json[]).map(
    (e): Entitlement => ({
      featureId: e.feature_id as string,
      usageLimit: e.usage_limit
        ? {
            amount: Amount.parse(String((e.usage_limit as Json).amount)),
            period: (e.usage_limit as Json).period as Period,
          }
        : null,
      config: (e.config as Json | null) ?? null,
      overage: e.overage ? { max: amountOrNull((e.overage as Json).max) } : null,
    }),
  );
  const allowances = (j.allowances as Json[]).map((a): Allowance => {
    const r = a.rollover as Json | null;
    return {
      creditType: a.credit_type as string,
      amount: Amount.parse(String(a.amount)),
      period: a.period as Period,
      priority: Number(a.priority),
      rollover: r
        ? {
            max: amountOrNull(r.max),
            maxPercent: amountOrNull(r.max_percent),
            expiresAfterPeriods: r.expires_after_periods === null ? null : Number(r.expires_after_periods),
          }
        : null,
      appliesTo: (a.applies_to as string[] | null) ?? null,
    };
  });
  const price = j.price as Json | null;
  return {
    workspaceId,
    id,
    version,
    name: (j.name as string | null) ?? null,
    timeZone: j.time_zone as string,
    billingPeriod: j.billing_period as Period,
    entitlements,
    allowances,
    price: price ? { amount: Amount.parse(String(price.amount)), currency: price.currency as string } : null,
    metadata: (j.metadata as Json) ?? {},
    createdAt: Number(j.created_at),
  };
}

export function packToJson(p: CreditPack): string {
  return JSON.stringify({
    name: p.name,
    credit_type: p.creditType,
    credits: p.credits.toString(),
    price: { amount: p.price.amount.toString(), currency: p.price.currency },
    volume_discounts: p.volumeDiscounts.map((d) => ({
      min_quantity: d.minQuantity,
      percent_off: d.percentOff.toString(),
    })),
    expires_after_days: p.expiresAfterDays,
    priority: p.priority,
    created_at: p.createdAt,
  });
}

export function packFromJson(workspaceId: string, id: string, body: string): CreditPack {
  const j = JSON.parse(body) as Json;
  const price = j.price as Json;
  return {
    workspaceId,
    id,
    name: (j.name as string | null) ?? null,
    creditType: j.credit_type as string,
    credits: Amount.parse(String(j.credits)),
    price: { amount: Amount.parse(String(price.amount)), currency: price.currency as string },
    volumeDiscounts: (j.volume_discounts as Json[]).map((d) => ({
      minQuantity: Number(d.min_quantity),
      percentOff: Amount.parse(String(d.percent_off)),
    })),
    expiresAfterDays: j.expires_after_days === null ? null : Number(j.expires_after_days),
    priority: Number(j.priority),
    createdAt: Number(j.created_at),
  };
}

export function subscriptionToJson(s: Subscription): string {
  return JSON.stringify({
    plan_id: s.planId,
    plan_version: s.planVersion,
    anchor_at: s.anchorAt,
    time_zone: s.timeZone,
    next_allowance_period: s.nextAllowancePeriod,
    granted_credit_types: s.grantedCreditTypes,
    cancel_at: s.cancelAt,
    ended_at: s.endedAt,
    pending_change: s.pendingChange
      ? { plan_id: s.pendingChange.planId, plan_version: s.pendingChange.planVersion, at: s.pendingChange.at }
      : null,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  });
}

/** The queried columns of a subscription row next to its body. */
export interface SubscriptionRow {
  workspace_id: string;
  id: string;
  customer_id: string;
  status: string;
  next_due_at: number | string | null;
  body: string;
}

export function subscriptionFromRow(row: SubscriptionRow): Subscription {
  const j = JSON.parse(row.body) as Json;
  const change = j.pending_change as Json | null;
  return {
    workspaceId: row.workspace_id,
    id: row.id,
    customerId: row.customer_id,
    planId: j.plan_id as string,
    planVersion: Number(j.plan_version),
    status: row.status as Subscription['status'],
    anchorAt: Number(j.anchor_at),
    timeZone: j.time_zone as string,
    nextAllowancePeriod: (j.next_allowance_period as number[]).map(Number),
    grantedCreditTypes: (j.granted_credit_types as string[] | undefined) ?? [],
    cancelAt: j.cancel_at === null ? null : Number(j.cancel_at),
    endedAt: j.ended_at === null ? null : Number(j.ended_at),
    pendingChange: change
      ? { planId: change.plan_id as string, planVersion: Number(change.plan_version), at: Number(change.at) }
      : null,
    nextDueAt: row.next_due_at === null ? null : Number(row.next_due_at),
    createdAt: Number(j.created_at),
    updatedAt: Number(j.updated_at),
  };
}

export function autoTopUpToJson(a: AutoTopUp): string {
  return JSON.stringify({
    enabled: a.enabled,
    threshold: a.threshold.toString(),
    pack_id: a.packId,
    quantity: a.quantity,
    max_per_period: a.maxPerPeriod,
    period: a.period,
    provider: a.provider,
    anchor_at: a.anchorAt,
    period_start: a.periodStart,
    count_in_period: a.countInPeriod,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  });
}

export function autoTopUpFromJson(workspaceId: string, customerId: string, body: string): AutoTopUp {
  const j = JSON.parse(body) as Json;
  return {
    workspaceId,
    customerId,
    enabled: Boolean(j.enabled),
    threshold: Amount.parse(String(j.threshold)),
    packId: j.pack_id as string,
    quantity: Number(j.quantity),
    maxPerPeriod: Number(j.max_per_period),
    period: j.period as AutoTopUp['period'],
    // Rules stored before payment providers existed grant at once, as they did.
    provider: (j.provider as AutoTopUp['provider'] | undefined) ?? 'none',
    anchorAt: Number(j.anchor_at),
    periodStart: Number(j.period_start),
    countInPeriod: Number(j.count_in_period),
    createdAt: Number(j.created_at),
    updatedAt: Number(j.updated_at),
  };
}

export function purchaseToJson(p: Purchase): string {
  return JSON.stringify({
    pack_id: p.packId,
    quantity: p.quantity,
    credits: p.credits.toString(),
    price_amount: p.priceAmount.toString(),
    currency: p.currency,
    percent_off: p.percentOff.toString(),
    grant_id: p.grantId,
    source: p.source,
    created_at: p.createdAt,
  });
}

export function purchaseFromJson(
  workspaceId: string,
  id: string,
  customerId: string,
  body: string,
): Purchase {
  const j = JSON.parse(body) as Json;
  return {
    workspaceId,
    id,
    customerId,
    packId: j.pack_id as string,
    quantity: Number(j.quantity),
    credits: Amount.parse(String(j.credits)),
    priceAmount: Amount.parse(String(j.price_amount)),
    currency: j.currency as string,
    percentOff: Amount.parse(String(j.percent_off)),
    grantId: j.grant_id as string,
    source: j.source as Purchase['source'],
    createdAt: Number(j.created_at),
  };
}
