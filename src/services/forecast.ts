import { Amount } from '../domain/amount/amount.js';
import {
  DAY_MS,
  DEFAULT_HORIZON_DAYS,
  DEFAULT_WINDOW_DAYS,
  type ForecastAutoTopUp,
  type ForecastGrant,
  type ForecastResult,
  forecastDepletion,
  type ScheduledCredit,
  utcDayStart,
} from '../domain/forecast/forecast.js';
import type { HoldState } from '../domain/ledger/types.js';
import type { Instant } from '../domain/time/instant.js';
import { anniversary } from '../domain/time/periods.js';
import type { LedgerKey } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { readBalance } from './ledger.js';
import { readSubscriptions } from './subscriptions.js';

/** Entries read per page while summing the window's consumption. */
const PAGE = 1000;
/** Known future events listed at most (resets of a daily allowance over a year would be 365). */
const MAX_KNOWN = 100;

/** A statistical estimate of an amount (never money): a JavaScript number for the forecast. */
function estimate(amount: Amount): number {
  return Number(amount.units) / 1e12;
}

/** An estimate back to a decimal amount, to the millionth, for presentation. */
export function estimateAmount(value: number): Amount {
  if (!Number.isFinite(value)) return Amount.ZERO;
  return Amount.fromUnits(BigInt(Math.trunc(value * 1e6)) * 1_000_000n);
}

/** What the forecast answer carries besides the domain's result: the known future, listed. */
export interface CustomerForecast {
  readonly key: LedgerKey;
  readonly now: Instant;
  readonly result: ForecastResult;
  readonly held: Amount;
  readonly overage: Amount;
  readonly holds: readonly HoldState[];
  readonly expiries: readonly { grantId: string; at: Instant; remaining: Amount }[];
  readonly resets: readonly (ScheduledCredit & { subscriptionId: string })[];
  readonly autoTopUp: (ForecastAutoTopUp & { packId: string; quantity: number }) | null;
  readonly daily: readonly { day: Instant; consumed: Amount }[];
}

/**
 * A forecast's runway in seconds, as the API shows it and `balance.runway_below` compares it: 0
 * when depleted, until the median depletion (p50) when one is forecast, null when nothing burns or
 * the balance outlasts the horizon.
 */
export function runwaySeconds(f: CustomerForecast): number | null {
  const r = f.result;
  if (r.status === 'depleted') return 0;
  if (r.status === 'forecast' && r.p50 != null) return Math.max(0, Math.trunc((r.p50 - f.now) / 1000));
  return null;
}

/**
 * The depletion forecast of one customer's credit type (src/domain/forecast has the method): reads
 * the trailing window's consumption from the ledger, the grants, holds, subscriptions' allowance
 * resets and the auto top-up rule, and runs the pure forecast. Unknown customer or credit type: 404.
 */
export async function forecastCustomer(ctx: ServiceContext, key: LedgerKey): Promise<CustomerForecast> {
  // Settles what is due (resets, expiries) and 404s an unknown customer or credit type.
  const balance = await readBalance(ctx, { key, at: null });
  const now = ctx.clock.now();
  const reads = ctx.storage.read;
  const todayStart = utcDayStart(now);
  const from = todayStart - DEFAULT_WINDOW_DAYS * DAY_MS;
  const perDay = Array.from({ length: DEFAULT_WINDOW_DAYS + 1 }, () => Amount.ZERO);
  let after: readonly string[] | null = null;
  do {
    const page = await reads.listEntries(key, { from, to: now, order: 'asc' }, { after, limit: PAGE });
    for (const entry of page.items) {
      const day = Math.floor((entry.at - from) / DAY_MS);
      if (day < 0 || day > DEFAULT_WINDOW_DAYS) continue;
      if (entry.toAccount === 'consumed') perDay[day] = perDay[day]!.plus(entry.amount);
      else if (entry.fromAccount === 'consumed') perDay[day] = perDay[day]!.minus(entry.amount);
    }
    after = page.nextAfter;
  } while (after !== null);

  const snapshot = await reads.loadLedger(key);
  const grants: ForecastGrant[] = snapshot.grants
    .filter(
      (g) =>
        g.closedReason === null && g.available.isPositive() && (g.expiresAt === null || g.expiresAt > now),
    )
    .map((g) => ({
      id: g.id,
      remaining: estimate(g.available),
      priority: g.priority,
      effectiveAt: g.effectiveAt,
      expiresAt: g.expiresAt,
    }));
  const expiries = snapshot.grants
    .filter((g) => g.closedReason === null && g.expiresAt !== null && g.expiresAt > now)
    .map((g) => ({ grantId: g.id, at: g.expiresAt!, remaining: g.available.plus(g.held) }))
    .sort((a, b) => a.at - b.at)
    .slice(0, MAX_KNOWN);
  const holds = snapshot.holds.filter((h) => h.status === 'active' && h.expiresAt > now);

  const horizonEnd = todayStart + DEFAULT_HORIZON_DAYS * DAY_MS;
  const resets: (ScheduledCredit & { subscriptionId: string })[] = [];
  for (const sub of await readSubscriptions(ctx, key.workspaceId, key.customerId)) {
    if (sub.status !== 'active') continue;
    const plan = await reads.plans.getPlanVersion(key.workspaceId, sub.planId, sub.planVersion);
    if (!plan) continue;
    plan.allowances.forEach((allowance, i) => {
      if (allowance.creditType !== key.creditType) return;
      const next = sub.nextAllowancePeriod[i] ?? 0;
      for (let n = next; n < next + MAX_KNOWN; n++) {
        const at = anniversary(sub.anchorAt, allowance.period, n, sub.timeZone);
        if (at <= now) continue;
        if (at >= horizonEnd || (sub.cancelAt !== null && at >= sub.cancelAt)) break;
        resets.push({
          at,
          amount: estimate(allowance.amount),
          expiresAt: anniversary(sub.anchorAt, allowance.period, n + 1, sub.timeZone),
          priority: allowance.priority,
          label: `${sub.id}:${i}`,
          subscriptionId: sub.id,
        });
      }
    });
  }
  resets.sort((a, b) => a.at - b.at);

  let autoTopUp: CustomerForecast['autoTopUp'] = null;
  const rule = await reads.plans.getAutoTopUp(key.workspaceId, key.customerId);
  const pack = rule?.enabled ? await reads.plans.getCreditPack(key.workspaceId, rule.packId) : null;
  if (rule?.enabled && pack && pack.creditType === key.creditType) {
    const periodEnds: Instant[] = [];
    for (let n = 1; n < 2000 && periodEnds.length < MAX_KNOWN; n++) {
      const at = anniversary(rule.anchorAt, rule.period, n, 'UTC');
      if (at <= rule.periodStart) continue;
      if (at >= horizonEnd) break;
      periodEnds.push(at);
    }
    autoTopUp = {
      threshold: estimate(rule.threshold),
      credits: estimate(pack.credits) * rule.quantity,
      priority: pack.priority,
      expiresAfterMs: pack.expiresAfterDays === null ? null : pack.expiresAfterDays * DAY_MS,
      remainingInPeriod: Math.max(0, rule.maxPerPeriod - rule.countInPeriod),
      maxPerPeriod: rule.maxPerPeriod,
      periodEnds,
      packId: pack.id,
      quantity: rule.quantity,
    };
  }

  const result = forecastDepletion({
    now,
    daily: perDay.slice(0, DEFAULT_WINDOW_DAYS).map(estimate),
    consumedToday: estimate(perDay[DEFAULT_WINDOW_DAYS]!),
    grants,
    overage: estimate(balance.overage),
    scheduled: resets,
    autoTopUp,
  });
  return {
    key,
    now,
    result,
    held: balance.held,
    overage: balance.overage,
    holds,
    expiries,
    resets: resets.slice(0, MAX_KNOWN),
    autoTopUp,
    daily: perDay.map((consumed, i) => ({ day: from + i * DAY_MS, consumed })),
  };
}
