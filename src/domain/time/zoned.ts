import type { Instant } from './instant.js';

/** Calendar windows usage is reported in. */
export type WindowUnit = 'hour' | 'day' | 'month';

/** A local date and time of day in some zone (month 1–12). */
export interface WallTime {
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Whether `timeZone` is an IANA zone name this runtime knows (e.g. `Europe/Berlin`, `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock time at `instant` in `timeZone` (seconds precision; milliseconds are kept by callers). */
export function wallTime(instant: Instant, timeZone: string): WallTime {
  const parts = formatterFor(timeZone).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
  };
}

/** Offset of `timeZone` from UTC at `instant`, in ms (positive east of Greenwich). */
export function zoneOffset(instant: Instant, timeZone: string): number {
  const w = wallTime(instant, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - (instant - (((instant % 1000) + 1000) % 1000));
}

/**
 * The first instant whose wall time in `timeZone` is at or after the given wall time. Exact for
 * times that exist; a wall time skipped by a DST jump maps to the instant the clocks jumped to.
 */
export function instantOfWallTime(
  wall: {
    year: number;
    month: number;
    day: number;
    hour?: number;
    minute?: number;
    second?: number;
    millisecond?: number;
  },
  timeZone: string,
): Instant {
  // The milliseconds apply only to a wall time that exists: a skipped one is the jump itself,
  // whatever its fraction of a second (02:30:00.500 in a 02:00→03:00 gap is the 03:00:00.000 jump).
  const millis = wall.millisecond ?? 0;
  const naive = Date.UTC(
    wall.year,
    wall.month - 1,
    wall.day,
    wall.hour ?? 0,
    wall.minute ?? 0,
    wall.second ?? 0,
  );
  // Try the offsets in force around that time; keep the earliest candidate that maps back exactly.
  const candidates = new Set([
    zoneOffset(naive - 86_400_000, timeZone),
    zoneOffset(naive, timeZone),
    zoneOffset(naive + 86_400_000, timeZone),
  ]);
  let best: Instant | null = null;
  for (const offset of candidates) {
    const instant = naive - offset;
    if (instant + zoneOffset(instant, timeZone) === naive && (best === null || instant < best))
      best = instant;
  }
  if (best !== null) return best + millis;
  // In a DST gap: the wall time does not exist; the clocks jumped past it at the transition.
  let low = naive - 86_400_000 * 2;
  let high = naive + 86_400_000 * 2;
  while (high - low > 1000) {
    const mid = Math.floor((low + high) / 2 / 1000) * 1000;
    if (mid + zoneOffset(mid, timeZone) < naive) low = mid;
    else high = mid;
  }
  return high;
}

/** Start of the window (hour, local calendar day or local calendar month) that contains `instant`. */
export function windowStart(instant: Instant, unit: WindowUnit, timeZone: string): Instant {
  if (unit === 'hour') {
    // Real hours: a repeated local hour (DST fall-back) is two windows, never one of 2 h.
    const offset = zoneOffset(instant, timeZone);
    const start = Math.floor((instant + offset) / 3_600_000) * 3_600_000 - offset;
    // A whole-hour offset change keeps the hour grid; a 30- or 45-minute change inside this hour
    // moves it, and the window then starts at the change (found by bisection on whole seconds).
    if ((zoneOffset(start, timeZone) - offset) % 3_600_000 === 0) return start;
    let low = start;
    let high = Math.floor(instant / 1000) * 1000;
    while (high - low > 1000) {
      const mid = Math.floor((low + high) / 2000) * 1000;
      if (zoneOffset(mid, timeZone) === offset) high = mid;
      else low = mid;
    }
    return high;
  }
  const w = wallTime(instant, timeZone);
  return instantOfWallTime({ year: w.year, month: w.month, day: unit === 'day' ? w.day : 1 }, timeZone);
}

/** Start of the window after the one starting at `start` (23 or 25 hours long on DST days). */
export function nextWindowStart(start: Instant, unit: WindowUnit, timeZone: string): Instant {
  if (unit === 'hour') return windowStart(start + 3_600_000, 'hour', timeZone);
  const w = wallTime(start + 3_600_000 * 3, timeZone);
  if (unit === 'day') {
    const next = new Date(Date.UTC(w.year, w.month - 1, w.day + 1));
    return instantOfWallTime(
      { year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() },
      timeZone,
    );
  }
  const next = new Date(Date.UTC(w.year, w.month, 1));
  return instantOfWallTime({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: 1 }, timeZone);
}
