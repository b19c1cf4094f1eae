import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  instantOfWallTime,
  nextWindowStart,
  type WindowUnit,
  windowStart,
  zoneOffset,
} from '../../src/domain/time/zoned.js';

/*
 * Windows aligned in IANA time zones, checked against a reference computed here independently of
 * the code under test: offsets come from Intl's `longOffset` zone names ("GMT+10:30"), and local
 * dates, months and whole hours are derived from them with plain integer arithmetic.
 */

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kolkata', // +5:30, no DST
  'Australia/Lord_Howe', // +10:30 / +11: a 30-minute DST shift
  'America/Sao_Paulo', // DST at midnight until 2019 (midnight skipped)
  'Pacific/Chatham', // +12:45 / +13:45
] as const;
type Zone = (typeof ZONES)[number];

// Modern rules only: before ~1980 some of these zones used LMT offsets with seconds.
const FROM = Date.UTC(1990, 0, 1);
const TO = Date.UTC(2037, 11, 31);

// ---------------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------------

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, number>();

/** Offset from UTC in ms at instant `t`, read from Intl's "GMT+hh:mm" zone name (minute precision). */
function refOffset(t: number, tz: string): number {
  const second = Math.floor(t / 1000) * 1000;
  const cacheKey = `${tz}|${second}`;
  const cached = offsetCache.get(cacheKey);
  if (cached !== undefined) return cached;
  let f = offsetFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
    offsetFormatters.set(tz, f);
  }
  const name = f.formatToParts(new Date(second)).find((p) => p.type === 'timeZoneName')?.value ?? '';
  let offset = 0;
  if (name !== 'GMT') {
    const m = /^GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(name);
    if (!m) throw new Error(`unexpected zone name ${name}`);
    offset =
      (m[1] === '-' ? -1 : 1) * ((Number(m[2]) * 60 + Number(m[3])) * MINUTE + Number(m[4] ?? 0) * 1000);
  }
  if (offsetCache.size > 200_000) offsetCache.clear();
  offsetCache.set(cacheKey, offset);
  return offset;
}

/** Local wall time as if it were UTC (ms). */
const wall = (t: number, tz: string) => t + refOffset(t, tz);
/** Local calendar day number (days since 1970-01-01 in local time). */
const localDay = (t: number, tz: string) => Math.floor(wall(t, tz) / DAY);
/** Local calendar month number (year × 12 + month index). */
const localMonth = (t: number, tz: string) => {
  const d = new Date(wall(t, tz));
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
};
const mod = (a: number, m: number) => ((a % m) + m) % m;
const isTransition = (t: number, tz: string) => refOffset(t - 1, tz) !== refOffset(t, tz);

interface Transition {
  readonly at: number;
  readonly before: number;
  readonly after: number;
}

/** Every offset change of `tz` in [from, to): weekly scan, then bisection to the millisecond. */
function transitionsOf(tz: string, from: number, to: number): Transition[] {
  const found: Transition[] = [];
  let previous = refOffset(from, tz);
  for (let t = from + 7 * DAY; t < to; t += 7 * DAY) {
    const current = refOffset(t, tz);
    if (current !== previous) {
      let low = t - 7 * DAY; // offset === previous
      let high = t; // offset === current
      while (high - low > 1) {
        const mid = Math.floor((low + high) / 2);
        if (refOffset(mid, tz) === previous) low = mid;
        else high = mid;
      }
      found.push({ at: high, before: previous, after: current });
      previous = current;
    }
  }
  return found;
}

const TRANSITIONS = new Map<Zone, Transition[]>(ZONES.map((tz) => [tz, transitionsOf(tz, FROM, TO)]));

/**
 * Reference hour boundaries: instants at a whole local hour, plus offset changes that move the
 * hour grid (30- or 45-minute shifts). A whole-hour DST shift keeps windows real hours, so a
 * repeated hour is two windows and a skipped one is none.
 */
function isHourBoundary(t: number, tz: string): boolean {
  if (mod(wall(t, tz), HOUR) === 0) return true;
  return isTransition(t, tz) && mod(refOffset(t, tz) - refOffset(t - 1, tz), HOUR) !== 0;
}

function refHourStart(i: number, tz: string): number {
  // Offsets here are whole minutes and change on whole minutes, so boundaries are whole minutes.
  let t = Math.floor(i / MINUTE) * MINUTE;
  while (!isHourBoundary(t, tz)) t -= MINUTE;
  return t;
}

function refNextHourStart(start: number, tz: string): number {
  let t = start + MINUTE;
  while (!isHourBoundary(t, tz)) t += MINUTE;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const anyInstant = fc.integer({ min: FROM, max: TO });

/** An instant in `tz`: anywhere, within days of an offset change, or within minutes/ms of one. */
function instantIn(tz: Zone): fc.Arbitrary<number> {
  const transitions = TRANSITIONS.get(tz) ?? [];
  if (transitions.length === 0) return anyInstant;
  const at = fc.constantFrom(...transitions.map((x) => x.at));
  return fc.oneof(
    anyInstant,
    fc.tuple(at, fc.integer({ min: -3 * DAY, max: 3 * DAY })).map(([a, d]) => a + d),
    fc.tuple(at, fc.integer({ min: -150, max: 150 })).map(([a, m]) => a + m * MINUTE),
    fc.tuple(at, fc.integer({ min: -2, max: 2 })).map(([a, ms]) => a + ms),
  );
}

const zoneAndInstant = fc.constantFrom(...ZONES).chain((tz) => instantIn(tz).map((i) => ({ tz, i })));

const UNITS: readonly WindowUnit[] = ['hour', 'day', 'month'];
const iso = (t: number) => new Date(t).toISOString();

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('zoned windows: reference sanity', () => {
  it('finds the DST changes the reference relies on', () => {
    const berlin2026 = (TRANSITIONS.get('Europe/Berlin') ?? []).filter(
      (x) => x.at >= Date.UTC(2026, 0, 1) && x.at < Date.UTC(2027, 0, 1),
    );
    expect(berlin2026.map((x) => iso(x.at))).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-10-25T01:00:00.000Z',
    ]);
    expect(TRANSITIONS.get('UTC')).toEqual([]);
    expect(TRANSITIONS.get('Asia/Kolkata')).toEqual([]);
    const lordHowe = TRANSITIONS.get('Australia/Lord_Howe') ?? [];
    expect(lordHowe.filter((x) => Math.abs(x.after - x.before) === 30 * MINUTE).length).toBeGreaterThan(50);
    // zoneOffset agrees with the reference (on whole seconds it documents).
    fc.assert(
      fc.property(zoneAndInstant, ({ tz, i }) => {
        expect(zoneOffset(i, tz)).toBe(refOffset(i, tz));
      }),
      { numRuns: 500 },
    );
  });
});

describe('windowStart / nextWindowStart', () => {
  it('contain the instant: windowStart(i) ≤ i < nextWindowStart(windowStart(i)), for every unit and zone', () => {
    fc.assert(
      fc.property(zoneAndInstant, fc.constantFrom(...UNITS), ({ tz, i }, unit) => {
        const start = windowStart(i, unit, tz);
        const next = nextWindowStart(start, unit, tz);
        expect(start, `${tz} ${unit} ${iso(i)}`).toBeLessThanOrEqual(i);
        expect(next, `${tz} ${unit} ${iso(i)} window ${iso(start)}`).toBeGreaterThan(i);
      }),
      { numRuns: 1500 },
    );
  });

  it('tile: the next window of one starts where the following one starts, without gaps or overlaps', () => {
    fc.assert(
      fc.property(zoneAndInstant, fc.constantFrom(...UNITS), ({ tz, i }, unit) => {
        const start = windowStart(i, unit, tz);
        const next = nextWindowStart(start, unit, tz);
        const label = `${tz} ${unit} ${iso(i)}: [${iso(start)}, ${iso(next)})`;
        expect(windowStart(start, unit, tz), label).toBe(start);
        expect(windowStart(next, unit, tz), label).toBe(next);
        expect(windowStart(next - 1, unit, tz), label).toBe(start);
        expect(windowStart(start - 1, unit, tz), label).toBeLessThan(start);
        expect(nextWindowStart(windowStart(start - 1, unit, tz), unit, tz), label).toBe(start);
      }),
      { numRuns: 1500 },
    );
  });

  it('walks a whole year of consecutive windows without gaps in every zone', () => {
    for (const tz of ZONES) {
      for (const unit of ['day', 'month'] as const) {
        let start = windowStart(Date.UTC(2026, 0, 1), unit, tz);
        const end = Date.UTC(2027, 1, 1);
        while (start < end) {
          const next = nextWindowStart(start, unit, tz);
          expect(next).toBeGreaterThan(start);
          expect(windowStart(next - 1, unit, tz), `${tz} ${unit} ${iso(start)}`).toBe(start);
          start = next;
        }
      }
    }
  });

  it('day windows run from the first instant of a local date to the first of the next (local midnight, or the instant after a skipped midnight)', () => {
    fc.assert(
      fc.property(zoneAndInstant, ({ tz, i }) => {
        const start = windowStart(i, 'day', tz);
        const next = nextWindowStart(start, 'day', tz);
        const day = localDay(i, tz);
        const label = `${tz} ${iso(i)}: [${iso(start)}, ${iso(next)})`;
        expect(localDay(start, tz), label).toBe(day);
        expect(localDay(start - 1, tz), label).toBe(day - 1);
        expect(localDay(next - 1, tz), label).toBe(day);
        expect(localDay(next, tz), label).toBe(day + 1);
        // At local midnight, unless midnight was skipped (then the window starts at the jump).
        if (!isTransition(start, tz)) expect(mod(wall(start, tz), DAY), label).toBe(0);
        const length = next - start;
        const changes = (TRANSITIONS.get(tz) ?? []).filter((x) => x.at > start && x.at < next);
        if (changes.length === 0 && mod(wall(start, tz), DAY) === 0) {
          expect(length, label).toBe(DAY);
        } else {
          expect([23 * HOUR, 23.5 * HOUR, 24.5 * HOUR, 25 * HOUR], label).toContain(length);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('month windows start on local day 1 and end on the next local day 1', () => {
    fc.assert(
      fc.property(zoneAndInstant, ({ tz, i }) => {
        const start = windowStart(i, 'month', tz);
        const next = nextWindowStart(start, 'month', tz);
        const month = localMonth(i, tz);
        const label = `${tz} ${iso(i)}: [${iso(start)}, ${iso(next)})`;
        expect(localMonth(start, tz), label).toBe(month);
        expect(localMonth(start - 1, tz), label).toBe(month - 1);
        expect(localMonth(next - 1, tz), label).toBe(month);
        expect(localMonth(next, tz), label).toBe(month + 1);
        expect(new Date(wall(start, tz)).getUTCDate(), label).toBe(1);
        if (!isTransition(start, tz)) expect(mod(wall(start, tz), DAY), label).toBe(0);
        const days = Math.round((next - start) / DAY);
        expect([28, 29, 30, 31], label).toContain(days);
      }),
      { numRuns: 800 },
    );
  });

  it('hour windows are real hours at whole local hours, split only where an offset change moves the hour grid', () => {
    fc.assert(
      fc.property(zoneAndInstant, ({ tz, i }) => {
        const start = windowStart(i, 'hour', tz);
        const next = nextWindowStart(start, 'hour', tz);
        const label = `${tz} ${iso(i)}: got [${iso(start)}, ${iso(next)})`;
        expect(start, label).toBe(refHourStart(i, tz));
        expect(next, label).toBe(refNextHourStart(start, tz));
        let gridMoves = false;
        for (let t = start; t <= next; t += MINUTE) {
          if (isTransition(t, tz) && mod(refOffset(t, tz) - refOffset(t - 1, tz), HOUR) !== 0)
            gridMoves = true;
        }
        if (!gridMoves) expect(next - start, label).toBe(HOUR);
      }),
      { numRuns: 600 },
    );
  });

  it('Europe/Berlin 2026-03-29 is a 23 h day and 2026-10-25 a 25 h day, each of 23/25 real hour windows', () => {
    const tz = 'Europe/Berlin';
    const spring = windowStart(Date.parse('2026-03-29T12:00:00Z'), 'day', tz);
    expect(iso(spring)).toBe('2026-03-28T23:00:00.000Z');
    expect(iso(nextWindowStart(spring, 'day', tz))).toBe('2026-03-29T22:00:00.000Z');
    const autumn = windowStart(Date.parse('2026-10-25T12:00:00Z'), 'day', tz);
    expect(iso(autumn)).toBe('2026-10-24T22:00:00.000Z');
    expect(iso(nextWindowStart(autumn, 'day', tz))).toBe('2026-10-25T23:00:00.000Z');
    // Days either side are 24 h.
    expect(spring - windowStart(spring - 1, 'day', tz)).toBe(DAY);
    expect(
      nextWindowStart(nextWindowStart(autumn, 'day', tz), 'day', tz) - nextWindowStart(autumn, 'day', tz),
    ).toBe(DAY);
    for (const [dayStart, hours] of [
      [spring, 23],
      [autumn, 25],
    ] as const) {
      const dayEnd = nextWindowStart(dayStart, 'day', tz);
      const hourWindows: number[] = [];
      for (let h = dayStart; h < dayEnd; h = nextWindowStart(h, 'hour', tz)) hourWindows.push(h);
      expect(hourWindows).toHaveLength(hours);
      expect(hourWindows).toEqual(hourWindows.map((_, k) => dayStart + k * HOUR));
    }
    // The repeated 02:00–03:00 is two windows: 00:00Z (CEST) and 01:00Z (CET).
    expect(iso(windowStart(Date.parse('2026-10-25T00:30:00Z'), 'hour', tz))).toBe('2026-10-25T00:00:00.000Z');
    expect(iso(windowStart(Date.parse('2026-10-25T01:30:00Z'), 'hour', tz))).toBe('2026-10-25T01:00:00.000Z');
    // The month holding the spring change is 31 days minus one hour.
    const march = windowStart(Date.parse('2026-03-15T00:00:00Z'), 'month', tz);
    expect(iso(march)).toBe('2026-02-28T23:00:00.000Z');
    expect(iso(nextWindowStart(march, 'month', tz))).toBe('2026-03-31T22:00:00.000Z');
  });

  it('other known DST days: New York, Lord Howe (±30 min), Chatham, São Paulo (skipped midnight), Kolkata', () => {
    const dayOf = (isoText: string, tz: string) => {
      const start = windowStart(Date.parse(isoText), 'day', tz);
      return { start: iso(start), hours: (nextWindowStart(start, 'day', tz) - start) / HOUR };
    };
    expect(dayOf('2026-03-08T17:00:00Z', 'America/New_York')).toEqual({
      start: '2026-03-08T05:00:00.000Z',
      hours: 23,
    });
    expect(dayOf('2026-11-01T17:00:00Z', 'America/New_York')).toEqual({
      start: '2026-11-01T04:00:00.000Z',
      hours: 25,
    });
    // Lord Howe: 2026-04-05 02:00 (+11) → 01:30 (+10:30); 2026-10-04 02:00 (+10:30) → 02:30 (+11).
    expect(dayOf('2026-04-05T01:00:00Z', 'Australia/Lord_Howe')).toEqual({
      start: '2026-04-04T13:00:00.000Z',
      hours: 24.5,
    });
    expect(dayOf('2026-10-04T01:00:00Z', 'Australia/Lord_Howe')).toEqual({
      start: '2026-10-03T13:30:00.000Z',
      hours: 23.5,
    });
    expect(dayOf('2026-04-05T01:00:00Z', 'Pacific/Chatham')).toEqual({
      start: '2026-04-04T10:15:00.000Z',
      hours: 25,
    });
    expect(dayOf('2026-09-27T01:00:00Z', 'Pacific/Chatham')).toEqual({
      start: '2026-09-26T11:15:00.000Z',
      hours: 23,
    });
    // São Paulo 2018-11-04: clocks jumped from 00:00 to 01:00, so the day starts at 01:00 (−02).
    expect(dayOf('2018-11-04T12:00:00Z', 'America/Sao_Paulo')).toEqual({
      start: '2018-11-04T03:00:00.000Z',
      hours: 23,
    });
    // São Paulo 2019-02-16: 23:00–24:00 happened twice (00:00 −02 → 23:00 −03).
    expect(dayOf('2019-02-16T12:00:00Z', 'America/Sao_Paulo')).toEqual({
      start: '2019-02-16T02:00:00.000Z',
      hours: 25,
    });
    expect(dayOf('2026-06-01T12:00:00Z', 'Asia/Kolkata')).toEqual({
      start: '2026-05-31T18:30:00.000Z',
      hours: 24,
    });
    // Kolkata's hours start at :30 UTC and are real hours.
    const h = windowStart(Date.parse('2026-06-01T12:10:00Z'), 'hour', 'Asia/Kolkata');
    expect(iso(h)).toBe('2026-06-01T11:30:00.000Z');
    expect(nextWindowStart(h, 'hour', 'Asia/Kolkata') - h).toBe(HOUR);
  });

  it('Lord Howe hour windows across the 30-minute changes tile (no window overlaps another)', () => {
    const tz = 'Australia/Lord_Howe';
    const walk = (from: string, to: string) => {
      const windows: string[] = [];
      for (let s = windowStart(Date.parse(from), 'hour', tz); s < Date.parse(to); ) {
        const n = nextWindowStart(s, 'hour', tz);
        windows.push(`${iso(s).slice(11, 16)}-${iso(n).slice(11, 16)}`);
        s = n;
      }
      return windows;
    };
    // Fall back at 15:00Z: 01:00–02:00 (+11), then 01:30–02:00 (+10:30), then 02:00–03:00 (+10:30).
    expect(walk('2026-04-04T13:00:00Z', '2026-04-04T16:30:00Z')).toEqual([
      '13:00-14:00',
      '14:00-15:00',
      '15:00-15:30',
      '15:30-16:30',
    ]);
    // Spring forward at 15:30Z: 01:00–02:00 (+10:30), then 02:30–03:00 (+11), then 03:00–04:00.
    expect(walk('2026-10-03T14:30:00Z', '2026-10-03T17:00:00Z')).toEqual([
      '14:30-15:30',
      '15:30-16:00',
      '16:00-17:00',
    ]);
    // Every instant of those hours lies inside the window windowStart gives it.
    for (
      let t = Date.parse('2026-04-04T13:00:00Z');
      t < Date.parse('2026-04-04T17:00:00Z');
      t += 5 * MINUTE
    ) {
      const s = windowStart(t, 'hour', tz);
      expect(nextWindowStart(s, 'hour', tz), iso(t)).toBeGreaterThan(t);
    }
  });
});

describe('instantOfWallTime', () => {
  /** A wall time in `tz`: random, or within two hours of an offset change (gaps and overlaps). */
  const wallIn = (tz: Zone): fc.Arbitrary<number> => {
    const transitions = TRANSITIONS.get(tz) ?? [];
    const anyWall = fc
      .tuple(anyInstant, fc.integer({ min: 0, max: 24 * 60 - 1 }))
      .map(([t, minutes]) => Math.floor(t / DAY) * DAY + minutes * MINUTE);
    if (transitions.length === 0) return anyWall;
    return fc.oneof(
      anyWall,
      fc
        .tuple(fc.constantFrom(...transitions), fc.integer({ min: -120, max: 120 }))
        .map(([x, m]) => x.at + x.before + m * MINUTE),
    );
  };

  it('is the first instant whose wall time is at or after the given one (exact when it exists, the jump when skipped, the earlier of a repeated time)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES).chain((tz) => wallIn(tz).map((naive) => ({ tz, naive }))),
        ({ tz, naive }) => {
          const d = new Date(naive);
          const r = instantOfWallTime(
            {
              year: d.getUTCFullYear(),
              month: d.getUTCMonth() + 1,
              day: d.getUTCDate(),
              hour: d.getUTCHours(),
              minute: d.getUTCMinutes(),
            },
            tz,
          );
          const label = `${tz} ${iso(naive).slice(0, 16)} → ${iso(r)}`;
          expect(wall(r, tz), label).toBeGreaterThanOrEqual(naive);
          expect(wall(r - 1000, tz), label).toBeLessThan(naive);
          if (wall(r, tz) !== naive) {
            // Skipped: r is the instant the clocks jumped, and nothing maps to `naive`.
            expect(isTransition(r, tz), label).toBe(true);
            for (const o of [refOffset(r - DAY, tz), refOffset(r + DAY, tz)]) {
              expect(wall(naive - o, tz), label).not.toBe(naive);
            }
          } else {
            // The earliest instant showing that wall time.
            for (const o of [refOffset(r - DAY, tz), refOffset(r + DAY, tz)]) {
              const other = naive - o;
              if (other < r) expect(wall(other, tz), label).not.toBe(naive);
            }
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('maps known gap and overlap times', () => {
    // Europe/Berlin 2026-03-29 02:30 does not exist → 03:00 CEST = 01:00Z.
    expect(
      iso(instantOfWallTime({ year: 2026, month: 3, day: 29, hour: 2, minute: 30 }, 'Europe/Berlin')),
    ).toBe('2026-03-29T01:00:00.000Z');
    // Europe/Berlin 2026-10-25 02:30 happens twice → the first, 02:30 CEST = 00:30Z.
    expect(
      iso(instantOfWallTime({ year: 2026, month: 10, day: 25, hour: 2, minute: 30 }, 'Europe/Berlin')),
    ).toBe('2026-10-25T00:30:00.000Z');
    // Lord Howe 2026-10-04 02:15 does not exist → 02:30 (+11) = 15:30Z the day before.
    expect(
      iso(instantOfWallTime({ year: 2026, month: 10, day: 4, hour: 2, minute: 15 }, 'Australia/Lord_Howe')),
    ).toBe('2026-10-03T15:30:00.000Z');
    // A skipped time with milliseconds is still exactly the jump; an existing one keeps them.
    expect(
      iso(
        instantOfWallTime(
          { year: 2026, month: 3, day: 29, hour: 2, minute: 30, millisecond: 500 },
          'Europe/Berlin',
        ),
      ),
    ).toBe('2026-03-29T01:00:00.000Z');
    expect(
      iso(
        instantOfWallTime(
          { year: 2026, month: 3, day: 29, hour: 3, minute: 0, millisecond: 500 },
          'Europe/Berlin',
        ),
      ),
    ).toBe('2026-03-29T01:00:00.500Z');
    // São Paulo 2018-11-04 00:00 does not exist → 01:00 (−02) = 03:00Z.
    expect(iso(instantOfWallTime({ year: 2018, month: 11, day: 4 }, 'America/Sao_Paulo'))).toBe(
      '2018-11-04T03:00:00.000Z',
    );
  });
});
