import { Amount } from '../amount/amount.js';
import type { GrantState } from '../ledger/types.js';

/**
 * Balance thresholds and the crossing rule (docs/design.md, "Balance alerts"). Pure: the services
 * feed it the balance a write found and the balance it left, and persist what it decides in the
 * same transaction.
 */

/**
 * How a threshold's level is given: an absolute amount, or a percent of what is granted in force
 * (both compared with the balance by every write: `balance.low`), or hours of forecast runway
 * (`runway_hours`: compared by a periodic sweep with the depletion forecast, `balance.runway_below`).
 */
export type ThresholdKind = 'amount' | 'percent' | 'runway_hours';

/** The kinds a write compares with the balance (`balance.low` / `balance.recovered`). */
export type BalanceLevelKind = 'amount' | 'percent';

/** Whether a threshold watches the balance level (written by writes) rather than the runway (swept). */
export function isBalanceLevelThreshold(threshold: BalanceThreshold): boolean {
  return threshold.kind !== 'runway_hours';
}

/**
 * The runway rule of `balance.runway_below`: below when the forecast runway (seconds; 0 when
 * depleted, null when nothing burns or depletion is beyond the horizon) is under the threshold's
 * hours. An armed threshold that is below fires and disarms; a disarmed one that is no longer
 * below re-arms silently. Once per crossing, no storm.
 */
export function runwayTransition(
  threshold: BalanceThreshold,
  fired: boolean,
  runwaySeconds: number | null,
): 'fire' | 'rearm' | null {
  // Exact: runway × 10^12 < hours (in 10^-12 units) × 3600.
  const below =
    runwaySeconds !== null &&
    BigInt(Math.trunc(runwaySeconds)) * 1_000_000_000_000n < threshold.value.units * 3600n;
  if (below && !fired) return 'fire';
  if (!below && fired) return 'rearm';
  return null;
}

/** A threshold as configured: a customer's own (customerId set) or the workspace default (null). */
export interface BalanceThreshold {
  readonly workspaceId: string;
  readonly id: string;
  /** Null: the workspace default for this credit type (applies to customers without their own). */
  readonly customerId: string | null;
  readonly creditType: string;
  readonly kind: ThresholdKind;
  /** An amount of credits (`amount`), or a percentage between 0 and 100 (`percent`). */
  readonly value: Amount;
  readonly createdAt: number;
}

/** A threshold that applies to one ledger, with its persisted state for that customer. */
export interface ArmedThreshold {
  readonly threshold: BalanceThreshold;
  /** True while `balance.low` has fired and `balance.recovered` has not (the threshold is disarmed). */
  readonly fired: boolean;
}

/** The part of a ledger's recorded state the alerts compare, before and after a write. */
export interface BalancePoint {
  /** Σ free remaining of open, effective grants − overage owed (as recorded, not projected in time). */
  readonly available: Amount;
  /** Overage owed (≥ 0). */
  readonly overageOwed: Amount;
}

/** What one write did to the alerts of one ledger. */
export type ThresholdTransition =
  | { readonly kind: 'low'; readonly threshold: BalanceThreshold; readonly level: Amount }
  | { readonly kind: 'recovered'; readonly threshold: BalanceThreshold; readonly level: Amount };

/**
 * The recorded available balance of a ledger: what its entries say now, without projecting
 * expiries that are due but not yet applied (those move the balance when they are applied, and
 * that write is the one that crosses). Open, activated grants only; depleted grants add nothing.
 */
export function recordedPoint(grants: Iterable<Readonly<GrantState>>, overage: Amount): BalancePoint {
  let total = overage.units;
  for (const grant of grants) {
    if (grant.closedReason !== null || !grant.activated) continue;
    total += grant.available.units;
  }
  return { available: Amount.fromUnits(total), overageOwed: overage.negated() };
}

/**
 * The thresholds that apply to a customer: its own for the credit type when it has any, otherwise
 * the workspace defaults for that credit type.
 */
export function applicableThresholds(
  customerId: string,
  candidates: readonly ArmedThreshold[],
): readonly ArmedThreshold[] {
  const own = candidates.filter((c) => c.threshold.customerId === customerId);
  return own.length > 0 ? own : candidates.filter((c) => c.threshold.customerId === null);
}

/** The level of a threshold: its amount, or its percent of `granted` (rounded half-even). */
export function thresholdLevel(threshold: BalanceThreshold, granted: Amount): Amount {
  if (threshold.kind !== 'percent') return threshold.value;
  return granted.times(threshold.value, 'half_even').mulRatio(1n, 100n, 'half_even');
}

/**
 * The crossing rule. `balance.low` fires when the write takes the balance from above the level to
 * at or below it (`before > level ≥ after`) and the threshold is armed; it disarms the threshold.
 * `balance.recovered` fires when a disarmed threshold sees the balance above its level again, and
 * re-arms it. A threshold created while the balance is already at or below it stays armed and
 * silent until a write crosses it from above. `granted` is only read for percent thresholds.
 */
export function thresholdTransitions(
  thresholds: readonly ArmedThreshold[],
  before: BalancePoint,
  after: BalancePoint,
  granted: Amount,
): ThresholdTransition[] {
  const transitions: ThresholdTransition[] = [];
  for (const { threshold, fired } of thresholds) {
    if (!isBalanceLevelThreshold(threshold)) continue;
    const level = thresholdLevel(threshold, granted);
    if (!fired && before.available.greaterThan(level) && !after.available.greaterThan(level)) {
      transitions.push({ kind: 'low', threshold, level });
    } else if (fired && after.available.greaterThan(level)) {
      transitions.push({ kind: 'recovered', threshold, level });
    }
  }
  return transitions;
}

/** `balance.depleted`: the available balance reached 0 or less from above 0 (the balance is its own state). */
export function depleted(before: BalancePoint, after: BalancePoint): boolean {
  return before.available.isPositive() && !after.available.isPositive();
}

/** `overage.started`: overage owed went from nothing to something. */
export function overageStarted(before: BalancePoint, after: BalancePoint): boolean {
  return before.overageOwed.isZero() && after.overageOwed.isPositive();
}

/** Default lead times of `grant.expiring_soon`: 7 days and 1 day before expiry. */
export const DEFAULT_EXPIRY_NOTICE_LEADS_MS: readonly number[] = [7 * 86_400_000, 86_400_000];

/** Parses lead times like `7d,1d,12h` (days, hours, minutes) into milliseconds; throws on bad input. */
export function parseNoticeLeads(text: string): number[] {
  const units: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const match = /^(\d{1,6})([dhm])$/.exec(part);
      const unit = match ? units[match[2] ?? ''] : undefined;
      if (!match || unit === undefined || Number(match[1]) === 0) {
        throw new Error(`lead time "${part}" is not like 7d, 12h or 30m`);
      }
      return Number(match[1]) * unit;
    });
}
