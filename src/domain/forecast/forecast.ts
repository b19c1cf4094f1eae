import { extend } from '../objects.js';
import type { Instant } from '../time/instant.js';

/**
 * Depletion forecast: when will a customer's available balance of one credit type reach zero?
 *
 * The method (docs/forecast.md has its backtest):
 *
 * 1. **History**: credits consumed per UTC day over the trailing `windowDays` full days (debits and
 *    captures, less reversals), oldest first, from the first day with consumption on
 *    ({@link historyOf}; today so far, scaled to a day, when there is no full day yet).
 * 2. **Weekday seasonality**: each weekday's mean over the window divided by the window's mean,
 *    shrunk halfway towards 1 (four samples per weekday are few; a burst on one Tuesday must not
 *    make every Tuesday heavy). Used only with at least two weeks of history.
 * 3. **Level and trend**: an ordinary least-squares line through the days (the window is whole
 *    weeks, so the weekday pattern does not tilt it), its slope kept only when |t| ≥ 3, and damped (each further day adds `DAMPING` times the previous day's growth), so a
 *    growing customer is projected to keep growing, but not forever.
 * 4. **Interval**: `paths` simulated futures. Each path shifts the level by the mean of a
 *    bootstrap resample of the window's residuals (the uncertainty of the level) and adds one
 *    resampled residual per day (day-to-day noise). The random numbers come from a fixed seed, so
 *    the same inputs always give the same answer. Depletion instants of the paths give p10/p50/p90.
 * 5. **Known future**: every path applies the scheduled expiries of the grants it has not burnt
 *    (burn-down order: priority, then soonest expiry), the upcoming allowance resets and the auto
 *    top-up rule, at their instants; holds are treated as spent (they are not available).
 *
 * Statistics run on JavaScript numbers: this is an estimate, never money. Balances enter as
 * numbers converted from exact amounts and the answer is an instant.
 */

export const DAY_MS = 86_400_000;
/** How much of yesterday's trend growth carries into each further day (Holt's damped trend). */
export const DAMPING = 0.99;
/** Days simulated at most; a depletion further out is reported as "not within the horizon". */
export const DEFAULT_HORIZON_DAYS = 365;
export const DEFAULT_WINDOW_DAYS = 28;
export const DEFAULT_PATHS = 400;
export const DEFAULT_SEED = 0x5eed;
/** Weekday factors move this fraction of the way from 1 to what the window shows. */
const SEASONAL_WEIGHT = 0.5;
/** The t statistic a fitted trend needs before it is projected. */
const TREND_T = 3;

/** The fitted daily burn model: what the API reports as "the model and window used". */
export interface BurnModel {
  readonly method: 'daily_ols_damped_trend_weekday';
  readonly windowDays: number;
  /** Mean credits consumed per day over the window. */
  readonly meanPerDay: number;
  /** Deseasonalised daily rate at the end of the window (the level the projection starts from). */
  readonly levelPerDay: number;
  /** Daily change of the rate at the end of the window (before damping); 0 when not significant. */
  readonly trendPerDay: number;
  /** Standard error of that trend (0 when no trend is used); widens the interval. */
  readonly trendError: number;
  /** Multipliers for Sunday (0) … Saturday (6); all 1 when the window is shorter than two weeks. */
  readonly weekdayFactors: readonly number[];
  /** The window's residuals (consumption less the fitted value), resampled for the interval. */
  readonly residuals: readonly number[];
  /** Weekday of the day after the window (the first projected day), 0 = Sunday. */
  readonly firstForecastWeekday: number;
}

/** Weekday (0 = Sunday) of the UTC day containing `at`. 1970-01-01 was a Thursday. */
export function weekdayOf(at: Instant): number {
  return (((Math.floor(at / DAY_MS) + 4) % 7) + 7) % 7;
}

/** Start of the UTC day containing `at`. */
export function utcDayStart(at: Instant): Instant {
  return Math.floor(at / DAY_MS) * DAY_MS;
}

/**
 * Fits the burn model to daily consumption (oldest first; the last element is the day before the
 * first projected day). Null when nothing was consumed in the window: "no recent usage" is an
 * answer of its own, not a date.
 */
export function fitBurnModel(daily: readonly number[], firstForecastWeekday: number): BurnModel | null {
  const n = daily.length;
  if (n === 0) return null;
  const total = daily.reduce((s, v) => s + Math.max(0, v), 0);
  if (total <= 0) return null;
  const values = daily.map((v) => Math.max(0, v));
  const mean = total / n;
  const weekdayOfIndex = (i: number) => (((firstForecastWeekday - (n - i)) % 7) + 7) % 7;

  const factors = [1, 1, 1, 1, 1, 1, 1];
  if (n >= 14) {
    const sums = [0, 0, 0, 0, 0, 0, 0];
    const counts = [0, 0, 0, 0, 0, 0, 0];
    values.forEach((v, i) => {
      const w = weekdayOfIndex(i);
      sums[w]! += v;
      counts[w]! += 1;
    });
    for (let w = 0; w < 7; w++) {
      const raw = counts[w]! > 0 ? sums[w]! / counts[w]! / mean : 1;
      factors[w] = 1 + SEASONAL_WEIGHT * (raw - 1);
    }
    // Normalise so the factors average 1 (the level keeps its meaning of a mean day).
    const avg = factors.reduce((s, f) => s + f, 0) / 7;
    for (let w = 0; w < 7; w++) factors[w] = factors[w]! / avg;
  }

  // Ordinary least squares of consumption on the day index. The window is whole weeks, so the
  // weekday pattern does not tilt the line; the line's value at the window's end is the level.
  const xMean = (n - 1) / 2;
  let sxy = 0;
  let sxx = 0;
  values.forEach((y, i) => {
    sxy += (i - xMean) * (y - mean);
    sxx += (i - xMean) ** 2;
  });
  const rawSlope = sxx > 0 ? sxy / sxx : 0;
  const lineResiduals = values.map((v, i) => v - (mean + rawSlope * (i - xMean)));
  const sse = lineResiduals.reduce((s, r) => s + r * r, 0);
  const slopeError = n > 2 && sxx > 0 ? Math.sqrt(sse / (n - 2) / sxx) : 0;
  // A trend is used only when it is clearly there (|t| ≥ TREND_T): noise on a steady customer must
  // not be extrapolated for weeks.
  const slope = slopeError === 0 ? rawSlope : Math.abs(rawSlope / slopeError) >= TREND_T ? rawSlope : 0;
  const line = (i: number) => mean + slope * (i - xMean);
  const level = line(n - 1);
  const residuals = values.map((v, i) => v - Math.max(0, line(i)) * factors[weekdayOfIndex(i)]!);
  return {
    method: 'daily_ols_damped_trend_weekday',
    windowDays: n,
    meanPerDay: mean,
    levelPerDay: Math.max(0, level),
    trendPerDay: slope,
    trendError: slope === 0 ? 0 : slopeError,
    weekdayFactors: factors,
    residuals,
    firstForecastWeekday,
  };
}

/** The expected consumption on projected day `h` (0 = the first projected day), before noise. */
export function expectedOnDay(model: BurnModel, h: number, levelShift = 0, trendShift = 0): number {
  // Damped trend: growth on day h is slope·(φ + φ² + … + φ^(h+1)).
  const damped = (DAMPING * (1 - DAMPING ** (h + 1))) / (1 - DAMPING);
  const base = Math.max(0, model.levelPerDay + levelShift + (model.trendPerDay + trendShift) * damped);
  return base * model.weekdayFactors[(model.firstForecastWeekday + h) % 7]!;
}

/** A grant as the forecast sees it: what is left of it and when it goes. */
export interface ForecastGrant {
  readonly id: string;
  readonly remaining: number;
  readonly priority: number;
  readonly effectiveAt: Instant;
  readonly expiresAt: Instant | null;
}

/** Credits known to arrive: an allowance reset (a grant that expires at `expiresAt`). */
export interface ScheduledCredit {
  readonly at: Instant;
  readonly amount: number;
  readonly expiresAt: Instant | null;
  readonly priority: number;
  readonly label: string;
}

/** The auto top-up rule as the forecast simulates it (one purchase of `credits` per firing). */
export interface ForecastAutoTopUp {
  readonly threshold: number;
  readonly credits: number;
  readonly priority: number;
  readonly expiresAfterMs: number | null;
  /** Firings left in the rule's current period and the period after which the count resets. */
  readonly remainingInPeriod: number;
  readonly maxPerPeriod: number;
  readonly periodEnds: readonly Instant[];
}

export interface ForecastInput {
  readonly now: Instant;
  /** Credits consumed per UTC day, oldest first; the last element is the day before today. */
  readonly daily: readonly number[];
  /** Consumed so far today (since the UTC day began); today's projection is what is left of it. */
  readonly consumedToday: number;
  /** Grants with something left, usable now or later. */
  readonly grants: readonly ForecastGrant[];
  /** Outstanding overage (owed, ≥ 0): new credits pay it first. */
  readonly overage: number;
  readonly scheduled: readonly ScheduledCredit[];
  readonly autoTopUp: ForecastAutoTopUp | null;
  readonly horizonDays?: number;
  readonly paths?: number;
  readonly seed?: number;
}

/** What happened on the point-forecast path: when top-ups fire and what expires unused. */
export interface ProjectedEvent {
  readonly at: Instant;
  readonly kind: 'expiry' | 'reset' | 'auto_top_up';
  readonly amount: number;
  readonly ref: string;
}

export type ForecastResult =
  | { readonly status: 'no_recent_usage'; readonly available: number }
  | { readonly status: 'depleted'; readonly available: number; readonly model: BurnModel | null }
  | {
      readonly status: 'forecast';
      readonly available: number;
      readonly model: BurnModel;
      /** Instants at which 10 %, 50 % and 90 % of paths have run out; null: beyond the horizon. */
      readonly p10: Instant | null;
      readonly p50: Instant | null;
      readonly p90: Instant | null;
      readonly horizonEnd: Instant;
      /** The point forecast (no noise): its depletion instant and what it ran into. */
      readonly expectedAt: Instant | null;
      readonly projected: readonly ProjectedEvent[];
      /** Daily expected consumption for the first days (for a chart's band). */
      readonly balancePath: readonly {
        readonly at: Instant;
        readonly p10: number;
        readonly p50: number;
        readonly p90: number;
      }[];
    };

/** A small deterministic PRNG (mulberry32): the same seed, the same interval, on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimGrant {
  id: string;
  remaining: number;
  priority: number;
  effectiveAt: Instant;
  expiresAt: Instant | null;
}

function burnOrder(a: SimGrant, b: SimGrant): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.expiresAt !== b.expiresAt) {
    if (a.expiresAt === null) return 1;
    if (b.expiresAt === null) return -1;
    return a.expiresAt - b.expiresAt;
  }
  if (a.effectiveAt !== b.effectiveAt) return a.effectiveAt - b.effectiveAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** One simulated future: the instant the balance runs out (null: not within the horizon). */
function simulate(
  input: ForecastInput,
  dayRate: (h: number) => number,
  horizonEnd: Instant,
  record: ProjectedEvent[] | null,
  samples: { at: Instant; balance: number }[] | null,
): Instant | null {
  const now = input.now;
  const grants: SimGrant[] = input.grants.map((g) => ({ ...g })).sort(burnOrder);
  let overage = input.overage;
  const pending = [...input.scheduled].sort((a, b) => a.at - b.at);
  let topUpsLeft = input.autoTopUp?.remainingInPeriod ?? 0;
  const periodEnds = [...(input.autoTopUp?.periodEnds ?? [])];
  let arrivals = 0;

  const usableAt = (t: Instant) =>
    grants.filter((g) => g.remaining > 0 && g.effectiveAt <= t && (g.expiresAt === null || t < g.expiresAt));
  const balanceAt = (t: Instant) => usableAt(t).reduce((s, g) => s + g.remaining, 0);
  const addCredits = (amount: number, g: Omit<SimGrant, 'remaining'>) => {
    const paid = Math.min(overage, amount);
    overage -= paid;
    grants.push(extend(g, { remaining: amount - paid }));
    grants.sort(burnOrder);
  };
  const maybeTopUp = (t: Instant) => {
    const rule = input.autoTopUp;
    if (!rule) return;
    while (periodEnds.length > 0 && periodEnds[0]! <= t) {
      periodEnds.shift();
      topUpsLeft = rule.maxPerPeriod;
    }
    // One purchase per check, as the engine buys once per write that crosses the threshold.
    if (topUpsLeft > 0 && balanceAt(t) < rule.threshold) {
      topUpsLeft -= 1;
      arrivals += 1;
      addCredits(rule.credits, {
        id: `auto_top_up#${arrivals}`,
        priority: rule.priority,
        effectiveAt: t,
        expiresAt: rule.expiresAfterMs === null ? null : t + rule.expiresAfterMs,
      });
      record?.push({ at: t, kind: 'auto_top_up', amount: rule.credits, ref: 'auto_top_up' });
    }
  };

  const todayStart = utcDayStart(now);
  let t = now;
  maybeTopUp(t);
  if (balanceAt(t) <= 0) return now;
  let h = -1; // day index; -1 is the rest of today
  while (t < horizonEnd) {
    const dayStart = h < 0 ? todayStart : todayStart + (h + 1) * DAY_MS;
    const dayEnd = dayStart + DAY_MS;
    // Today's expectation is the first projected day's less what today already consumed.
    const rateForDay = h < 0 ? dayRate(0) : dayRate(h + 1);
    const budgetToday = h < 0 ? Math.max(0, rateForDay - input.consumedToday) : rateForDay;
    const perMs = budgetToday / (dayEnd - t);
    while (t < dayEnd) {
      // The next instant something scheduled happens, or the day's end.
      const nextExpiry = grants.reduce(
        (m, g) => (g.remaining > 0 && g.expiresAt !== null && g.expiresAt > t ? Math.min(m, g.expiresAt) : m),
        dayEnd,
      );
      const nextArrival = pending.length > 0 ? Math.min(pending[0]!.at, dayEnd) : dayEnd;
      const nextEffective = grants.reduce(
        (m, g) => (g.remaining > 0 && g.effectiveAt > t ? Math.min(m, g.effectiveAt) : m),
        dayEnd,
      );
      const segmentEnd = Math.max(t + 1, Math.min(nextExpiry, nextArrival, nextEffective, dayEnd));
      let need = perMs * (segmentEnd - t);
      for (const g of usableAt(t)) {
        if (need <= 0) break;
        const take = Math.min(g.remaining, need);
        g.remaining -= take;
        need -= take;
      }
      if (need > 0 && perMs > 0) {
        // Ran out inside the segment: the instant the last credit went.
        return Math.min(segmentEnd, Math.max(t, segmentEnd - need / perMs));
      }
      t = segmentEnd;
      for (const g of grants) {
        if (g.expiresAt !== null && g.expiresAt <= t && g.remaining > 0) {
          record?.push({ at: g.expiresAt, kind: 'expiry', amount: g.remaining, ref: g.id });
          g.remaining = 0;
        }
      }
      while (pending.length > 0 && pending[0]!.at <= t) {
        const credit = pending.shift()!;
        addCredits(credit.amount, {
          id: `${credit.label}@${credit.at}`,
          priority: credit.priority,
          effectiveAt: credit.at,
          expiresAt: credit.expiresAt,
        });
        record?.push({ at: credit.at, kind: 'reset', amount: credit.amount, ref: credit.label });
      }
      maybeTopUp(t);
      if (balanceAt(t) <= 0 && usableLater(grants, t) === 0 && pending.length === 0) {
        if (!input.autoTopUp || topUpsLeft === 0) return t;
      }
    }
    samples?.push({ at: dayEnd, balance: balanceAt(dayEnd) });
    h += 1;
  }
  return null;
}

/** Credits in grants that become effective after `t` (not usable yet, but coming). */
function usableLater(grants: readonly SimGrant[], t: Instant): number {
  return grants.filter((g) => g.remaining > 0 && g.effectiveAt > t).reduce((s, g) => s + g.remaining, 0);
}

/** A standard normal draw (Box–Muller) from the seeded generator. */
function standardNormal(random: () => number): number {
  const u = Math.max(1e-12, random());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

/** How many daily balance points the answer carries for a chart's band. */
const BAND_DAYS = 90;

/**
 * The days the model fits: the window without the days before the first consumption (a customer
 * who started last week has a week of history, not three weeks of zeros and one of use). With no
 * full day of use yet, today's consumption so far, scaled to a whole day, is the history.
 */
export function historyOf(input: Pick<ForecastInput, 'daily' | 'consumedToday' | 'now'>): number[] {
  const first = input.daily.findIndex((v) => v > 0);
  if (first >= 0) return input.daily.slice(first);
  const elapsed = input.now - utcDayStart(input.now);
  // Less than an hour of today is too little to scale up.
  if (input.consumedToday > 0 && elapsed >= DAY_MS / 24) return [(input.consumedToday * DAY_MS) / elapsed];
  return [];
}

/** Forecasts when the available balance runs out. Pure and deterministic (fixed seed). */
export function forecastDepletion(input: ForecastInput): ForecastResult {
  const available = input.grants
    .filter(
      (g) =>
        g.effectiveAt <= input.now && (g.expiresAt === null || input.now < g.expiresAt) && g.remaining > 0,
    )
    .reduce((s, g) => s + g.remaining, 0);
  const model = fitBurnModel(historyOf(input), weekdayOf(input.now));
  if (model === null) return { status: 'no_recent_usage', available };
  if (available <= 0 && input.scheduled.length === 0 && !input.autoTopUp)
    return { status: 'depleted', available, model };

  const horizonEnd = utcDayStart(input.now) + (input.horizonDays ?? DEFAULT_HORIZON_DAYS) * DAY_MS;
  const projected: ProjectedEvent[] = [];
  const expectedAt = simulate(input, (h) => expectedOnDay(model, h), horizonEnd, projected, null);

  const random = seededRandom(input.seed ?? DEFAULT_SEED);
  const residuals = model.residuals;
  const pick = () => residuals[Math.min(residuals.length - 1, Math.floor(random() * residuals.length))]!;
  const paths = input.paths ?? DEFAULT_PATHS;
  const depletions: number[] = [];
  const bandDays: number[][] = Array.from({ length: BAND_DAYS }, () => []);
  for (let p = 0; p < paths; p++) {
    let shift = 0;
    for (let i = 0; i < residuals.length; i++) shift += pick();
    shift /= residuals.length;
    const trendShift = model.trendError * standardNormal(random);
    const draws = new Map<number, number>();
    const rate = (h: number) => {
      let v = draws.get(h);
      if (v === undefined) {
        v = Math.max(0, expectedOnDay(model, h, shift, trendShift) + pick());
        draws.set(h, v);
      }
      return v;
    };
    const samples: { at: Instant; balance: number }[] = [];
    const at = simulate(input, rate, horizonEnd, null, samples);
    depletions.push(at ?? Number.POSITIVE_INFINITY);
    for (let d = 0; d < BAND_DAYS; d++) bandDays[d]!.push(samples[d]?.balance ?? 0);
  }
  depletions.sort((a, b) => a - b);
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  const firstDayEnd = utcDayStart(input.now) + DAY_MS;
  const balancePath = [];
  for (let d = 0; d < BAND_DAYS; d++) {
    const at = firstDayEnd + d * DAY_MS;
    if (at > horizonEnd) break;
    const values = bandDays[d]!.sort((a, b) => a - b);
    balancePath.push({
      at,
      p10: quantile(values, 0.1),
      p50: quantile(values, 0.5),
      p90: quantile(values, 0.9),
    });
    if (quantile(values, 0.9) <= 0) break;
  }
  return {
    status: 'forecast',
    available,
    model,
    p10: finite(quantile(depletions, 0.1)),
    p50: finite(quantile(depletions, 0.5)),
    p90: finite(quantile(depletions, 0.9)),
    horizonEnd,
    expectedAt,
    projected,
    balancePath,
  };
}
