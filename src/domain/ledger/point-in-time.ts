import { Amount } from '../amount/amount.js';
import { extend } from '../objects.js';
import type { Instant } from '../time/instant.js';
import { compareBurnDownOrder } from './burn-down.js';
import type { BalanceView, GrantState, LedgerEntry } from './types.js';

/** One movement of units between two accounts, as a point-in-time read needs it. */
export interface Movement {
  readonly at: Instant;
  readonly fromAccount: string;
  readonly toAccount: string;
  readonly units: bigint;
}

/**
 * Account balances (units) at `at`: `start` (a checkpoint's balances, or nothing) plus every
 * movement dated at or before `at`. The caller supplies exactly the movements the start does not
 * already include; their order does not matter (sums commute).
 */
export function accountsAt(
  start: ReadonlyMap<string, bigint>,
  movements: Iterable<Movement>,
  at: Instant,
): Map<string, bigint> {
  const balances = new Map(start);
  for (const m of movements) {
    if (m.at > at) continue;
    balances.set(m.fromAccount, (balances.get(m.fromAccount) ?? 0n) - m.units);
    balances.set(m.toAccount, (balances.get(m.toAccount) ?? 0n) + m.units);
  }
  return balances;
}

/**
 * The balance as the ledger records it at a past instant `at`: every account summed over the
 * entries dated at or before `at`. Correct as long as everything due up to `at` has been
 * recorded (callers advance the ledger to now first): expiries and hold releases are dated at
 * the instant they were due, so the sum over time already reflects them.
 */
export function balanceFromEntries(input: {
  readonly customerId: string;
  readonly creditType: string;
  readonly at: Instant;
  readonly entries: Iterable<LedgerEntry>;
  readonly grants: ReadonlyMap<string, GrantState>;
}): BalanceView {
  const movements: Movement[] = [];
  for (const e of input.entries) {
    movements.push({ at: e.at, fromAccount: e.fromAccount, toAccount: e.toAccount, units: e.amount.units });
  }
  return balanceFromAccounts(extend(input, { balances: accountsAt(new Map(), movements, input.at) }));
}

/**
 * The balance at `at` from the account balances at `at` (see {@link accountsAt}) and the grants
 * those accounts belong to: what is available, held and owed, and which grants are usable then.
 */
export function balanceFromAccounts(input: {
  readonly customerId: string;
  readonly creditType: string;
  readonly at: Instant;
  readonly balances: ReadonlyMap<string, bigint>;
  readonly grants: ReadonlyMap<string, GrantState>;
}): BalanceView {
  const { balances } = input;
  const overageUnits = balances.get('overage') ?? 0n;
  let freeUnits = 0n;
  let heldUnits = 0n;
  const listed: { grant: GrantState; free: bigint; held: bigint }[] = [];
  for (const grant of input.grants.values()) {
    const free = balances.get(`grant:${grant.id}`) ?? 0n;
    const held = balances.get(`held:${grant.id}`) ?? 0n;
    heldUnits += held;
    // A grant not yet effective at `at` holds its credits but does not make them available.
    if (grant.effectiveAt <= input.at) freeUnits += free;
    const leftBy = grant.closedAt !== null && grant.closedAt <= input.at;
    const usable =
      !leftBy && grant.effectiveAt <= input.at && (grant.expiresAt === null || input.at < grant.expiresAt);
    if (usable && free + held > 0n) listed.push({ grant, free, held });
  }
  listed.sort((a, b) => compareBurnDownOrder(a.grant, b.grant));
  let nextExpiry: BalanceView['nextExpiry'] = null;
  for (const { grant, free } of listed) {
    if (grant.expiresAt === null || free <= 0n) continue;
    if (nextExpiry === null || grant.expiresAt < nextExpiry.at)
      nextExpiry = { at: grant.expiresAt, amount: Amount.fromUnits(free) };
    else if (grant.expiresAt === nextExpiry.at) {
      nextExpiry = { at: nextExpiry.at, amount: nextExpiry.amount.plus(Amount.fromUnits(free)) };
    }
  }
  return {
    customerId: input.customerId,
    creditType: input.creditType,
    at: input.at,
    available: Amount.fromUnits(freeUnits + overageUnits),
    held: Amount.fromUnits(heldUnits),
    overage: Amount.fromUnits(-overageUnits),
    grants: listed.map(({ grant, free, held }) => ({
      grantId: grant.id,
      remaining: Amount.fromUnits(free + held),
      expiresAt: grant.expiresAt,
      priority: grant.priority,
      category: grant.category,
    })),
    nextExpiry,
  };
}
