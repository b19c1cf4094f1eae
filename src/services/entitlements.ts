import { Amount } from '../domain/amount/amount.js';
import type { Entitlement, Feature, PlanVersion } from '../domain/catalog/catalog.js';
import { type CheckReason, decideCheck } from '../domain/entitlements/check.js';
import { notFound } from '../domain/errors.js';
import { availableWithNothingDue, CreditLedger } from '../domain/ledger/credit-ledger.js';
import { extend } from '../domain/objects.js';
import type { Subscription } from '../domain/plans/subscription.js';
import { priceQuantity, ratingPeriodStart } from '../domain/rating/rate.js';
import type { Instant } from '../domain/time/instant.js';
import { periodContaining } from '../domain/time/periods.js';
import type { ReadOperations, WriteOperations } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { adjustFeatureUsage } from './feature-usage.js';
import { LedgerSession } from './ledger-session.js';
import { requireCustomer } from './lookups.js';
import { compilePricing } from './pricing.js';
import { isSubscriptionLive, renewDueSubscriptions } from './subscriptions.js';

/** Plan versions never change once stored, so every process may keep them (bounded). */
const planVersionCache = new WeakMap<object, Map<string, PlanVersion>>();
const PLAN_CACHE_LIMIT = 10_000;

async function planVersionOf(
  ctx: ServiceContext,
  reads: ReadOperations,
  sub: Subscription,
): Promise<PlanVersion | null> {
  let cache = planVersionCache.get(ctx.storage);
  if (!cache) {
    cache = new Map();
    planVersionCache.set(ctx.storage, cache);
  }
  const key = `${sub.workspaceId}\u0000${sub.planId}\u0000${sub.planVersion}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const plan = await reads.plans.getPlanVersion(sub.workspaceId, sub.planId, sub.planVersion);
  if (plan) {
    if (cache.size >= PLAN_CACHE_LIMIT) cache.clear();
    cache.set(key, plan);
  }
  return plan;
}

/** A customer's entitlement to a feature through a live subscription, with where it comes from. */
export interface ResolvedEntitlement {
  readonly entitlement: Entitlement;
  readonly subscription: Subscription;
  readonly plan: PlanVersion;
}

/** The first live subscription (by id) whose plan version entitles the customer to the feature. */
export async function resolveEntitlement(
  ctx: ServiceContext,
  reads: ReadOperations,
  input: { workspaceId: string; customerId: string; featureId: string; now: Instant },
  /** The customer's subscriptions when the caller already read them. */
  known?: readonly Subscription[],
): Promise<ResolvedEntitlement | null> {
  const subscriptions = known ?? (await reads.plans.subscriptionsOf(input.workspaceId, input.customerId));
  for (const sub of subscriptions) {
    if (!isSubscriptionLive(sub, input.now)) continue;
    const plan = await planVersionOf(ctx, reads, sub);
    const entitlement = plan?.entitlements.find((e) => e.featureId === input.featureId);
    if (plan && entitlement) return { entitlement, subscription: sub, plan };
  }
  return null;
}

/** The start of the usage-limit period containing `now`: anniversaries of the subscription, in its time zone. */
function usagePeriodStart(resolved: ResolvedEntitlement, now: Instant): Instant | null {
  const limit = resolved.entitlement.usageLimit;
  if (limit === null) return null;
  const sub = resolved.subscription;
  return periodContaining(sub.anchorAt, limit.period, now, sub.timeZone).start;
}

/**
 * Counts uses of a feature against the customer's usage limit, in the caller's transaction (a
 * debit naming the feature, events rated by one of its rates). Each use counts in the usage period
 * that contains its own instant (a late event in its own period), and only if a live subscription
 * then entitled the customer with a limit: without a limit nothing needs counting.
 */
export async function recordFeatureUsage(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    customerId: string;
    featureId: string;
    uses: readonly { readonly at: Instant; readonly quantity: Amount }[];
    /** Give the uses back instead (a reversed event), in the periods they were counted in. */
    giveBack?: boolean;
  },
): Promise<void> {
  const { workspaceId, customerId, featureId } = input;
  const subscriptions = await tx.plans.subscriptionsOf(workspaceId, customerId);
  if (subscriptions.length === 0) return;
  const byPeriod = new Map<Instant, Amount>();
  for (const use of input.uses) {
    if (!use.quantity.isPositive()) continue;
    const resolved = await resolveEntitlement(ctx, tx, extend(input, { now: use.at }), subscriptions);
    const periodStart = resolved ? usagePeriodStart(resolved, use.at) : null;
    if (periodStart === null) continue;
    byPeriod.set(periodStart, (byPeriod.get(periodStart) ?? Amount.ZERO).plus(use.quantity));
  }
  for (const [periodStart, quantity] of byPeriod) {
    const delta = input.giveBack === true ? quantity.negated() : quantity;
    await adjustFeatureUsage(tx, { workspaceId, customerId, featureId, periodStart }, delta);
  }
}

/** What `POST /v1/check` answers. */
export interface CheckResult {
  readonly allowed: boolean;
  readonly reason: CheckReason;
  readonly credits: Amount;
  readonly available: Amount;
  readonly holdId: string | null;
  readonly creditType: string;
  readonly featureType: Feature['type'];
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly usage: { readonly used: Amount; readonly limit: Amount; readonly periodStart: Instant } | null;
}

/** What a quantity of a metered feature costs now: `credits_per_use` × quantity, or its dearest rate. */
async function creditsFor(
  reads: ReadOperations,
  feature: Feature,
  customerId: string,
  quantity: Amount,
  now: Instant,
): Promise<Amount> {
  if (feature.type !== 'metered') return Amount.ZERO;
  if (feature.creditsPerUse !== null) return quantity.times(feature.creditsPerUse, 'up');
  let credits = Amount.ZERO;
  for (const rateId of feature.rateIds) {
    const rate = await reads.getRate(feature.workspaceId, rateId);
    if (!rate) continue;
    const pricing = compilePricing(rate.pricing);
    const usage =
      pricing.kind === 'tiers'
        ? await reads.getRateUsage(feature.workspaceId, customerId, rateId, ratingPeriodStart(now))
        : Amount.ZERO;
    credits = Amount.max(credits, priceQuantity(pricing, quantity, usage));
  }
  return credits;
}

/** The check's decision over one consistent view (a read, or the transaction of a held check). */
async function evaluate(
  ctx: ServiceContext,
  reads: ReadOperations,
  ledger: CreditLedger | null,
  input: { workspaceId: string; customerId: string; featureId: string; quantity: Amount; now: Instant },
  known: { readonly subscriptions?: readonly Subscription[]; readonly feature?: Feature | null } = {},
) {
  const { workspaceId, customerId, featureId, now } = input;
  const subscriptions = known.subscriptions ?? (await reads.plans.subscriptionsOf(workspaceId, customerId));
  // A customer with a subscription exists; only one without needs the lookup (404 vs no_entitlement).
  if (subscriptions.length === 0) await requireCustomer(reads, workspaceId, customerId);
  const feature =
    known.feature !== undefined ? known.feature : await reads.plans.getFeature(workspaceId, featureId);
  if (!feature) throw notFound('feature', featureId);
  const resolved = await resolveEntitlement(ctx, reads, input, subscriptions);
  const credits = await creditsFor(reads, feature, customerId, input.quantity, now);
  const key = { workspaceId, customerId, creditType: feature.creditType };
  // A plain check reads the stored ledger as it is when nothing of it is due by now (almost
  // always: no engine, no copy); a held check's ledger, or one with something due, is advanced.
  let open = ledger;
  let available: Amount | null = null;
  if (open === null) {
    const snapshot = await reads.loadLedger(key);
    available = availableWithNothingDue(snapshot, now, featureId);
    if (available === null) open = new CreditLedger(snapshot, ctx.ids);
  }
  if (open !== null) {
    open.advanceTo(now);
    available = open.availableAt(now, featureId);
  }
  if (available === null) throw new Error('check invariant: no balance was read');
  const periodStart = resolved ? usagePeriodStart(resolved, now) : null;
  let used =
    periodStart === null
      ? Amount.ZERO
      : await reads.plans.getFeatureUsage(workspaceId, customerId, featureId, periodStart);
  // Held checks whose holds expired by now give their usage back, recorded or not yet: the stored
  // usage already reflects every hold persisted (persistLedger gives it back), and the ledger's
  // changed holds not taken yet are exactly the ones it does not reflect.
  for (const hold of open?.changedHolds ?? []) {
    if (hold.status !== 'expired' || hold.featureId !== featureId || hold.usage?.periodStart !== periodStart)
      continue;
    used = Amount.max(Amount.ZERO, used.minus(hold.usage.quantity));
  }
  const decision = decideCheck({
    feature,
    entitlement: resolved?.entitlement ?? null,
    quantity: input.quantity,
    credits,
    available,
    usedInPeriod: used,
  });
  const limit = resolved?.entitlement.usageLimit ?? null;
  return {
    feature,
    decision,
    credits,
    available,
    config: resolved?.entitlement.config ?? null,
    usage: limit !== null && periodStart !== null ? { used, limit: limit.amount, periodStart } : null,
  };
}

/** The input of a check, as validated by the transport. */
export interface CheckInput {
  readonly workspaceId: string;
  readonly customerId: string;
  readonly featureId: string;
  readonly quantity: Amount;
}

/**
 * May this customer use this feature now? A read: no lock, no write, unless a subscription reset
 * is due, which is applied first (so the answer never depends on a background job having run).
 */
export async function checkNow(ctx: ServiceContext, input: CheckInput): Promise<CheckResult> {
  const { workspaceId, customerId } = input;
  const now = ctx.clock.now();
  const reads = ctx.storage.read;
  let subscriptions = await reads.plans.subscriptionsOf(workspaceId, customerId);
  if (subscriptions.some((s) => s.nextDueAt !== null && s.nextDueAt <= now)) {
    await ctx.storage.write(customerLockKey(workspaceId, customerId), (tx) =>
      renewDueSubscriptions(ctx, tx, workspaceId, customerId, now),
    );
    subscriptions = await reads.plans.subscriptionsOf(workspaceId, customerId);
  }
  return present(await evaluate(ctx, reads, null, extend(input, { now }), { subscriptions }), null);
}

/**
 * A check that reserves what it allows: decision and hold are made in the caller's transaction,
 * under the customer's lock, so N concurrent held checks against a balance that fits K of them
 * allow exactly K. The quantity counts against a usage limit when the hold is placed.
 */
export async function checkAndHold(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: CheckInput & { readonly ttlMs: number; readonly now: Instant },
): Promise<CheckResult> {
  const { workspaceId, customerId, now } = input;
  const session = await LedgerSession.open(ctx, tx, { workspaceId, customerId }, now);
  const feature = await tx.plans.getFeature(workspaceId, input.featureId);
  const ledger = feature ? await session.ledger(feature.creditType) : null;
  const result = await evaluate(ctx, tx, ledger, input, { feature });
  let holdId: string | null = null;
  if (result.decision.allowed) {
    // The quantity counts against the usage limit now, so concurrent held checks cannot pass it
    // together; a hold that is released or expires gives it back (see persistLedger).
    const usage =
      result.usage === null ? null : { quantity: input.quantity, periodStart: result.usage.periodStart };
    if (usage !== null)
      await adjustFeatureUsage(tx, extend(input, { periodStart: usage.periodStart }), usage.quantity);
    if (result.decision.reserve.isPositive()) {
      // A held check always brings its (advanced) ledger; evaluate refused a missing feature before.
      if (ledger === null) throw new Error('check invariant: a held check without its ledger');
      const hold = ledger.placeHold(
        {
          amount: result.decision.reserve,
          expiresAt: now + input.ttlMs,
          featureId: input.featureId,
          usage,
          description: `check of ${input.featureId}`,
          metadata: { feature_id: input.featureId, quantity: input.quantity.toString() },
        },
        now,
      );
      if ('refused' in hold)
        throw new Error('check invariant: a hold within the available balance was refused');
      holdId = hold.id;
      session.burned(ledger.creditType);
      await session.save();
    }
  }
  return present(result, holdId);
}

function present(result: Awaited<ReturnType<typeof evaluate>>, holdId: string | null): CheckResult {
  return {
    allowed: result.decision.allowed,
    reason: result.decision.reason,
    credits: result.credits,
    available: result.available,
    holdId,
    creditType: result.feature.creditType,
    featureType: result.feature.type,
    config: result.config,
    usage: result.usage,
  };
}
