import { Amount } from '../amount/amount.js';
import type { Allowance } from '../catalog/catalog.js';
import type { Instant } from '../time/instant.js';

/**
 * The most credits an allowance may carry across resets, in total over its live rollover grants:
 * `max`, or `maxPercent` of the allowance (rounded down at the 12th decimal). No rule: nothing.
 */
export function rolloverCap(allowance: Allowance): Amount {
  const rule = allowance.rollover;
  if (rule === null) return Amount.ZERO;
  if (rule.max !== null) return rule.max;
  if (rule.maxPercent !== null)
    return allowance.amount.mulRatio(rule.maxPercent.units, 100n * 10n ** 12n, 'down');
  return Amount.ZERO;
}

/** A live rollover grant at a reset: what it still holds, oldest first. */
export interface LiveRollover {
  readonly grantId: string;
  readonly available: Amount;
}

/**
 * The rollover step at a reset. `unused` is what the ending allowance grant still holds free; the
 * live rollovers are those still valid after the reset, oldest first. If carrying everything would
 * exceed the cap, the oldest rollovers are trimmed first, then the new carry. Returns the trims
 * (breakage, dated the reset) and the amount of the new rollover grant.
 */
export function planRollover(
  allowance: Allowance,
  unused: Amount,
  live: readonly LiveRollover[],
): { readonly trims: readonly { grantId: string; amount: Amount }[]; readonly carry: Amount } {
  if (allowance.rollover === null) return { trims: [], carry: Amount.ZERO };
  const cap = rolloverCap(allowance);
  let excess = Amount.sum([unused, ...live.map((r) => r.available)]).minus(cap);
  const trims: { grantId: string; amount: Amount }[] = [];
  for (const rollover of live) {
    if (!excess.isPositive()) break;
    const take = Amount.min(rollover.available, excess);
    if (take.isPositive()) trims.push({ grantId: rollover.grantId, amount: take });
    excess = excess.minus(take);
  }
  const carry = excess.isPositive() ? unused.minus(excess) : unused;
  return { trims, carry: Amount.max(carry, Amount.ZERO) };
}

/**
 * The proration rule of an immediate plan change at `at` inside a period [start, end): the
 * customer gets the increase of the allowance for the rest of the period,
 * (new − old) × (end − at) ÷ (end − start), rounded down at the 12th decimal; a decrease gives
 * nothing back and takes nothing away (downgrades wait for the period end anyway).
 */
export function proratedIncrease(
  oldAmount: Amount,
  newAmount: Amount,
  period: { readonly start: Instant; readonly end: Instant },
  at: Instant,
): Amount {
  const increase = newAmount.minus(oldAmount);
  if (!increase.isPositive() || at >= period.end) return Amount.ZERO;
  const from = Math.max(at, period.start);
  return increase.mulRatio(BigInt(period.end - from), BigInt(period.end - period.start), 'down');
}
