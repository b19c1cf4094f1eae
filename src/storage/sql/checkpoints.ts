import type { LedgerChanges } from '../../domain/ledger/changes.js';
import type { Movement } from '../../domain/ledger/point-in-time.js';
import type { Instant } from '../../domain/time/instant.js';

/**
 * Ledger checkpoints: periodic per-account snapshots that make a balance at any past instant cost
 * one checkpoint plus the entries after it, instead of every entry of the ledger.
 *
 * **Order.** Entries of one ledger are ordered by `(at, seq)`: `at` is the instant an entry is
 * dated, `seq` its insertion sequence. Within one ledger `seq` grows with insertion (writers to a
 * ledger are serialised by its lock, and the sequence only grows). `at` does *not* always grow:
 * an entry may be dated before entries already stored ("late"), e.g. an allowance caught up and
 * dated its period start, a grant recorded after its own expiry, a write from a process whose
 * clock lags a little.
 *
 * **Invariant.** A checkpoint `(T, S, balances)` of a ledger holds, for every account, the sum of
 * the ledger's entries with `(at, seq) ≤ (T, S)` — at any time, not only when it was written.
 *
 * - *Written* with the entries, in the same transaction, once `since_checkpoint` (entries recorded
 *   since the last checkpoint, counted on the ledger's balances row) reaches the interval: `(T, S)`
 *   is then the greatest `(at, seq)` of the ledger, so every stored entry is at or below it, and
 *   the balances are the ledger's cached balances, which equal the sum of all its entries.
 * - *Kept* when entries arrive later: an entry inserted after the checkpoint has a greater `seq`,
 *   so it is below `(T, S)` exactly when its `at < T`, i.e. when it is late for that checkpoint.
 *   The writer compares each new entry with `checkpoint_at` (the greatest `T`, on the balances
 *   row) and, for a late one, adds its movement to every checkpoint with `T > at`, in the same
 *   transaction. Late entries are rare, so this repair is rare.
 *
 * **Read** at instant `t`: the checkpoint with the greatest `(T, S)` such that `T ≤ t`, plus the
 * entries with `(at, seq) > (T, S)` and `at ≤ t` — an index range of `entries_by_ledger` that
 * holds about one interval of entries, read in one statement (one snapshot on both backends).
 * Without a checkpoint at or before `t` (a ledger older than checkpoints, or `t` before its first
 * one) the read sums from the start, which is still exact, only slower.
 */

/** Entries between two checkpoints of a ledger, at least (the read cost is about this many rows). */
export const DEFAULT_CHECKPOINT_INTERVAL = 128;

/**
 * How many entries a ledger records between checkpoints: the configured interval, or the number
 * of open grants if that is more, so that the checkpoints of a customer with many open grants
 * (up to two accounts each) never take much more room than the entries they summarise.
 */
export function checkpointIntervalOf(changes: LedgerChanges, configured: number): number {
  return Math.max(configured, changes.openGrants.length);
}

/**
 * The balances a checkpoint stores: every non-zero account of the ledger after a change set, in
 * units (a grant with a non-zero account is an open one).
 */
export function checkpointBalancesOf(changes: LedgerChanges): Record<string, string> {
  const balances: Record<string, string> = {};
  for (const [name, amount] of Object.entries(changes.accounts)) {
    if (amount.units !== 0n) balances[name] = amount.units.toString();
  }
  for (const grant of changes.openGrants) {
    if (grant.available.units !== 0n) balances[`grant:${grant.id}`] = grant.available.units.toString();
    if (grant.held.units !== 0n) balances[`held:${grant.id}`] = grant.held.units.toString();
  }
  return balances;
}

/** Parses a stored checkpoint's balances. */
export function parseCheckpointBalances(text: string): Map<string, bigint> {
  const parsed = JSON.parse(text) as Record<string, string>;
  const balances = new Map<string, bigint>();
  for (const [name, units] of Object.entries(parsed)) balances.set(name, BigInt(units));
  return balances;
}

/** Adds the movements dated before `checkpointAt` to a checkpoint's balances (the late-entry repair). */
export function repairedBalances(text: string, late: readonly Movement[], checkpointAt: Instant): string {
  const balances = parseCheckpointBalances(text);
  for (const m of late) {
    if (m.at >= checkpointAt) continue;
    balances.set(m.fromAccount, (balances.get(m.fromAccount) ?? 0n) - m.units);
    balances.set(m.toAccount, (balances.get(m.toAccount) ?? 0n) + m.units);
  }
  const out: Record<string, string> = {};
  for (const [name, units] of balances) if (units !== 0n) out[name] = units.toString();
  return JSON.stringify(out);
}
