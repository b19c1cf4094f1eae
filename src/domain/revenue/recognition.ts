/**
 * Revenue recognition of prepaid credits (ASC 606 / IFRS 15), pure.
 *
 * A paid grant's cost basis is a contract liability (deferred revenue) when the grant is issued.
 * It leaves deferred revenue in four ways, each measured in credits of the grant:
 * - **recognised** revenue as credits are consumed (debits, captures, overage debt the grant paid);
 *   a reversal that gives credits back to the grant recognises less (negative in its period);
 * - **breakage** revenue for paid credits the customer will never use: under `at_expiry` when
 *   they expire or are voided; under `proportional` (ASC 606-10-55-48) an expected breakage rate is
 *   recognised in proportion to consumption while the grant is open, and trued up to what actually
 *   expired once nothing is left open;
 * - **refunded**: credits taken back on a refund (a clawback) reduce deferred revenue without ever
 *   being revenue;
 * - what is left is still **deferred**.
 *
 * Promotional and allowance grants carry no cost basis and so no revenue here (an allowance's
 * revenue belongs to the subscription price, recognised by whoever invoices it).
 *
 * Rounding rule (cumulative, nested): with G the credits granted, C consumed, B breakage and R
 * refunded credits to date, and M(q) = round-half-up(cost × q ÷ G) in the currency's minor unit,
 *   recognised-to-date = M(C), breakage-to-date = M(C + B) − M(C),
 *   refunded-to-date = M(C + B + R) − M(C + B), deferred = cost − M(C + B + R).
 * The four always add up to the cost exactly, and once nothing is left (C + B + R = G) deferred is
 * exactly zero. A period's amount is the difference of two such cumulative values, so periods never
 * drift from the totals however finely the time is cut.
 */
import { AMOUNT_SCALE, Amount } from '../amount/amount.js';
import { currencyExponent } from '../catalog/pricing.js';
import type { Instant } from '../time/instant.js';

const SCALE = 10n ** BigInt(AMOUNT_SCALE);

/** When unused paid credits become breakage revenue. */
export type BreakagePolicyName = 'at_expiry' | 'proportional';
export const BREAKAGE_POLICIES: readonly BreakagePolicyName[] = ['at_expiry', 'proportional'];

/**
 * A breakage policy: `at_expiry` ignores the rate; `proportional` recognises `expectedBreakageRate`
 * (0 ≤ rate < 1, the share of paid credits expected never to be used) along with consumption.
 */
export interface BreakagePolicy {
  readonly policy: BreakagePolicyName;
  readonly expectedBreakageRate: Amount;
}

/** The default policy of a workspace that set none: breakage only when credits actually expire. */
export const DEFAULT_BREAKAGE_POLICY: BreakagePolicy = {
  policy: 'at_expiry',
  expectedBreakageRate: Amount.ZERO,
};

/** Whether a rate is a usable expected breakage rate (0 ≤ rate < 1). */
export function isValidBreakageRate(rate: Amount): boolean {
  return !rate.isNegative() && rate.lessThan(Amount.of(1n));
}

/** A paid grant as revenue recognition needs it. */
export interface RevenueGrant {
  readonly id: string;
  readonly customerId: string;
  readonly creditType: string;
  /** The credit pack it was bought from (purchases record it), or null for a grant made directly. */
  readonly packId: string | null;
  /** Credits granted (> 0). */
  readonly credits: Amount;
  readonly costBasis: { readonly amount: Amount; readonly currency: string };
  /** When it was issued: its cost basis is an addition to deferred revenue then. */
  readonly createdAt: Instant;
}

/**
 * What happened to some credits of one grant: `consumed` (burned), `unconsumed` (a reversal gave
 * consumed credits back), `expired`, `voided`, `refunded` (taken back on a refund: a clawback).
 */
export type MovementKind = 'consumed' | 'unconsumed' | 'expired' | 'voided' | 'refunded';

/** One movement of a grant's credits, dated when it took effect. */
export interface GrantMovement {
  readonly at: Instant;
  readonly kind: MovementKind;
  readonly credits: Amount;
}

/** The accounts a ledger entry moves credits between (a subset of LedgerEntry, as plain strings). */
export interface EntryFlow {
  readonly fromAccount: string;
  readonly toAccount: string;
  readonly amount: Amount;
  readonly at: Instant;
}

/** The account a refund takes a grant's credits back into (the payments side's clawback entries). */
export const CLAWED_BACK_ACCOUNT = 'clawed_back';

/**
 * What a ledger entry means for one grant's revenue, or null when it moves nothing out of (or back
 * into) the grant's pool (its issue, a hold pinning credits, a release). Credits leaving the grant
 * (`grant:<id>` or `held:<id>`) to `consumed` or `overage` (paying debt) are consumed, to `expired`
 * or `voided` left unused, to {@link CLAWED_BACK_ACCOUNT} were refunded; `consumed → grant:<id>` is
 * a reversal. Any other flow touching the grant is a bug or a flow this mapping does not know yet:
 * it throws rather than report wrong figures.
 */
export function movementOfEntry(entry: EntryFlow, grantId: string): GrantMovement | null {
  const pool = `grant:${grantId}`;
  const held = `held:${grantId}`;
  const fromGrant = entry.fromAccount === pool || entry.fromAccount === held;
  const toGrant = entry.toAccount === pool || entry.toAccount === held;
  if (fromGrant && toGrant) return null;
  const at = entry.at;
  const credits = entry.amount;
  if (fromGrant) {
    switch (entry.toAccount) {
      case 'consumed':
      case 'overage':
        return { at, kind: 'consumed', credits };
      case 'expired':
        return { at, kind: 'expired', credits };
      case 'voided':
        return { at, kind: 'voided', credits };
      case CLAWED_BACK_ACCOUNT:
        return { at, kind: 'refunded', credits };
    }
  } else if (toGrant) {
    if (entry.fromAccount === 'issued') return null;
    if (entry.fromAccount === 'consumed') return { at, kind: 'unconsumed', credits };
  } else {
    return null;
  }
  throw new Error(
    `revenue recognition: no meaning for ${entry.fromAccount} → ${entry.toAccount} of grant ${grantId}`,
  );
}

/** Cumulative credits of a grant (units of 10^-12): consumed net of reversals, expired, voided, refunded. */
export interface CreditTotals {
  consumed: bigint;
  expired: bigint;
  voided: bigint;
  refunded: bigint;
}

/** Totals before any movement. */
export function noCreditTotals(): CreditTotals {
  return { consumed: 0n, expired: 0n, voided: 0n, refunded: 0n };
}

/** Adds one movement to running totals (in place). */
export function addMovement(totals: CreditTotals, movement: GrantMovement): void {
  const units = movement.credits.units;
  switch (movement.kind) {
    case 'consumed':
      totals.consumed += units;
      return;
    case 'unconsumed':
      totals.consumed -= units;
      return;
    case 'expired':
      totals.expired += units;
      return;
    case 'voided':
      totals.voided += units;
      return;
    case 'refunded':
      totals.refunded += units;
      return;
  }
}

/** Cumulative money of one grant at an instant, in minor units of its currency; the four sum to its cost. */
export interface RecognitionState {
  readonly recognised: bigint;
  readonly breakage: bigint;
  readonly refunded: bigint;
  readonly deferred: bigint;
}

/**
 * The grant's cost basis in minor units of its currency. A cost basis finer than the minor unit
 * (possible for grants made directly with a cost basis) is rounded half up to it first: that
 * rounded amount is what the grant's recognised, breakage and refunded totals add up to.
 */
export function costInMinorUnits(costBasis: RevenueGrant['costBasis']): bigint {
  const step = 10n ** BigInt(AMOUNT_SCALE - currencyExponent(costBasis.currency));
  return divideHalfUp(costBasis.amount.units, step);
}

/** a ÷ b rounded half up, for a ≥ 0 and b > 0. */
function divideHalfUp(a: bigint, b: bigint): bigint {
  return (2n * a + b) / (2n * b);
}

/**
 * Credits of the grant counted as breakage to date. `at_expiry`: what expired or was voided.
 * `proportional`: that, plus — while part of the grant is still open — the expected breakage
 * rate's share of consumption, C × rate ÷ (1 − rate) (rounded down at 12 decimals), never more
 * than what is still open; once nothing is open the estimate is gone and breakage is what actually
 * expired (the true-up, which may be negative in its period).
 */
export function breakageCredits(granted: bigint, totals: CreditTotals, policy: BreakagePolicy): bigint {
  const left = totals.expired + totals.voided;
  if (policy.policy === 'at_expiry') return left;
  const open = granted - totals.consumed - left - totals.refunded;
  const rate = policy.expectedBreakageRate.units;
  if (open <= 0n || totals.consumed <= 0n || rate <= 0n) return left;
  const estimate = (totals.consumed * rate) / (SCALE - rate);
  return left + (estimate < open ? estimate : open);
}

/** The grant's cumulative recognition after the movements summed in `totals` (see the module's rounding rule). */
export function recognitionOf(
  grant: RevenueGrant,
  policy: BreakagePolicy,
  totals: CreditTotals,
): RecognitionState {
  const granted = grant.credits.units;
  const cost = costInMinorUnits(grant.costBasis);
  const consumed = totals.consumed;
  const breakage = breakageCredits(granted, totals, policy);
  const resolved = consumed + breakage + totals.refunded;
  if (granted <= 0n || consumed < 0n || totals.refunded < 0n || breakage < 0n || resolved > granted) {
    throw new Error(`revenue recognition: grant ${grant.id} moved more credits than it was granted`);
  }
  const share = (credits: bigint) => divideHalfUp(cost * credits, granted);
  const m1 = share(consumed);
  const m2 = share(consumed + breakage);
  const m3 = share(resolved);
  return { recognised: m1, breakage: m2 - m1, refunded: m3 - m2, deferred: cost - m3 };
}

/** One grant's deferred-revenue roll-forward over one period, in minor units. */
export interface PeriodRecognition {
  /** Deferred at the period's start (0 if the grant was issued later). */
  readonly opening: bigint;
  /** The cost basis, when the grant was issued in the period. */
  readonly additions: bigint;
  readonly recognised: bigint;
  readonly breakage: bigint;
  readonly refunds: bigint;
  /** Deferred at the period's end; always opening + additions − recognised − breakage − refunds. */
  readonly closing: bigint;
}

const NOTHING: RecognitionState = { recognised: 0n, breakage: 0n, refunded: 0n, deferred: 0n };

/**
 * Running totals of one grant's movements sampled at period boundaries. Movements must arrive in
 * non-decreasing `at` order (the ledger's (at, seq) order); a boundary counts movements strictly
 * before it. Lets a caller stream a grant's history without keeping it.
 */
export class GrantRecognition {
  private readonly totals = noCreditTotals();
  /** Totals at each boundary already passed. */
  private readonly sampled: CreditTotals[] = [];
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly grant: RevenueGrant,
    readonly policy: BreakagePolicy,
    /** Ascending instants; period i is [boundaries[i], boundaries[i + 1]). */
    private readonly boundaries: readonly Instant[],
  ) {}

  /** Adds the next movement (in `at` order). */
  add(movement: GrantMovement): void {
    if (movement.at < this.lastAt) throw new Error('revenue recognition: movements out of order');
    this.lastAt = movement.at;
    this.sampleUpTo(movement.at);
    addMovement(this.totals, movement);
  }

  /** Every movement was added: the roll-forward of each period. */
  periods(): PeriodRecognition[] {
    this.sampleUpTo(Number.POSITIVE_INFINITY);
    const states = this.boundaries.map((at, i) =>
      this.grant.createdAt < at ? recognitionOf(this.grant, this.policy, this.sampled[i]!) : NOTHING,
    );
    const cost = costInMinorUnits(this.grant.costBasis);
    const out: PeriodRecognition[] = [];
    for (let i = 0; i + 1 < this.boundaries.length; i += 1) {
      const start = states[i]!;
      const end = states[i + 1]!;
      const existedAtStart = this.grant.createdAt < this.boundaries[i]!;
      const existsAtEnd = this.grant.createdAt < this.boundaries[i + 1]!;
      out.push({
        opening: start.deferred,
        additions: !existedAtStart && existsAtEnd ? cost : 0n,
        recognised: end.recognised - start.recognised,
        breakage: end.breakage - start.breakage,
        refunds: end.refunded - start.refunded,
        closing: end.deferred,
      });
    }
    return out;
  }

  /** Records the current totals for every boundary at or before `at` not sampled yet. */
  private sampleUpTo(at: Instant): void {
    while (this.sampled.length < this.boundaries.length && this.boundaries[this.sampled.length]! <= at) {
      this.sampled.push({ ...this.totals });
    }
  }
}

/**
 * A grant's roll-forward for each period between `boundaries`, from its whole movement history (any
 * order; sorted here by instant, stable). The merge point for new kinds of movement is
 * {@link movementOfEntry}; this function only sees {@link GrantMovement}s.
 */
export function recognizeGrant(input: {
  readonly grant: RevenueGrant;
  readonly policy: BreakagePolicy;
  readonly movements: readonly GrantMovement[];
  readonly boundaries: readonly Instant[];
}): PeriodRecognition[] {
  const tracker = new GrantRecognition(input.grant, input.policy, input.boundaries);
  const sorted = input.movements.map((m, i) => ({ m, i })).sort((a, b) => a.m.at - b.m.at || a.i - b.i);
  for (const { m } of sorted) tracker.add(m);
  return tracker.periods();
}

/** Minor units as a fixed-point decimal string with the currency's decimals (`"12.30"`, `"1200"`, `"-0.005"`). */
export function formatMinorUnits(units: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(exponent + 1, '0');
  const integer = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  return `${negative ? '-' : ''}${integer}${exponent > 0 ? `.${fraction}` : ''}`;
}
