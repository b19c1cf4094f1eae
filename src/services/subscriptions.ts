import { Amount } from '../domain/amount/amount.js';
import type { Allowance, PlanVersion } from '../domain/catalog/catalog.js';
import { BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import type { GrantSnapshot } from '../domain/ledger/changes.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import { planRollover, proratedIncrease } from '../domain/plans/allowances.js';
import type { Subscription } from '../domain/plans/subscription.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import { anniversary, type Period, periodContaining } from '../domain/time/periods.js';
import type { WriteOperations } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { CustomerLedgers } from './ledger-set.js';
import { requireCustomer } from './lookups.js';
import { appendFacts, type OutboxMessage } from './outbox.js';
import { forEachConcurrently } from './sweep-concurrency.js';
import { subscriptionCanceledFact, subscriptionRenewedFact } from './webhook-facts.js';

/** Grant metadata that ties an allowance grant to its subscription, allowance and period. */
const META = {
  subscription: 'subscription_id',
  allowance: 'allowance_key',
  period: 'period_index',
  kind: 'allowance_kind',
} as const;

/** What an allowance grant is: the period's allowance, a carried remainder, or an upgrade's prorated increase. */
type AllowanceKind = 'allowance' | 'rollover' | 'proration';

/**
 * Identifies an allowance across resets and across plan changes: its credit type, period and
 * applicability. A plan has at most one allowance per key (plans refuse duplicates), so the
 * remainder of a period and the live rollovers carry into the allowance with the same key, whatever
 * plan or version the subscription moved to.
 */
export function allowanceKey(allowance: Pick<Allowance, 'creditType' | 'period' | 'appliesTo'>): string {
  const scope = allowance.appliesTo === null ? '*' : [...allowance.appliesTo].sort().join(',');
  return `${allowance.creditType}/${allowance.period}/${scope}`;
}

function grantsOf(
  ledger: CreditLedger,
  subscriptionId: string,
  key: string,
  kinds: readonly AllowanceKind[],
): GrantSnapshot[] {
  const found: GrantSnapshot[] = [];
  for (const grant of ledger.grants.values()) {
    const m = grant.metadata;
    if (m[META.subscription] !== subscriptionId || m[META.allowance] !== key) continue;
    if (kinds.includes(m[META.kind] as AllowanceKind)) found.push(grant);
  }
  return found;
}

/** The smallest anniversary index whose instant is at or after `at`. */
function firstIndexAtOrAfter(anchor: Instant, period: Period, at: Instant, timeZone: string): number {
  if (at <= anchor) return 0;
  const containing = periodContaining(anchor, period, at, timeZone);
  return containing.start === at ? containing.index : containing.index + 1;
}

async function requirePlanVersion(
  tx: WriteOperations,
  workspaceId: string,
  planId: string,
  version: number | null,
): Promise<PlanVersion> {
  const plan = await tx.plans.getPlanVersion(workspaceId, planId, version);
  if (!plan) throw notFound(version === null ? 'plan' : `plan version ${version} of`, planId);
  return plan;
}

/**
 * Moves one subscription forward through everything due up to `until`, in time order and one
 * boundary at a time: ends (cancel at period end), plan changes waiting for a period end, and
 * allowance resets. Each reset first applies what was due just before it, trims and carries the
 * remainder by the rollover rule, lets the old allowance expire at the boundary, then issues the
 * new allowance dated the boundary. The subscription's counters advance with the grants, in the
 * same transaction, so a reset is never issued twice and never skipped, however late it runs.
 */
class SubscriptionAdvance {
  private plan: PlanVersion | null = null;

  constructor(
    private readonly tx: WriteOperations,
    private readonly sub: Subscription,
    private readonly ledgers: CustomerLedgers,
    /** The real present: grants for a future start are recorded now, never in the future. */
    private readonly now: Instant,
  ) {}

  async currentPlan(): Promise<PlanVersion> {
    if (
      this.plan === null ||
      this.plan.id !== this.sub.planId ||
      this.plan.version !== this.sub.planVersion
    ) {
      this.plan = await requirePlanVersion(
        this.tx,
        this.sub.workspaceId,
        this.sub.planId,
        this.sub.planVersion,
      );
    }
    return this.plan;
  }

  /** The next thing due and when; at equal instants an end comes first, then a change, then resets. */
  nextDue(plan: PlanVersion): { at: Instant; what: 'end' | 'change' | number } | null {
    const sub = this.sub;
    if (sub.status !== 'active') return null;
    let next: { at: Instant; what: 'end' | 'change' | number } | null = null;
    if (sub.cancelAt !== null) next = { at: sub.cancelAt, what: 'end' };
    if (sub.pendingChange !== null && (next === null || sub.pendingChange.at < next.at)) {
      next = { at: sub.pendingChange.at, what: 'change' };
    }
    plan.allowances.forEach((allowance, i) => {
      const at = anniversary(sub.anchorAt, allowance.period, sub.nextAllowancePeriod[i] ?? 0, sub.timeZone);
      if (next === null || at < next.at) next = { at, what: i };
    });
    return next;
  }

  /** When the next item is due (null: nothing ever again). */
  async nextDueAt(): Promise<Instant | null> {
    return this.nextDue(await this.currentPlan())?.at ?? null;
  }

  /**
   * Phase one of everything this subscription has due at `at`: each reset's rollover is worked out
   * (and its trims recorded) from the ledger as it stood just before `at`. Phase two, returned,
   * records what happens at `at` (expiries, carries, new allowances, a plan switch, an end). The
   * caller runs phase one for every subscription due at `at` before any phase two, because the
   * first grant dated `at` moves the ledger to `at` and expires every allowance ending then.
   */
  async prepare(at: Instant): Promise<(() => Promise<void>)[]> {
    const plan = await this.currentPlan();
    const due = this.nextDue(plan);
    if (due === null || due.at !== at) return [];
    if (due.what === 'end') return [() => this.end(at)];
    const sub = this.sub;
    if (due.what === 'change') {
      // A change waiting for a period end: the old allowances ending now carry by their own rule.
      const carries: (() => void)[] = [];
      for (const [index, allowance] of plan.allowances.entries()) {
        const period = sub.nextAllowancePeriod[index] ?? 0;
        if (period > 0 && anniversary(sub.anchorAt, allowance.period, period, sub.timeZone) === at) {
          carries.push(await this.planCarry(allowance, allowanceKey(allowance), period, at));
        }
      }
      const change = sub.pendingChange!;
      return [
        async () => {
          for (const carry of carries) carry();
          const next = await requirePlanVersion(this.tx, sub.workspaceId, change.planId, change.planVersion);
          this.switchTo(next, at);
          sub.pendingChange = null;
        },
      ];
    }
    const steps: (() => Promise<void>)[] = [];
    for (const [index, allowance] of plan.allowances.entries()) {
      const period = sub.nextAllowancePeriod[index] ?? 0;
      if (anniversary(sub.anchorAt, allowance.period, period, sub.timeZone) !== at) continue;
      const key = allowanceKey(allowance);
      const carry = period > 0 ? await this.planCarry(allowance, key, period, at) : null;
      steps.push(async () => {
        carry?.();
        const ledger = await this.ledgers.get(allowance.creditType);
        this.issue(ledger, allowance, key, period, 'allowance', allowance.amount, at, at);
        sub.nextAllowancePeriod[index] = period + 1;
      });
    }
    return steps;
  }

  /** Processes everything due up to `until`, then records when the next item is due. */
  async run(until: Instant): Promise<void> {
    for (let at = await this.nextDueAt(); at !== null && at <= until; at = await this.nextDueAt()) {
      for (const step of await this.prepare(at)) await step();
    }
    this.sub.nextDueAt = await this.nextDueAt();
  }

  /**
   * The rollover at the boundary `at` that starts `period`: from the ledger just before `at`, the
   * unused part of the ending period's allowance is carried (up to the cap across live rollovers,
   * oldest trimmed first; the trims are recorded now, dated `at`). Returns the recording of the
   * carry, for phase two.
   */
  private async planCarry(
    allowance: Allowance,
    key: string,
    period: number,
    at: Instant,
  ): Promise<() => void> {
    const ledger = await this.ledgers.get(allowance.creditType);
    ledger.advanceTo(Math.min(at, this.now) - 1);
    const ending = grantsOf(ledger, this.sub.id, key, ['allowance', 'proration']).filter(
      (g) => g.closedReason === null && g.metadata[META.period] === period - 1,
    );
    const unused = Amount.sum(ending.map((g) => g.available));
    const live = grantsOf(ledger, this.sub.id, key, ['rollover'])
      .filter((g) => g.closedReason === null && (g.expiresAt === null || g.expiresAt > at))
      .sort((a, b) => a.effectiveAt - b.effectiveAt || (a.id < b.id ? -1 : 1))
      .map((g) => ({ grantId: g.id, available: g.available }));
    const plan = planRollover(allowance, unused, live);
    for (const trim of plan.trims) ledger.expirePart(trim.grantId, trim.amount, at);
    const after = allowance.rollover?.expiresAfterPeriods ?? null;
    const expiresAt =
      after === null
        ? null
        : anniversary(this.sub.anchorAt, allowance.period, period + after, this.sub.timeZone);
    return () => {
      ledger.advanceTo(at);
      if (plan.carry.isPositive())
        this.issue(ledger, allowance, key, period, 'rollover', plan.carry, at, expiresAt);
    };
  }

  private issue(
    ledger: CreditLedger,
    allowance: Allowance,
    key: string,
    period: number,
    kind: AllowanceKind,
    amount: Amount,
    effectiveAt: Instant,
    expiresAtOrBoundary: Instant | null,
  ): void {
    const sub = this.sub;
    if (!sub.grantedCreditTypes.includes(allowance.creditType))
      sub.grantedCreditTypes.push(allowance.creditType);
    const expiresAt =
      kind === 'allowance'
        ? anniversary(sub.anchorAt, allowance.period, period + 1, sub.timeZone)
        : expiresAtOrBoundary;
    ledger.grant(
      {
        amount,
        category: 'allowance',
        priority: allowance.priority,
        effectiveAt,
        expiresAt,
        costBasis: null,
        appliesTo: allowance.appliesTo,
        description: `${kind} of plan ${sub.planId} v${sub.planVersion}, period ${period}`,
        metadata: {
          [META.subscription]: sub.id,
          [META.allowance]: key,
          [META.period]: period,
          [META.kind]: kind,
        },
      },
      Math.min(effectiveAt, this.now),
    );
  }

  /** Puts the subscription on `plan` from `at`: its allowances start at their next anniversary at or after `at`. */
  switchTo(plan: PlanVersion, at: Instant): void {
    this.sub.planId = plan.id;
    this.sub.planVersion = plan.version;
    this.sub.nextAllowancePeriod = plan.allowances.map((a) =>
      firstIndexAtOrAfter(this.sub.anchorAt, a.period, at, this.sub.timeZone),
    );
    this.plan = plan;
  }

  /** Ends the subscription at `at`: its allowance and rollover credits still open leave (void) then. */
  async end(at: Instant): Promise<void> {
    const plan = await this.currentPlan();
    // Every credit type the subscription ever granted in, not only the current plan's.
    const creditTypes = new Set([
      ...this.sub.grantedCreditTypes,
      ...plan.allowances.map((a) => a.creditType),
    ]);
    for (const creditType of creditTypes) {
      const ledger = await this.ledgers.get(creditType);
      ledger.advanceTo(at);
      for (const grant of [...ledger.grants.values()]) {
        if (grant.metadata[META.subscription] === this.sub.id && grant.closedReason === null) {
          ledger.voidGrant(grant.id, at);
        }
      }
    }
    this.sub.status = 'canceled';
    this.sub.endedAt = at;
    this.sub.cancelAt = null;
    this.sub.pendingChange = null;
  }

  /**
   * The proration rule of an immediate change at `at` (stated in the README): the old allowance
   * grants of the current period stay as they are; for each allowance of the new plan, the increase
   * over the old plan's allowance with the same key (credit type, period, applicability; zero if
   * none) is granted for the rest of the current period, prorated by time; from the next
   * anniversary on, the new plan's full amounts. Rollovers carry on under the same key.
   */
  async changeNow(next: PlanVersion, at: Instant): Promise<void> {
    const old = await this.currentPlan();
    this.sub.planId = next.id;
    this.sub.planVersion = next.version;
    for (const allowance of next.allowances) {
      const key = allowanceKey(allowance);
      const current = periodContaining(this.sub.anchorAt, allowance.period, at, this.sub.timeZone);
      const before = old.allowances.find((a) => allowanceKey(a) === key)?.amount ?? Amount.ZERO;
      const increase = proratedIncrease(before, allowance.amount, current, at);
      if (!increase.isPositive()) continue;
      const ledger = await this.ledgers.get(allowance.creditType);
      ledger.advanceTo(at);
      this.issue(ledger, allowance, key, current.index, 'proration', increase, at, current.end);
    }
    this.switchTo(next, at + 1);
    this.sub.pendingChange = null;
  }
}

/** The subscription's current billing period (its first one while it has not started). */
export function currentPeriod(
  sub: Subscription,
  plan: PlanVersion,
  now: Instant,
): { readonly start: Instant; readonly end: Instant } {
  const at = sub.endedAt !== null ? Math.max(sub.anchorAt, sub.endedAt - 1) : Math.max(now, sub.anchorAt);
  const p = periodContaining(sub.anchorAt, plan.billingPeriod, at, sub.timeZone);
  return { start: p.start, end: p.end };
}

/** Whether the subscription entitles its customer at `now`. */
export function isSubscriptionLive(sub: Subscription, now: Instant): boolean {
  return sub.status === 'active' && sub.anchorAt <= now && (sub.cancelAt === null || now < sub.cancelAt);
}

/**
 * Processes every subscription of a customer with something due by `now`. Called at the start of
 * every write for the customer (and by the sweeper and at start-up), so resets are never late
 * from any client's point of view, whether or not a background job ran.
 */
export async function renewDueSubscriptions(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  customerId: string,
  now: Instant,
): Promise<number> {
  const due = await tx.plans.dueSubscriptionsOf(workspaceId, customerId, now);
  if (due.length === 0) return 0;
  const ledgers = new CustomerLedgers(ctx, tx, workspaceId, customerId);
  const advances = due.map((stored) => {
    const sub: Subscription = {
      ...stored,
      nextAllowancePeriod: [...stored.nextAllowancePeriod],
      grantedCreditTypes: [...stored.grantedCreditTypes],
    };
    return { sub, advance: new SubscriptionAdvance(tx, sub, ledgers, now) };
  });
  // The customer's ledgers move forward in one time order across all its subscriptions: instant by
  // instant, every subscription's phase one (rollovers from the ledger just before the instant)
  // before any phase two (what is recorded at the instant), so no reset sees the ledger already
  // advanced past it by another reset due at the same instant.
  for (;;) {
    let at: Instant | null = null;
    for (const { advance } of advances) {
      const due = await advance.nextDueAt();
      if (due !== null && due <= now && (at === null || due < at)) at = due;
    }
    if (at === null) break;
    const steps: (() => Promise<void>)[] = [];
    for (const { advance } of advances) steps.push(...(await advance.prepare(at)));
    for (const step of steps) await step();
  }
  const renewed: OutboxMessage[] = [];
  for (const [i, { sub, advance }] of advances.entries()) {
    sub.nextDueAt = await advance.nextDueAt();
    sub.updatedAt = now;
    await tx.plans.saveSubscription(sub);
    const before = due[i]!.nextAllowancePeriod;
    const reset = sub.nextAllowancePeriod.some((n, k) => n > (before[k] ?? 0));
    if (reset && sub.status === 'active') {
      renewed.push(subscriptionRenewedFact(sub, currentPeriod(sub, await advance.currentPlan(), now)));
    }
  }
  await ledgers.save(now);
  await appendFacts(ctx, tx, now, renewed);
  return due.length;
}

/**
 * How many resets a backdated start may owe: they are issued in the request's transaction, under
 * the customer's lock, so the bound keeps one request short.
 */
export const MAX_BACKDATED_RESETS = 1000;

/**
 * Refuses a second live subscription of a customer to one plan (409 `already_subscribed`): one
 * that has not ended and is on the plan or has a change to it pending. Called under the
 * customer's lock, after due renewals ended what was due to end, so a retry or a double click
 * cannot double an allowance, in one process or many.
 */
async function refuseSecondSubscription(
  tx: WriteOperations,
  workspaceId: string,
  customerId: string,
  planId: string,
  exceptId: string | null,
): Promise<void> {
  const existing = (await tx.plans.subscriptionsOf(workspaceId, customerId)).find(
    (s) =>
      s.id !== exceptId &&
      s.status === 'active' &&
      (s.planId === planId || s.pendingChange?.planId === planId),
  );
  if (existing !== undefined) {
    throw new BurndownError(
      ErrorCode.alreadySubscribed,
      `customer "${customerId}" already has a live subscription (${existing.id}) to plan "${planId}"; send "allow_multiple": true to have another`,
      { subscription_id: existing.id, plan_id: planId },
    );
  }
}

/** Starts a subscription; its first allowances are granted before this returns (pending if it starts later). */
export async function startSubscription(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    customerId: string;
    planId: string;
    planVersion: number | null;
    startAt: Instant | null;
    /** Whether a second live subscription to the same plan is meant (its allowances add up). */
    allowMultiple?: boolean;
    now: Instant;
  },
): Promise<{ subscription: Subscription; plan: PlanVersion }> {
  const { workspaceId, customerId, now } = input;
  await requireCustomer(tx, workspaceId, customerId);
  await renewDueSubscriptions(ctx, tx, workspaceId, customerId, now);
  const plan = await requirePlanVersion(tx, workspaceId, input.planId, input.planVersion);
  if (input.allowMultiple !== true)
    await refuseSecondSubscription(tx, workspaceId, customerId, plan.id, null);
  const startAt = input.startAt ?? now;
  for (const allowance of plan.allowances) {
    if (startAt >= now) continue;
    // A backdated start writes entries dated in the past; it may not reach behind entries already
    // recorded (it would, for one, pay a debt with credits dated before the debt existed).
    const key = { workspaceId, customerId, creditType: allowance.creditType };
    const latest = await tx.latestEntryAt(key);
    if (latest !== null && latest > startAt) {
      throw invalidRequest(
        `start_at is before the customer's latest ${allowance.creditType} ledger entry (${formatInstant(latest)}): start at or after it`,
        { field: 'start_at', latest_entry_at: formatInstant(latest) },
      );
    }
    const owed = periodContaining(startAt, allowance.period, now, plan.timeZone).index;
    if (owed > MAX_BACKDATED_RESETS) {
      throw invalidRequest(
        `start_at is too far in the past: it would owe ${owed} ${allowance.period} resets (at most ${MAX_BACKDATED_RESETS})`,
        { field: 'start_at' },
      );
    }
  }
  const sub: Subscription = {
    workspaceId,
    id: ctx.ids.newId('sub'),
    customerId,
    planId: plan.id,
    planVersion: plan.version,
    status: 'active',
    anchorAt: startAt,
    timeZone: plan.timeZone,
    nextAllowancePeriod: plan.allowances.map(() => 0),
    grantedCreditTypes: [],
    cancelAt: null,
    endedAt: null,
    pendingChange: null,
    nextDueAt: startAt,
    createdAt: now,
    updatedAt: now,
  };
  const ledgers = new CustomerLedgers(ctx, tx, workspaceId, customerId);
  await new SubscriptionAdvance(tx, sub, ledgers, now).run(Math.max(now, startAt));
  await ledgers.save(now);
  await tx.plans.saveSubscription(sub);
  return { subscription: sub, plan };
}

async function openActiveSubscription(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  subscriptionId: string,
  now: Instant,
): Promise<Subscription> {
  const found = await tx.plans.getSubscription(workspaceId, subscriptionId);
  if (!found) throw notFound('subscription', subscriptionId);
  await renewDueSubscriptions(ctx, tx, workspaceId, found.customerId, now);
  const sub = await tx.plans.getSubscription(workspaceId, subscriptionId);
  if (sub?.status !== 'active') {
    throw new BurndownError(ErrorCode.subscriptionNotActive, 'subscription has ended', {
      status: sub?.status ?? 'canceled',
    });
  }
  return {
    ...sub,
    nextAllowancePeriod: [...sub.nextAllowancePeriod],
    grantedCreditTypes: [...sub.grantedCreditTypes],
  };
}

/** Cancels now (unused allowance credits leave) or at the end of the current billing period. */
export async function cancelSubscription(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; subscriptionId: string; atPeriodEnd: boolean; now: Instant },
): Promise<{ subscription: Subscription; plan: PlanVersion }> {
  const { now } = input;
  const sub = await openActiveSubscription(ctx, tx, input.workspaceId, input.subscriptionId, now);
  const ledgers = new CustomerLedgers(ctx, tx, sub.workspaceId, sub.customerId);
  const advance = new SubscriptionAdvance(tx, sub, ledgers, now);
  const plan = await advance.currentPlan();
  if (input.atPeriodEnd) {
    sub.cancelAt = currentPeriod(sub, plan, now).end;
    sub.pendingChange = null;
  } else {
    await advance.end(now);
  }
  await advance.run(now);
  sub.updatedAt = now;
  await ledgers.save(now);
  await tx.plans.saveSubscription(sub);
  await appendFacts(ctx, tx, now, [subscriptionCanceledFact(sub, now)]);
  return { subscription: sub, plan };
}

/**
 * Changes plan. `now`: at once, with the allowance increase prorated for the rest of the period;
 * `period_end`: at the end of the current billing period. Default: now when the new version's
 * price is at least the old one's (an upgrade), at the period end when it is lower (a downgrade).
 */
export async function changeSubscription(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    subscriptionId: string;
    planId: string;
    planVersion: number | null;
    when: 'now' | 'period_end' | null;
    /** Whether moving onto a plan another live subscription of the customer is on is meant. */
    allowMultiple?: boolean;
    now: Instant;
  },
): Promise<{ subscription: Subscription; plan: PlanVersion; effectiveAt: Instant }> {
  const { now } = input;
  const sub = await openActiveSubscription(ctx, tx, input.workspaceId, input.subscriptionId, now);
  const ledgers = new CustomerLedgers(ctx, tx, sub.workspaceId, sub.customerId);
  const advance = new SubscriptionAdvance(tx, sub, ledgers, now);
  const old = await advance.currentPlan();
  const next = await requirePlanVersion(tx, input.workspaceId, input.planId, input.planVersion);
  if (next.id === old.id && next.version === old.version) {
    throw invalidRequest('the subscription is already on this plan version', { field: 'plan_id' });
  }
  if (input.allowMultiple !== true && next.id !== old.id) {
    await refuseSecondSubscription(tx, sub.workspaceId, sub.customerId, next.id, sub.id);
  }
  if (sub.cancelAt !== null) {
    throw new BurndownError(ErrorCode.subscriptionNotActive, 'subscription is canceled at period end', {
      status: 'canceling',
    });
  }
  const isDowngrade =
    old.price !== null &&
    next.price !== null &&
    old.price.currency === next.price.currency &&
    next.price.amount.lessThan(old.price.amount);
  const when = input.when ?? (isDowngrade ? 'period_end' : 'now');
  let effectiveAt = now;
  if (sub.anchorAt > now) {
    throw new BurndownError(ErrorCode.subscriptionNotActive, 'subscription has not started yet', {
      status: 'pending',
    });
  }
  if (when === 'now') {
    await advance.changeNow(next, now);
  } else {
    effectiveAt = currentPeriod(sub, old, now).end;
    sub.pendingChange = { planId: next.id, planVersion: next.version, at: effectiveAt };
  }
  await advance.run(now);
  sub.updatedAt = now;
  await ledgers.save(now);
  await tx.plans.saveSubscription(sub);
  return { subscription: sub, plan: await advance.currentPlan(), effectiveAt };
}

/**
 * Catches up every subscription with something due: run at start-up (resets missed while the
 * server was down) and by the sweeper. Each customer is its own transaction under its lock, and
 * processing is idempotent, so several processes may sweep at once.
 */
export async function sweepDueSubscriptions(
  ctx: ServiceContext,
  options: { limit?: number; onError?: (error: unknown) => void } = {},
): Promise<{ customers: number; failed: number }> {
  const now = ctx.clock.now();
  const due = await ctx.storage.read.plans.findDueSubscriptions(now, options.limit ?? 500);
  let failed = 0;
  // In flight together (bounded): a month's resets at midnight share SQLite's commits instead of
  // waiting for one sync each.
  await forEachConcurrently(due, async ({ workspaceId, customerId }) => {
    try {
      await ctx.storage.write(customerLockKey(workspaceId, customerId), (tx) =>
        renewDueSubscriptions(ctx, tx, workspaceId, customerId, now),
      );
    } catch (error) {
      // One broken subscription (say, its plan version is gone) must not stop everyone else's resets.
      failed += 1;
      options.onError?.(error);
    }
  });
  return { customers: due.length, failed };
}

/**
 * A customer's subscriptions as they are now: ends, changes and resets due are applied first, so a
 * read never shows a subscription past its end as active, whether or not the sweeper ran.
 */
export async function readSubscriptions(
  ctx: ServiceContext,
  workspaceId: string,
  customerId: string,
): Promise<readonly Subscription[]> {
  const now = ctx.clock.now();
  const subscriptions = await ctx.storage.read.plans.subscriptionsOf(workspaceId, customerId);
  if (!subscriptions.some((s) => s.nextDueAt !== null && s.nextDueAt <= now)) return subscriptions;
  await ctx.storage.write(customerLockKey(workspaceId, customerId), (tx) =>
    renewDueSubscriptions(ctx, tx, workspaceId, customerId, now),
  );
  return ctx.storage.read.plans.subscriptionsOf(workspaceId, customerId);
}
