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

/** One customer's summary of one credit type at `now` (see {@link CustomerSummary}). */
async function summarize(
  ctx: ServiceContext,
  customer: Customer,
  creditType: string,
  now: Instant,
): Promise<CustomerSummary> {
  const key = { workspaceId: customer.workspaceId, customerId: customer.id, creditType };
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
    ? Math.max(0, Number((balance.available.units * 86_400n) / burnPerDay.units))
    : null;
  const soon = now + EXPIRING_SOON_DAYS * DAY_MS;
  const expiringSoon = Amount.sum(
    balance.grants.filter((g) => g.expiresAt !== null && g.expiresAt <= soon).map((g) => g.remaining),
  );
  return {
    customer,
    available: balance.available,
    held: balance.held,
    overage: balance.overage,
    burnPerDay,
    runwaySeconds,
    daily,
    expiringSoon,
    nextExpiry: balance.nextExpiry,
  };
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
  for (const customer of customers.items) items.push(await summarize(ctx, customer, creditType, now));
  return { items, nextAfter: customers.nextAfter };
}

/**
 * Calls `visit` with every customer of the workspace (by id, a page of {@link PAGE} at a time) and,
 * unless `wanted` rejects the customer first, its summary at `now`: the walk the sorted lists and
 * the totals share, O(customers) reads and O(1) memory of its own.
 */
async function forEachSummary(
  ctx: ServiceContext,
  workspaceId: string,
  creditType: string,
  now: Instant,
  visit: (summary: CustomerSummary) => void,
  wanted: (customer: Customer) => boolean = () => true,
): Promise<void> {
  let after: readonly string[] | null = null;
  do {
    const customers = await ctx.storage.read.listCustomers(workspaceId, { after, limit: PAGE });
    for (const customer of customers.items) {
      if (wanted(customer)) visit(await summarize(ctx, customer, creditType, now));
    }
    after = customers.nextAfter;
  } while (after !== null);
}

/** What a sorted summary list orders by (ties by customer id). */
export type SummarySort = 'id' | 'available' | 'burn_per_day' | 'runway' | 'expiring_soon';

/** A sorted, filtered listing of summaries: search, sort, order, and only customers with a runway. */
export interface SummaryListing {
  readonly sort: SummarySort;
  readonly order: 'asc' | 'desc';
  /** Case-insensitive substring of the customer's id or name; null: everyone. */
  readonly search: string | null;
  /** Only customers burning credits (a runway; the at-risk view). */
  readonly burningOnly: boolean;
  /** The sort value (as {@link summarySortValue} gives it) and id of the last row of the previous page (the page's resume key is `[sort, order, value, id]`). */
  readonly after: { readonly value: string; readonly id: string } | null;
  readonly limit: number;
}

/**
 * A summary's sort value as an exact, comparable bigint: amounts in units, runway in seconds (no
 * runway sorts after every runway); `id` has none (0: ties broken by id).
 */
export function summarySortValue(s: CustomerSummary, sort: SummarySort): bigint {
  switch (sort) {
    case 'available':
      return s.available.units;
    case 'burn_per_day':
      return s.burnPerDay.units;
    case 'runway':
      return s.runwaySeconds === null ? 2n ** 62n : BigInt(s.runwaySeconds);
    case 'expiring_soon':
      return s.expiringSoon.units;
    default:
      return 0n;
  }
}

/**
 * Summaries sorted by balance, burn rate, runway or expiring credits across every customer of the
 * workspace, searched and paged (keyset: the last row's sort value and id). Correct for any number
 * of customers, never truncated: each page computes every customer's summary (one balance read and
 * 14 days of entries each) and keeps the `limit` that follow the cursor, so a page costs
 * O(customers) reads and O(limit) memory. Sorting by id without a search pages by id instead.
 */
export async function listSortedSummaries(
  ctx: ServiceContext,
  workspaceId: string,
  creditType: string,
  listing: SummaryListing,
): Promise<Page<CustomerSummary>> {
  await requireCreditType(ctx.storage.read, workspaceId, creditType);
  const now = ctx.clock.now();
  const sign = listing.order === 'desc' ? -1 : 1;
  const cmp = (a: { v: bigint; id: string }, b: { v: bigint; id: string }): number => {
    if (a.v !== b.v) return (a.v < b.v ? -1 : 1) * sign;
    return (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) * sign;
  };
  const cursor = listing.after === null ? null : { v: BigInt(listing.after.value), id: listing.after.id };
  const needle = listing.search?.toLowerCase() ?? null;
  let kept: { v: bigint; id: string; s: CustomerSummary }[] = [];
  const trim = () => {
    kept.sort(cmp);
    kept = kept.slice(0, listing.limit + 1);
  };
  await forEachSummary(
    ctx,
    workspaceId,
    creditType,
    now,
    (s) => {
      if (listing.burningOnly && s.runwaySeconds === null) return;
      const row = { v: summarySortValue(s, listing.sort), id: s.customer.id, s };
      if (cursor !== null && cmp(row, cursor) <= 0) return;
      kept.push(row);
      if (kept.length > 4 * (listing.limit + 1)) trim();
    },
    (customer) =>
      needle === null ||
      customer.id.toLowerCase().includes(needle) ||
      (customer.name ?? '').toLowerCase().includes(needle),
  );
  trim();
  const items = kept.slice(0, listing.limit).map((r) => r.s);
  const last = kept[listing.limit - 1];
  return {
    items,
    nextAfter:
      kept.length > listing.limit && last ? [listing.sort, listing.order, String(last.v), last.id] : null,
  };
}

/** A workspace's totals of one credit type over every customer (the dashboard's overview). */
export interface SummaryTotals {
  readonly customers: number;
  readonly available: Amount;
  readonly held: Amount;
  readonly overage: Amount;
  readonly expiringSoon: Amount;
  /** Credits consumed per UTC day over {@link SUMMARY_DAYS} days, oldest first, the last being today so far. */
  readonly daily: readonly { readonly day: Instant; readonly consumed: Amount }[];
}

/**
 * Sums every customer's summary of one credit type: outstanding, held and owed credits, credits
 * expiring soon and consumption per day. Exact (decimal sums of what each customer's summary
 * shows) and never truncated: like a sorted page, it reads every customer (one balance read and
 * 14 days of entries each), so it costs O(customers) reads and O(1) memory.
 */
export async function summaryTotals(
  ctx: ServiceContext,
  workspaceId: string,
  creditType: string,
): Promise<SummaryTotals> {
  await requireCreditType(ctx.storage.read, workspaceId, creditType);
  const now = ctx.clock.now();
  let customers = 0;
  let available = Amount.ZERO;
  let held = Amount.ZERO;
  let overage = Amount.ZERO;
  let expiringSoon = Amount.ZERO;
  const from = utcDayStart(now) - (SUMMARY_DAYS - 1) * DAY_MS;
  const perDay = Array.from({ length: SUMMARY_DAYS }, () => Amount.ZERO);
  await forEachSummary(ctx, workspaceId, creditType, now, (s) => {
    customers += 1;
    available = available.plus(s.available);
    held = held.plus(s.held);
    overage = overage.plus(s.overage);
    expiringSoon = expiringSoon.plus(s.expiringSoon);
    s.daily.forEach((d, i) => {
      perDay[i] = perDay[i]!.plus(d.consumed);
    });
  });
  return {
    customers,
    available,
    held,
    overage,
    expiringSoon,
    daily: perDay.map((consumed, i) => ({ day: from + i * DAY_MS, consumed })),
  };
}
