import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  anniversariesBetween,
  anniversary,
  PERIODS,
  periodContaining,
} from '../../src/domain/time/periods.js';

const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
];

/** Local wall time of an instant, read with Intl (independent of the code under test). */
function local(instant: number, timeZone: string) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(instant));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
  };
}

const startArb = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) });

describe('allowance periods', () => {
  it('anniversaries strictly increase and never skip or repeat', () => {
    fc.assert(
      fc.property(startArb, fc.constantFrom(...PERIODS), fc.constantFrom(...ZONES), (start, period, zone) => {
        let previous = start;
        for (let n = 1; n <= 26; n++) {
          const at = anniversary(start, period, n, zone);
          expect(at).toBeGreaterThan(previous);
          const containing = periodContaining(start, period, at, zone);
          expect([containing.index, containing.start]).toEqual([n, at]);
          expect(periodContaining(start, period, at - 1, zone).index).toBe(n - 1);
          previous = at;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('monthly and yearly renewals clamp to the month end and come back (Jan 31 → Feb 28/29 → Mar 31)', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.constantFrom('P1M' as const, 'P1Y' as const),
        fc.constantFrom(...ZONES),
        (start, period, zone) => {
          const first = local(start, zone);
          for (let n = 1; n <= 24; n++) {
            const at = local(anniversary(start, period, n, zone), zone);
            const months = first.month - 1 + n * (period === 'P1M' ? 1 : 12);
            const year = first.year + Math.floor(months / 12);
            const month = (months % 12) + 1;
            const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
            // The date is exact unless the local time fell into a DST gap, which moves it forward by under a day.
            const sameDate =
              at.year === year && at.month === month && at.day === Math.min(first.day, lastDay);
            const gap = at.hour !== first.hour || at.minute !== first.minute;
            expect(sameDate || gap).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
    const jan31 = Date.parse('2026-01-31T09:00:00Z');
    expect([1, 2, 3].map((n) => new Date(anniversary(jan31, 'P1M', n, 'UTC')).toISOString())).toEqual([
      '2026-02-28T09:00:00.000Z',
      '2026-03-31T09:00:00.000Z',
      '2026-04-30T09:00:00.000Z',
    ]);
    expect(new Date(anniversary(Date.parse('2027-01-31T09:00:00Z'), 'P1M', 1, 'UTC')).toISOString()).toBe(
      '2027-02-28T09:00:00.000Z',
    );
    expect(new Date(anniversary(Date.parse('2028-01-31T09:00:00Z'), 'P1M', 1, 'UTC')).toISOString()).toBe(
      '2028-02-29T09:00:00.000Z',
    );
  });

  it('keeps the local time of day across DST, and a skipped local time renews when the clocks jump', () => {
    // 02:30 in Berlin does not exist on 2026-03-29: that renewal happens at 03:00 local (01:00Z).
    const start = Date.parse('2026-03-27T01:30:00Z'); // 02:30 CET
    const days = [1, 2, 3].map((n) => new Date(anniversary(start, 'P1D', n, 'Europe/Berlin')).toISOString());
    expect(days).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    // A monthly renewal at 00:30 New York time stays at 00:30 local through the switch to daylight time.
    const ny = Date.parse('2026-02-15T05:30:00Z');
    expect(local(anniversary(ny, 'P1M', 1, 'America/New_York'), 'America/New_York')).toMatchObject({
      day: 15,
      hour: 0,
      minute: 30,
    });
  });

  it("renews a skipped local time at exactly the jump, whatever the start's milliseconds", () => {
    // 02:30:00.500 EST; on 2026-03-08 New York jumps from 02:00 to 03:00 EDT (07:00Z): the renewal
    // is the jump itself, not the jump plus half a second; the next day keeps the milliseconds.
    const start = Date.parse('2026-03-07T07:30:00.500Z');
    const days = [1, 2].map((n) => new Date(anniversary(start, 'P1D', n, 'America/New_York')).toISOString());
    expect(days).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.500Z']);
    expect(
      periodContaining(start, 'P1D', Date.parse('2026-03-08T07:00:00.000Z'), 'America/New_York').index,
    ).toBe(1);
    expect(
      periodContaining(start, 'P1D', Date.parse('2026-03-08T06:59:59.999Z'), 'America/New_York').index,
    ).toBe(0);
  });

  it('lists each renewal owed after downtime exactly once (catch-up)', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.constantFrom(...PERIODS),
        fc.constantFrom(...ZONES),
        fc.integer({ min: 0, max: 5 }),
        (start, period, zone, down) => {
          const last = anniversary(start, period, 2, zone); // the last renewal recorded before the outage
          const now = anniversary(start, period, 2 + down, zone) + 1;
          const owed = anniversariesBetween(start, period, last, now, zone);
          expect(owed.map((o) => o.index)).toEqual(Array.from({ length: down }, (_, i) => 3 + i));
          // Recording them and asking again owes nothing more.
          expect(anniversariesBetween(start, period, owed.at(-1)?.at ?? last, now, zone)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
