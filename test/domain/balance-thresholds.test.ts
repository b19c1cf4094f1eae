import { describe, expect, it } from 'vitest';
import {
  type ArmedThreshold,
  applicableThresholds,
  type BalanceThreshold,
  depleted,
  overageStarted,
  parseNoticeLeads,
  runwayTransition,
  thresholdLevel,
  thresholdTransitions,
} from '../../src/domain/alerts/balance-thresholds.js';
import { Amount } from '../../src/domain/amount/amount.js';

/** The crossing rule and its helpers, without storage (the services' tests cover the wiring). */

const a = (text: string) => Amount.parse(text);
const threshold = (id: string, customerId: string | null, kind: 'amount' | 'percent', value: string) =>
  ({
    workspaceId: 'w',
    id,
    customerId,
    creditType: 'credits',
    kind,
    value: a(value),
    createdAt: 0,
  }) satisfies BalanceThreshold;
const point = (available: string, owed = '0') => ({ available: a(available), overageOwed: a(owed) });
const kinds = (armed: ArmedThreshold[], before: string, after: string, granted = '0') =>
  thresholdTransitions(armed, point(before), point(after), a(granted)).map((t) => `${t.kind}:${t.level}`);

describe('balance thresholds', () => {
  it('fires low on before > level ≥ after only while armed, and recovers above the level only once fired', () => {
    const t = threshold('t', 'c', 'amount', '30');
    expect(kinds([{ threshold: t, fired: false }], '40', '30')).toEqual(['low:30']);
    expect(kinds([{ threshold: t, fired: false }], '40', '30.000000000001')).toEqual([]);
    expect(kinds([{ threshold: t, fired: false }], '30', '10')).toEqual([]); // not from above
    expect(kinds([{ threshold: t, fired: true }], '40', '10')).toEqual([]); // disarmed
    expect(kinds([{ threshold: t, fired: true }], '10', '30')).toEqual([]); // at the level is not above
    expect(kinds([{ threshold: t, fired: true }], '10', '30.5')).toEqual(['recovered:30']);
    expect(kinds([{ threshold: t, fired: false }], '10', '50')).toEqual([]); // never fired: nothing recovers
  });

  it('a percent level is that share of the granted total, rounded at the 12th decimal', () => {
    expect(thresholdLevel(threshold('p', null, 'percent', '25'), a('200')).toString()).toBe('50');
    expect(thresholdLevel(threshold('p', null, 'percent', '33.3'), a('0.000000000001')).toString()).toBe('0');
    expect(thresholdLevel(threshold('p', null, 'percent', '100'), a('7.5')).toString()).toBe('7.5');
    expect(thresholdLevel(threshold('q', null, 'amount', '12'), a('200')).toString()).toBe('12');
  });

  it("a customer's own thresholds replace the workspace defaults", () => {
    const def = { threshold: threshold('d', null, 'amount', '1'), fired: false };
    const own = { threshold: threshold('o', 'c', 'amount', '2'), fired: false };
    expect(applicableThresholds('c', [def, own])).toEqual([own]);
    expect(applicableThresholds('x', [def])).toEqual([def]);
  });

  it('depleted: from above 0 to 0 or below; overage started: from owing nothing to owing', () => {
    expect(depleted(point('1'), point('0'))).toBe(true);
    expect(depleted(point('1'), point('-2', '2'))).toBe(true);
    expect(depleted(point('0'), point('-2', '2'))).toBe(false);
    expect(overageStarted(point('1'), point('-2', '2'))).toBe(true);
    expect(overageStarted(point('-1', '1'), point('-2', '2'))).toBe(false);
  });

  it('parses notice lead times', () => {
    expect(parseNoticeLeads('7d, 1d,12h,30m')).toEqual([
      7 * 86_400_000,
      86_400_000,
      12 * 3_600_000,
      1_800_000,
    ]);
    expect(parseNoticeLeads('')).toEqual([]);
    expect(() => parseNoticeLeads('7x')).toThrow(/7d, 12h or 30m/);
    expect(() => parseNoticeLeads('0d')).toThrow();
  });

  it('runway rule: fires under the hours (exactly, not at them), re-arms at or above, never on no runway', () => {
    const t = { ...threshold('r', null, 'amount', '72'), kind: 'runway_hours' as const };
    const limit = 72 * 3600;
    expect(runwayTransition(t, false, limit - 1)).toBe('fire');
    expect(runwayTransition(t, false, limit)).toBeNull();
    expect(runwayTransition(t, false, 0)).toBe('fire');
    expect(runwayTransition(t, true, limit - 1)).toBeNull();
    expect(runwayTransition(t, true, limit)).toBe('rearm');
    expect(runwayTransition(t, true, null)).toBe('rearm');
    expect(runwayTransition(t, false, null)).toBeNull();
    // Fractional hours are exact: 0.5 h is 1800 s.
    const half = { ...t, value: a('0.5') };
    expect(runwayTransition(half, false, 1799)).toBe('fire');
    expect(runwayTransition(half, false, 1800)).toBeNull();
  });

  it('balance writes ignore runway thresholds', () => {
    const t = { ...threshold('r', null, 'amount', '1000'), kind: 'runway_hours' as const };
    const point = (v: string) => ({ available: a(v), overageOwed: a('0') });
    expect(thresholdTransitions([{ threshold: t, fired: false }], point('2000'), point('1'), a('0'))).toEqual(
      [],
    );
  });
});
