import {
  type ArmedThreshold,
  applicableThresholds,
  type BalancePoint,
  type BalanceThreshold,
  depleted,
  isBalanceLevelThreshold,
  overageStarted,
  recordedPoint,
  type ThresholdKind,
  thresholdTransitions,
} from '../domain/alerts/balance-thresholds.js';
import { Amount } from '../domain/amount/amount.js';
import type { GrantSnapshot, LedgerChanges } from '../domain/ledger/changes.js';
import type { CreditLedger, CreditLedgerSnapshot } from '../domain/ledger/credit-ledger.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { LedgerKey, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { appendFacts, type OutboxMessage } from './outbox.js';

/**
 * Balance facts (docs/design.md, "Balance alerts"): `balance.low`, `balance.recovered`,
 * `balance.depleted`, `overage.started`, `grant.expired` and `hold.expired`, decided in the
 * transaction of the write that persists a ledger ({@link persistLedger} calls
 * {@link appendBalanceFacts} for every ledger it saves).
 *
 * Why at persistence: every write that changes a balance (debits, holds, captures, releases, event
 * burns, grants, voids, reversals, expiries applied on access or by the sweeper, subscription
 * resets) saves through one function while holding the ledger's lock. Comparing the balance the
 * write loaded with the one it saves therefore sees every change exactly once, in commit order:
 * one write's "after" is the next write's "before". The facts are appended directly (not through
 * the outcome) because whatever is saved commits, including upkeep saved on the way to a refusal;
 * a refused operation saves nothing of its own, so it writes no balance facts.
 */

interface Loaded {
  point: BalancePoint;
  /** Whether a threshold may apply (false when the write's upkeep read found none for the customer). */
  thresholds: boolean;
  /**
   * Grants already closed when loaded (null: none, the usual case, since storage loads open
   * grants): only the closing by expiry of the others (open at load, or granted since) is news.
   */
  closed: ReadonlySet<string> | null;
}

const loaded = new WeakMap<CreditLedger, Loaded>();

/**
 * The balance each saved change set left, by its list of open grants: a cache hands that very list
 * back as the next write's snapshot, whose balance before is then known without summing again.
 */
const savedPoints = new WeakMap<readonly GrantSnapshot[], BalancePoint>();

/**
 * Remembers the balance a ledger had when it was loaded for update (call right after loading,
 * with the snapshot it was made from), and whether a balance threshold may apply to its customer
 * (default: assume so and read them).
 */
export function noteLoaded(ledger: CreditLedger, snapshot: CreditLedgerSnapshot, thresholds = true): void {
  const point = savedPoints.get(snapshot.grants) ?? pointOf(ledger);
  loaded.set(ledger, { point, closed: closedGrantIds(ledger), thresholds });
}

function pointOf(ledger: CreditLedger): BalancePoint {
  return recordedPoint(ledger.grants.values(), ledger.accounts.overage);
}

function closedGrantIds(ledger: CreditLedger): Set<string> | null {
  let closed: Set<string> | null = null;
  for (const grant of ledger.grants.values()) {
    if (grant.closedReason === null) continue;
    closed ??= new Set();
    closed.add(grant.id);
  }
  return closed;
}

/**
 * Appends the balance facts of one ledger being persisted (`changes`: the change set just taken
 * from it and saved), and persists the thresholds' state, in the write's transaction. When the
 * balance did not move, it reads nothing; otherwise one indexed read of the thresholds that may
 * apply (empty for a workspace without any), plus one read of the granted amount only when a
 * percent threshold applies.
 */
export async function appendBalanceFacts(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  ledger: CreditLedger,
  changes: LedgerChanges,
  now: Instant,
): Promise<void> {
  const was = loaded.get(ledger);
  if (was === undefined) throw new Error('balance alerts: a ledger was saved without being noted at load');
  // The balance as saved: grants that are not open hold nothing, so the open ones are enough.
  const after = recordedPoint(changes.openGrants, changes.accounts.overage);
  const before = was.point;
  // Made on the first fact: almost every save (a debit, a burn) has none, and allocates nothing here.
  let facts: OutboxMessage[] | null = null;
  const fact = (type: string, data: Record<string, unknown>): void => {
    facts ??= [];
    facts.push({
      workspaceId,
      type,
      customerId: ledger.customerId,
      data: { customer_id: ledger.customerId, credit_type: ledger.creditType, ...data },
    });
  };
  expiredGrantFacts(changes, was.closed, fact);
  for (const hold of changes.holds) {
    if (hold.status !== 'expired') continue;
    fact('hold.expired', {
      hold_id: hold.id,
      amount: hold.amount.toString(),
      expired_at: formatInstant(hold.expiresAt),
    });
  }
  if (!before.available.equals(after.available) || !before.overageOwed.equals(after.overageOwed)) {
    const moved = () => ({
      balance_before: before.available.toString(),
      balance_after: after.available.toString(),
    });
    // Runway thresholds are the runway sweep's (src/services/runway-alerts.ts), not a write's.
    const key: LedgerKey = { workspaceId, customerId: ledger.customerId, creditType: ledger.creditType };
    const candidates = was.thresholds
      ? (await tx.alerts.thresholdsForLedger(key)).filter((c) => isBalanceLevelThreshold(c.threshold))
      : [];
    if (candidates.length > 0) {
      const applicable = applicableThresholds(ledger.customerId, candidates as ArmedThreshold[]);
      const granted = applicable.some((a) => a.threshold.kind === 'percent')
        ? await tx.alerts.grantedInForce(key, now)
        : Amount.ZERO;
      for (const t of thresholdTransitions(applicable, before, after, granted)) {
        const threshold = { ...thresholdView(t.threshold), level: t.level.toString() };
        if (t.kind === 'low') {
          await tx.alerts.markThresholdFired(workspaceId, t.threshold.id, ledger.customerId, now);
          fact('balance.low', { threshold, ...moved() });
        } else {
          await tx.alerts.markThresholdRecovered(workspaceId, t.threshold.id, ledger.customerId);
          fact('balance.recovered', { threshold, ...moved() });
        }
      }
    }
    if (depleted(before, after)) fact('balance.depleted', moved());
    if (overageStarted(before, after))
      fact('overage.started', { ...moved(), overage: after.overageOwed.toString() });
  }
  // A ledger saved twice in one transaction reports only what changed since the first save.
  was.point = after;
  was.closed = closedGrantIds(ledger);
  savedPoints.set(changes.openGrants, after);
  if (facts !== null) await appendFacts(ctx, tx, now, facts);
}

function expiredGrantFacts(
  changes: LedgerChanges,
  closedAtLoad: ReadonlySet<string> | null,
  fact: (type: string, data: Record<string, unknown>) => void,
): void {
  let expiredBy: Map<string, Amount> | null = null;
  for (const { grant } of changes.grants) {
    if (grant.closedReason !== 'expired') continue;
    if (closedAtLoad?.has(grant.id)) continue;
    if (expiredBy === null) {
      expiredBy = new Map();
      for (const e of changes.entries) {
        if (e.type !== 'expiry' || e.grantId === null) continue;
        expiredBy.set(e.grantId, (expiredBy.get(e.grantId) ?? Amount.ZERO).plus(e.amount));
      }
    }
    fact('grant.expired', {
      grant_id: grant.id,
      amount: grant.amount.toString(),
      amount_expired: (expiredBy.get(grant.id) ?? Amount.ZERO).toString(),
      expired_at: formatInstant(grant.closedAt ?? grant.expiresAt ?? 0),
    });
  }
}

/** A threshold as events and the API show it. */
export function thresholdView(t: BalanceThreshold): { id: string; kind: ThresholdKind; value: string } {
  return { id: t.id, kind: t.kind, value: t.value.toString() };
}
