import type { Instant } from './instant.js';
import { instantOfWallTime, wallTime } from './zoned.js';

/** The periods allowances renew on (ISO 8601 durations of one unit). */
export type Period = 'P1D' | 'P1W' | 'P1M' | 'P1Y';
export const PERIODS: readonly Period[] = ['P1D', 'P1W', 'P1M', 'P1Y'];

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

/**
 * The `n`-th anniversary of `start` in `timeZone` (n = 0 is `start` itself). Computed from the
 * start each time, never from the previous anniversary, so month-end clamping does not drift: a
 * start on Jan 31 renews on Feb 28 (29 in leap years), then Mar 31. The local time of day is kept;
 * a local time that a DST jump skips maps to exactly the instant the clocks jumped to (the start's
 * milliseconds are kept only for local times that exist).
 */
export function anniversary(start: Instant, period: Period, n: number, timeZone: string): Instant {
  if (!Number.isInteger(n) || n < 0) throw new RangeError('anniversary index must be a whole number ≥ 0');
  if (n === 0) return start;
  const w = wallTime(start, timeZone);
  const millis = ((start % 1000) + 1000) % 1000;
  let year = w.year;
  let month = w.month;
  let day = w.day;
  if (period === 'P1D' || period === 'P1W') {
    const date = new Date(Date.UTC(w.year, w.month - 1, w.day + n * (period === 'P1D' ? 1 : 7)));
    year = date.getUTCFullYear();
    month = date.getUTCMonth() + 1;
    day = date.getUTCDate();
  } else {
    const months = w.month - 1 + n * (period === 'P1M' ? 1 : 12);
    year = w.year + Math.floor(months / 12);
    month = (months % 12) + 1;
    day = Math.min(w.day, daysInMonth(year, month));
  }
  return instantOfWallTime(
    { year, month, day, hour: w.hour, minute: w.minute, second: w.second, millisecond: millis },
    timeZone,
  );
}

/** One period of a subscription: its index and bounds, end exclusive. */
export interface PeriodBounds {
  readonly index: number;
  readonly start: Instant;
  readonly end: Instant;
}

/**
 * The last period found per (start, period, zone): checks and burns ask for the current period
 * over and over, and computing it means several time-zone conversions. The result is a pure
 * function of the key and the instant, so remembering it changes no answer.
 */
const lastPeriod = new Map<string, PeriodBounds>();
const LAST_PERIOD_LIMIT = 10_000;

/** The period of a subscription that contains `at` (at ≥ start): its index and bounds, end exclusive. */
export function periodContaining(
  start: Instant,
  period: Period,
  at: Instant,
  timeZone: string,
): PeriodBounds {
  const key = `${start}|${period}|${timeZone}`;
  const known = lastPeriod.get(key);
  if (known !== undefined && known.start <= at && at < known.end) return known;
  const found = computePeriodContaining(start, period, at, timeZone);
  if (lastPeriod.size >= LAST_PERIOD_LIMIT) lastPeriod.clear();
  lastPeriod.set(key, found);
  return found;
}

function computePeriodContaining(
  start: Instant,
  period: Period,
  at: Instant,
  timeZone: string,
): PeriodBounds {
  if (at < start) throw new RangeError('the instant is before the first period');
  const approximateLength = { P1D: 86_400_000, P1W: 604_800_000, P1M: 2_629_746_000, P1Y: 31_556_952_000 }[
    period
  ];
  let index = Math.max(0, Math.floor((at - start) / approximateLength) - 1);
  while (anniversary(start, period, index + 1, timeZone) <= at) index += 1;
  while (index > 0 && anniversary(start, period, index, timeZone) > at) index -= 1;
  return {
    index,
    start: anniversary(start, period, index, timeZone),
    end: anniversary(start, period, index + 1, timeZone),
  };
}

/**
 * Every anniversary in (after, until], in order: the renewals a subscription owes after the last
 * one it recorded, e.g. the resets missed while the server was down. Each appears exactly once.
 */
export function anniversariesBetween(
  start: Instant,
  period: Period,
  after: Instant,
  until: Instant,
  timeZone: string,
): { readonly index: number; readonly at: Instant }[] {
  const due: { index: number; at: Instant }[] = [];
  if (until <= after || until < start) return due;
  let index = after < start ? 0 : periodContaining(start, period, after, timeZone).index + 1;
  for (
    let at = anniversary(start, period, index, timeZone);
    at <= until;
    at = anniversary(start, period, ++index, timeZone)
  ) {
    if (at > after) due.push({ index, at });
  }
  return due;
}
