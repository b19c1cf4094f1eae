import type { CreditPack, Feature, PlanVersion } from '../domain/catalog/catalog.js';
import type { AutoTopUp, Purchase, Subscription } from '../domain/plans/subscription.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { CheckResult } from '../services/entitlements.js';
import { currentPeriod } from '../services/subscriptions.js';

/** Wire shapes of features, plans, packs, subscriptions, purchases, auto top-ups and checks. */

const time = (t: Instant | null) => (t === null ? null : formatInstant(t));

export function presentFeature(f: Feature) {
  return {
    id: f.id,
    type: f.type,
    name: f.name,
    credit_type: f.creditType,
    rate_ids: [...f.rateIds],
    credits_per_use: f.creditsPerUse?.toString() ?? null,
    metadata: f.metadata,
    archived: f.archivedAt !== null,
    created_at: formatInstant(f.createdAt),
    updated_at: formatInstant(f.updatedAt),
  };
}

export function presentPlan(p: PlanVersion) {
  return {
    id: p.id,
    version: p.version,
    name: p.name,
    time_zone: p.timeZone,
    billing_period: p.billingPeriod,
    entitlements: p.entitlements.map((e) => ({
      feature_id: e.featureId,
      usage_limit: e.usageLimit
        ? { amount: e.usageLimit.amount.toString(), period: e.usageLimit.period }
        : null,
      config: e.config,
      overage: e.overage ? { max: e.overage.max?.toString() ?? null } : null,
    })),
    allowances: p.allowances.map((a) => ({
      credit_type: a.creditType,
      amount: a.amount.toString(),
      period: a.period,
      priority: a.priority,
      rollover: a.rollover
        ? {
            max: a.rollover.max?.toString() ?? null,
            max_percent: a.rollover.maxPercent?.toString() ?? null,
            expires_after_periods: a.rollover.expiresAfterPeriods,
          }
        : null,
      applies_to: a.appliesTo ? [...a.appliesTo] : null,
    })),
    price: p.price ? { amount: p.price.amount.toString(), currency: p.price.currency } : null,
    metadata: p.metadata,
    created_at: formatInstant(p.createdAt),
  };
}

export function presentSubscription(s: Subscription, plan: PlanVersion, now: Instant) {
  const period = currentPeriod(s, plan, now);
  return {
    id: s.id,
    customer_id: s.customerId,
    plan_id: s.planId,
    plan_version: s.planVersion,
    status: s.status,
    start_at: formatInstant(s.anchorAt),
    time_zone: s.timeZone,
    current_period: { start: formatInstant(period.start), end: formatInstant(period.end) },
    cancel_at: time(s.cancelAt),
    ended_at: time(s.endedAt),
    pending_change: s.pendingChange
      ? {
          plan_id: s.pendingChange.planId,
          plan_version: s.pendingChange.planVersion,
          at: formatInstant(s.pendingChange.at),
        }
      : null,
    created_at: formatInstant(s.createdAt),
  };
}

export function presentCreditPack(p: CreditPack) {
  return {
    id: p.id,
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
    created_at: formatInstant(p.createdAt),
  };
}

export function presentPurchase(p: Purchase) {
  return {
    id: p.id,
    customer_id: p.customerId,
    pack_id: p.packId,
    quantity: p.quantity,
    credits: p.credits.toString(),
    price: { amount: p.priceAmount.toString(), currency: p.currency },
    percent_off: p.percentOff.toString(),
    grant_id: p.grantId,
    source: p.source,
    created_at: formatInstant(p.createdAt),
  };
}

export function presentAutoTopUp(a: AutoTopUp) {
  return {
    customer_id: a.customerId,
    enabled: a.enabled,
    threshold: a.threshold.toString(),
    pack_id: a.packId,
    quantity: a.quantity,
    max_per_period: a.maxPerPeriod,
    period: a.period,
    provider: a.provider,
    current_period_start: formatInstant(a.periodStart),
    count_in_period: a.countInPeriod,
    updated_at: formatInstant(a.updatedAt),
  };
}

export function presentCheck(r: CheckResult) {
  return {
    allowed: r.allowed,
    reason: r.reason,
    credits: r.credits.toString(),
    available: r.available.toString(),
    hold_id: r.holdId,
    credit_type: r.creditType,
    feature_type: r.featureType,
    config: r.config,
    usage: r.usage
      ? {
          used: r.usage.used.toString(),
          limit: r.usage.limit.toString(),
          period_start: formatInstant(r.usage.periodStart),
        }
      : null,
  };
}
