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
import type { LedgerChanges } from '../domain/ledger/changes.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import { extend } from '../domain/objects.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { LedgerKey, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { appendFacts } from './outbox.js';

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

/**
 * The balance a ledger had when its write loaded it, made by {@link noteLoaded} and handed to
 * {@link appendBalanceFacts} with each save of that ledger (the ledger session keeps it beside the
 * ledger). Updated by each save, so a ledger saved twice in one transaction reports only what
 * changed since its first save.
 */
export interface LoadedBalance {
  point: BalancePoint;
  /** Whether a threshold may apply (false when the write's upkeep read found none for the customer). */
  readonly thresholds: boolean;
  /**
   * Grants already closed when loaded (null: none, the usual case, since storage loads open
   * grants): only the closing by expiry of the others (open at load, or granted since) is news.
   */
  closed: ReadonlySet<string> | null;
}

/**
 * The balance a ledger had when it was loaded for update (call right after loading, before the
 * engine moves it), and whether a balance threshold may apply to its customer (default: assume so
 * and read them). Kept by the caller (the ledger session), not in a side table: weak maps keyed
 * by every write's ledger cost about 3 % of a debit's main-thread CPU (bench/README.md).
 */
export function noteLoaded(ledger: CreditLedger, thresholds = true): LoadedBalance {
  return { point: pointOf(ledger), closed: closedGrantIds(ledger), thresholds };
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

/** A fact about one ledger's balance, before the outbox message around it is made. */
type LedgerFact = readonly [type: string, data: Record<string, unknown>];

/**
 * Appends the balance facts of one ledger being persisted (`changes`: the change set just taken
 * from it and saved; `loaded`: what {@link noteLoaded} recorded, or the previous save left), and
 * persists the thresholds' state, in the write's transaction. When nothing is to be said and no
 * threshold can apply (every debit of a customer without thresholds), it decides synchronously
 * and returns undefined: no read, no await. Otherwise it returns the promise of one indexed read
 * of the thresholds that may apply (plus one read of the granted amount only when a percent
 * threshold applies) and of the appends.
 */
export function appendBalanceFacts(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  ledger: CreditLedger,
  changes: LedgerChanges,
  now: Instant,
  loaded: LoadedBalance,
): Promise<void> | undefined {
  // The balance as saved: grants that are not open hold nothing, so the open ones are enough.
  const after = recordedPoint(changes.openGrants, changes.accounts.overage);
  const before = loaded.point;
  // Made on the first fact: almost every save (a debit, a burn) has none.
  let facts: LedgerFact[] | null = null;
  const fact = (type: string, data: Record<string, unknown>): void => {
    facts ??= [];
    facts.push([type, data]);
  };
  if (changes.grants.length > 0) expiredGrantFacts(changes, loaded.closed, fact);
  for (const hold of changes.holds) {
    if (hold.status !== 'expired') continue;
    fact('hold.expired', {
      hold_id: hold.id,
      amount: hold.amount.toString(),
      expired_at: formatInstant(hold.expiresAt),
    });
  }
  const moved = !before.available.equals(after.available) || !before.overageOwed.equals(after.overageOwed);
  // Told after any threshold crossing of the same save, as they always were.
  let trailing: LedgerFact[] | null = null;
  if (moved) {
    if (depleted(before, after)) trailing = [['balance.depleted', movedData(before, after)]];
    if (overageStarted(before, after)) {
      trailing ??= [];
      trailing.push([
        'overage.started',
        extend(movedData(before, after), { overage: after.overageOwed.toString() }),
      ]);
    }
  }
  // A ledger saved twice in one transaction reports only what changed since the first save. Only
  // a changed grant can have closed since the closed set was taken.
  loaded.point = after;
  if (changes.grants.length > 0) loaded.closed = closedGrantIds(ledger);
  const readThresholds = moved && loaded.thresholds;
  if (!readThresholds && facts === null && trailing === null) return undefined;
  return appendFactsAndThresholds(ctx, tx, workspaceId, ledger, now, before, after, {
    leading: facts ?? [],
    trailing: trailing ?? [],
    readThresholds,
  });
}

/** `balance_before` and `balance_after` of a fact about a balance that moved. */
function movedData(before: BalancePoint, after: BalancePoint): Record<string, unknown> {
  return { balance_before: before.available.toString(), balance_after: after.available.toString() };
}

/**
 * The slow part of {@link appendBalanceFacts}: the thresholds that may apply (when the balance
 * moved), each crossing persisted and told, then every fact appended to the outbox in the order
 * they always had: expiries, threshold crossings, depletion and overage.
 */
async function appendFactsAndThresholds(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  ledger: CreditLedger,
  now: Instant,
  before: BalancePoint,
  after: BalancePoint,
  told: {
    /** Expired grants and holds: before any threshold fact. */
    readonly leading: readonly LedgerFact[];
    /** Depleted, overage started: after them. */
    readonly trailing: readonly LedgerFact[];
    readonly readThresholds: boolean;
  },
): Promise<void> {
  const thresholdFacts: LedgerFact[] = [];
  if (told.readThresholds) {
    // Runway thresholds are the runway sweep's (src/services/runway-alerts.ts), not a write's.
    const key: LedgerKey = { workspaceId, customerId: ledger.customerId, creditType: ledger.creditType };
    const candidates = (await tx.alerts.thresholdsForLedger(key)).filter((c) =>
      isBalanceLevelThreshold(c.threshold),
    );
    if (candidates.length > 0) {
      const applicable = applicableThresholds(ledger.customerId, candidates as ArmedThreshold[]);
      const granted = applicable.some((a) => a.threshold.kind === 'percent')
        ? await tx.alerts.grantedInForce(key, now)
        : Amount.ZERO;
      for (const t of thresholdTransitions(applicable, before, after, granted)) {
        const threshold = extend(thresholdView(t.threshold), { level: t.level.toString() });
        if (t.kind === 'low') {
          await tx.alerts.markThresholdFired(workspaceId, t.threshold.id, ledger.customerId, now);
          thresholdFacts.push(['balance.low', { threshold, ...movedData(before, after) }]);
        } else {
          await tx.alerts.markThresholdRecovered(workspaceId, t.threshold.id, ledger.customerId);
          thresholdFacts.push(['balance.recovered', { threshold, ...movedData(before, after) }]);
        }
      }
    }
  }
  const all = [...told.leading, ...thresholdFacts, ...told.trailing];
  if (all.length === 0) return;
  await appendFacts(
    ctx,
    tx,
    now,
    all.map(([type, data]) => ({
      workspaceId,
      type,
      customerId: ledger.customerId,
      data: { customer_id: ledger.customerId, credit_type: ledger.creditType, ...data },
    })),
  );
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
