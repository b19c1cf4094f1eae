import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  expectedOnDay,
  type ForecastInput,
  fitBurnModel,
  forecastDepletion,
  weekdayOf,
} from '../../src/domain/forecast/forecast.js';

// A Monday, midnight UTC.
const NOW = Date.UTC(2030, 1, 4);
const base = (over: Partial<ForecastInput>): ForecastInput => ({
  now: NOW,
  daily: Array.from({ length: 28 }, () => 100),
  consumedToday: 0,
  grants: [{ id: 'g', remaining: 1050, priority: 10, effectiveAt: 0, expiresAt: null }],
  overage: 0,
  scheduled: [],
  autoTopUp: null,
  ...over,
});
const daysFromNow = (at: number | null) => (at === null ? null : (at - NOW) / DAY_MS);

describe('depletion forecast', () => {
  it('knows its weekdays (1970-01-01 was a Thursday; the test instant is a Monday)', () => {
    expect(weekdayOf(0)).toBe(4);
    expect(weekdayOf(NOW)).toBe(1);
  });

  it('a steady burn runs out at balance ÷ rate, with no spread when nothing varies', () => {
    const r = forecastDepletion(base({}));
    expect(r.status).toBe('forecast');
    if (r.status !== 'forecast') return;
    expect(daysFromNow(r.p50)).toBeCloseTo(10.5, 6);
    expect(daysFromNow(r.p10)).toBeCloseTo(10.5, 6);
    expect(daysFromNow(r.expectedAt)).toBeCloseTo(10.5, 6);
    expect(r.model.trendPerDay).toBe(0);
  });

  it('what today already consumed counts against today', () => {
    const r = forecastDepletion(base({ now: NOW + DAY_MS / 2, consumedToday: 100 }));
    // Today's 100 are spent: the 1050 left last 10.5 days from tomorrow's midnight.
    if (r.status !== 'forecast') throw new Error(r.status);
    expect((r.p50! - NOW) / DAY_MS).toBeCloseTo(11.5, 6);
  });

  it('no consumption in the window is "no recent usage", not a date', () => {
    const r = forecastDepletion(base({ daily: Array.from({ length: 28 }, () => 0) }));
    expect(r.status).toBe('no_recent_usage');
  });

  it('a balance already at zero is depleted', () => {
    expect(forecastDepletion(base({ grants: [] })).status).toBe('depleted');
  });

  it('a scheduled expiry takes its unburnt remainder away first', () => {
    // 500 expire after 2 days: 200 of them are burnt by then, 300 leave; 1050 − 500 = 550 remain,
    // burnt from day 2 on: 550 ÷ 100 = 5.5 days → 7.5 days in all.
    const r = forecastDepletion(
      base({
        grants: [
          { id: 'promo', remaining: 500, priority: 10, effectiveAt: 0, expiresAt: NOW + 2 * DAY_MS },
          { id: 'paid', remaining: 550, priority: 10, effectiveAt: 0, expiresAt: null },
        ],
      }),
    );
    if (r.status !== 'forecast') throw new Error(r.status);
    expect(daysFromNow(r.p50)).toBeCloseTo(7.5, 6);
    expect(r.projected).toContainEqual({ at: NOW + 2 * DAY_MS, kind: 'expiry', amount: 300, ref: 'promo' });
  });

  it('allowance resets and auto top-ups push depletion out', () => {
    const reset = forecastDepletion(
      base({
        scheduled: [{ at: NOW + 5 * DAY_MS, amount: 500, expiresAt: null, priority: 5, label: 'sub' }],
      }),
    );
    if (reset.status !== 'forecast') throw new Error(reset.status);
    expect(daysFromNow(reset.p50)).toBeCloseTo(15.5, 6);

    const topUp = forecastDepletion(
      base({
        autoTopUp: {
          threshold: 200,
          credits: 1000,
          priority: 10,
          expiresAfterMs: null,
          remainingInPeriod: 1,
          maxPerPeriod: 1,
          periodEnds: [],
        },
      }),
    );
    if (topUp.status !== 'forecast') throw new Error(topUp.status);
    expect(daysFromNow(topUp.p50)).toBeCloseTo(20.5, 6);
    expect(topUp.projected.filter((e) => e.kind === 'auto_top_up')).toHaveLength(1);
  });

  it('weekday seasonality: weekends burn less', () => {
    // Weekdays 140, weekends 0 (window ends on Sunday; index 0 is a Monday).
    const daily = Array.from({ length: 28 }, (_, i) => (i % 7 === 5 || i % 7 === 6 ? 0 : 140));
    const model = fitBurnModel(daily, weekdayOf(NOW))!;
    expect(model.weekdayFactors[1]!).toBeGreaterThan(1);
    expect(model.weekdayFactors[0]!).toBeLessThan(1);
    // A week of projection still sums to the week's consumption (700).
    const week = Array.from({ length: 7 }, (_, h) => expectedOnDay(model, h)).reduce((s, v) => s + v, 0);
    expect(week).toBeCloseTo(700, 6);
  });

  it('a clear growth trend is projected; noise without trend is not', () => {
    const growing = fitBurnModel(
      Array.from({ length: 28 }, (_, i) => 50 + 5 * i),
      weekdayOf(NOW),
    )!;
    expect(growing.trendPerDay).toBeCloseTo(5, 6);
    expect(expectedOnDay(growing, 10)).toBeGreaterThan(expectedOnDay(growing, 0));
    const flat = fitBurnModel(
      Array.from({ length: 28 }, (_, i) => (i % 2 === 0 ? 90 : 110)),
      weekdayOf(NOW),
    )!;
    expect(flat.trendPerDay).toBe(0);
  });

  it('noisy consumption gives an ordered interval, identical on every run (fixed seed)', () => {
    const daily = Array.from({ length: 28 }, (_, i) => (i % 5 === 0 ? 400 : 40));
    const a = forecastDepletion(base({ daily, grants: [{ ...base({}).grants[0]!, remaining: 3000 }] }));
    const b = forecastDepletion(base({ daily, grants: [{ ...base({}).grants[0]!, remaining: 3000 }] }));
    expect(a).toEqual(b);
    if (a.status !== 'forecast') throw new Error(a.status);
    expect(a.p10!).toBeLessThan(a.p90!);
    expect(a.p10!).toBeLessThanOrEqual(a.p50!);
    expect(a.p50!).toBeLessThanOrEqual(a.p90!);
    expect(a.balancePath[0]!.p10).toBeLessThanOrEqual(a.balancePath[0]!.p90);
  });

  it('beyond the horizon is null, not a far date', () => {
    const r = forecastDepletion(base({ daily: Array.from({ length: 28 }, () => 1), horizonDays: 30 }));
    if (r.status !== 'forecast') throw new Error(r.status);
    expect(r.p50).toBeNull();
  });

  it('history starts at the first day of use; a first day of use forecasts from today so far', () => {
    const late = forecastDepletion(
      base({ daily: [...Array.from({ length: 21 }, () => 0), ...Array.from({ length: 7 }, () => 100)] }),
    );
    if (late.status !== 'forecast') throw new Error(late.status);
    expect(late.model.windowDays).toBe(7);
    expect(daysFromNow(late.p50)).toBeCloseTo(10.5, 6);
    // Noon, 50 consumed since midnight: 100 a day; 1050 left last 10.5 days from now.
    const today = forecastDepletion(
      base({ now: NOW + DAY_MS / 2, daily: Array.from({ length: 28 }, () => 0), consumedToday: 50 }),
    );
    if (today.status !== 'forecast') throw new Error(today.status);
    expect((today.p50! - NOW) / DAY_MS).toBeCloseTo(11, 6);
  });
});
