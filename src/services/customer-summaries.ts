import { Amount } from '../domain/amount/amount.js';
import { DAY_MS, utcDayStart } from '../domain/forecast/forecast.js';
import type { Instant } from '../domain/time/instant.js';
import type { Customer, LedgerKey, Page, PageRequest } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { readBalance } from './ledger.js';
import { requireCreditType } from './lookups.js';

/** Days of daily consumption each summary carries (the dashboard's overview sums them). */
export const SUMMARY_DAYS = 14;
/** The trailing days whose mean is a summary's burn rate. */
export const BURN_RATE_DAYS = 7;
/** Grants expiring within this many days are "expiring soon". */
export const EXPIRING_SOON_DAYS = 7;
const PAGE = 1000;

/** One customer's balance and burn, for a list of many (the dashboard's customers and at-risk views). */
export interface CustomerSummary {
  readonly customer: Customer;
  readonly available: Amount;
  readonly held: Amount;
  readonly overage: Amount;
  /** Mean daily consumption over the trailing {@link BURN_RATE_DAYS} full days and today so far (from the first day of use). */
  readonly burnPerDay: Amount;
  /** available ÷ burn per day, in seconds; null when nothing burns. */
  readonly runwaySeconds: number | null;
  /** Credits consumed per UTC day, oldest first, the last being today so far. */
  readonly daily: readonly { readonly day: Instant; readonly consumed: Amount }[];
  /** Credits in grants that expire within {@link EXPIRING_SOON_DAYS} days. */
  readonly expiringSoon: Amount;
  readonly nextExpiry: { readonly at: Instant; readonly amount: Amount } | null;
}

/** Credits consumed per UTC day of one ledger over the last `days` days (today included, so far). */
export async function dailyConsumption(
  ctx: ServiceContext,
  key: LedgerKey,
  now: Instant,
  days: number,
): Promise<{ day: Instant; consumed: Amount }[]> {
  const from = utcDayStart(now) - (days - 1) * DAY_MS;
  const perDay = Array.from({ length: days }, () => Amount.ZERO);
  let after: readonly string[] | null = null;
  do {
    const page = await ctx.storage.read.listEntries(
      key,
      { from, to: now, order: 'asc' },
      { after, limit: PAGE },
    );
    for (const entry of page.items) {
      const day = Math.floor((entry.at - from) / DAY_MS);
      if (day < 0 || day >= days) continue;
      if (entry.toAccount === 'consumed') perDay[day] = perDay[day]!.plus(entry.amount);
      else if (entry.fromAccount === 'consumed') perDay[day] = perDay[day]!.minus(entry.amount);
    }
    after = page.nextAfter;
  } while (after !== null);
  return perDay.map((consumed, i) => ({ day: from + i * DAY_MS, consumed }));
}

/**
 * A page of customers (by id) with their balance of one credit type and a simple burn rate: the
 * mean of the last seven days. Cheaper than a forecast per customer (no simulation), so a list of a
 * hundred stays fast; the customer page shows the full forecast.
 */
export async function listCustomerSummaries(
  ctx: ServiceContext,
  workspaceId: string,
  creditType: string,
  page: PageRequest,
): Promise<Page<CustomerSummary>> {
  await requireCreditType(ctx.storage.read, workspaceId, creditType);
  const customers = await ctx.storage.read.listCustomers(workspaceId, page);
  const now = ctx.clock.now();
  const items: CustomerSummary[] = [];
  for (const customer of customers.items) {
    const key = { workspaceId, customerId: customer.id, creditType };
    const balance = await readBalance(ctx, { key, at: null });
    const daily = await dailyConsumption(ctx, key, now, SUMMARY_DAYS);
    const recent = daily.slice(-(BURN_RATE_DAYS + 1));
    // From the first day of use within the trailing days (a customer who started yesterday has
    // one day of history, not seven) to now, at least an hour.
    const firstUse = recent.findIndex((d) => d.consumed.isPositive());
    const fullDays = firstUse < 0 ? 0 : recent.length - 1 - firstUse;
    const elapsedMs = Math.max(DAY_MS / 24, fullDays * DAY_MS + (now - utcDayStart(now)));
    const consumed = Amount.sum(recent.map((d) => d.consumed));
    const burnPerDay = consumed.isPositive()
      ? consumed.mulRatio(BigInt(DAY_MS), BigInt(Math.max(1, elapsedMs)), 'half_even')
      : Amount.ZERO;
    const runwaySeconds = burnPerDay.isPositive()
      ? Number((balance.available.units * 86_400n) / burnPerDay.units)
      : null;
    const soon = now + EXPIRING_SOON_DAYS * DAY_MS;
    const expiringSoon = Amount.sum(
      balance.grants.filter((g) => g.expiresAt !== null && g.expiresAt <= soon).map((g) => g.remaining),
    );
    items.push({
      customer,
      available: balance.available,
      held: balance.held,
      overage: balance.overage,
      burnPerDay,
      runwaySeconds,
      daily,
      expiringSoon,
      nextExpiry: balance.nextExpiry,
    });
  }
  return { items, nextAfter: customers.nextAfter };
}
