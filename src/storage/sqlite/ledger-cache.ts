import type { LedgerChanges } from '../../domain/ledger/changes.js';
import type { CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import type { CreditType, Customer, LedgerKey, MeterRecord, RateRecord } from '../../ports/storage.js';
import type { CustomerUpkeepFacts } from '../sql/plan-queries.js';
import type { LedgerHead } from '../sql/sql-store.js';
import type { CommitObserver } from './group-commit.js';

/** A workspace's meters and rates as stored. */
export type RatingRulesRecord = {
  readonly meters: readonly MeterRecord[];
  readonly rates: readonly RateRecord[];
};

/**
 * A cached ledger: its state, and its balances row's checkpoint bookkeeping as of the same moment
 * (null when unknown: the next save learns it from the upsert).
 */
type CachedLedger = { readonly snapshot: CreditLedgerSnapshot; readonly head: LedgerHead | null };

/**
 * In `rules`, null marks a workspace whose rules changed in this layer (lower layers are stale);
 * in `upkeep`, null marks a customer whose upkeep rows changed, and `upkeepCleared` the workspaces
 * where a change (a workspace-wide threshold) made every customer's upkeep stale.
 */
type Layer = {
  ledgers: Map<string, CachedLedger>;
  customers: Map<string, Customer>;
  creditTypes: Map<string, CreditType>;
  rules: Map<string, RatingRulesRecord | null>;
  upkeep: Map<string, CustomerUpkeepFacts | null>;
  upkeepCleared: Set<string>;
};
const emptyLayer = (): Layer => ({
  ledgers: new Map(),
  customers: new Map(),
  creditTypes: new Map(),
  rules: new Map(),
  upkeep: new Map(),
  upkeepCleared: new Set(),
});

/** Empties a layer in place: a job or batch layer is reused, not reallocated, for every write. */
function clearLayer(layer: Layer): void {
  // Most jobs stage a ledger and a customer or two; clearing an empty map is not free.
  if (layer.ledgers.size > 0) layer.ledgers.clear();
  if (layer.customers.size > 0) layer.customers.clear();
  if (layer.creditTypes.size > 0) layer.creditTypes.clear();
  if (layer.rules.size > 0) layer.rules.clear();
  if (layer.upkeep.size > 0) layer.upkeep.clear();
  if (layer.upkeepCleared.size > 0) layer.upkeepCleared.clear();
}

/** Deletes the entries of one workspace from a map keyed `workspace/…`. */
function deleteWorkspace(map: Map<string, unknown>, workspaceId: string): void {
  const prefix = `${workspaceId}/`;
  for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
}

const ledgerKeyOf = (key: LedgerKey) => `${key.workspaceId}/${key.customerId}/${key.creditType}`;

/**
 * Write-through cache of ledgers (open grants, active holds, cached balances) and customers for
 * the SQLite writer, so the hot path does not re-read and re-parse a customer's grants on every
 * debit. Safe because this process owns the only writer connection; changes another process
 * commits to the file are detected (`PRAGMA data_version`) and empty the cache.
 *
 * Transactional: a job stages what it read or wrote; staged state becomes visible to later jobs
 * of the same batch when the job's savepoint is released, and becomes the committed cache only
 * when the batch's COMMIT succeeds. A rolled-back job or a failed COMMIT leaves no trace.
 */
export class LedgerCache implements CommitObserver {
  private readonly committed = emptyLayer();
  private readonly batch = emptyLayer();
  private readonly job = emptyLayer();

  constructor(
    /** Reads the connection's data_version; a change means another connection committed. */
    private readonly dataVersion: () => number,
    private readonly maxLedgers = 200_000,
  ) {
    this.lastDataVersion = dataVersion();
  }

  private lastDataVersion: number;

  private find(key: LedgerKey): CachedLedger | undefined {
    const k = ledgerKeyOf(key);
    return this.job.ledgers.get(k) ?? this.batch.ledgers.get(k) ?? this.committed.ledgers.get(k);
  }

  /**
   * The ledger as of the current transaction, or undefined if not cached. Shared, not copied: a
   * snapshot is read-only (the engine copies a grant before it first changes it, see CreditLedger.mutableGrant).
   */
  getLedger(key: LedgerKey): CreditLedgerSnapshot | undefined {
    return this.find(key)?.snapshot;
  }

  /** The cached ledger's checkpoint bookkeeping, or null when the ledger or its head is not cached. */
  getHead(key: LedgerKey): LedgerHead | null {
    return this.find(key)?.head ?? null;
  }

  /** Stages a ledger just loaded from the database (read-only from now on), with its head read at the same time. */
  stageLoaded(key: LedgerKey, snapshot: CreditLedgerSnapshot, head: LedgerHead | null): void {
    this.job.ledgers.set(ledgerKeyOf(key), { snapshot, head });
  }

  /**
   * Stages the state a ledger reached with a change set just saved (its accounts, open grants and
   * active holds after) and the head its save left. The change set's arrays are immutable copies
   * that nothing else mutates, so they are kept as they are.
   */
  stageSaved(workspaceId: string, changes: LedgerChanges, head: LedgerHead | null): void {
    const key = { workspaceId, customerId: changes.customerId, creditType: changes.creditType };
    this.job.ledgers.set(ledgerKeyOf(key), {
      snapshot: {
        customerId: changes.customerId,
        creditType: changes.creditType,
        accounts: changes.accounts,
        grants: changes.openGrants,
        holds: changes.activeHolds,
      },
      head,
    });
  }

  /** Replaces the head of a cached ledger (a checkpoint backfill moved `checkpoint_at`). */
  stageHead(key: LedgerKey, head: LedgerHead | null): void {
    const found = this.find(key);
    if (found) this.job.ledgers.set(ledgerKeyOf(key), { snapshot: found.snapshot, head });
  }

  getCustomer(workspaceId: string, customerId: string): Customer | undefined {
    const k = `${workspaceId}/${customerId}`;
    return this.job.customers.get(k) ?? this.batch.customers.get(k) ?? this.committed.customers.get(k);
  }

  /**
   * Customers never disappear once they exist, and change only through a write that stages the
   * new version here (a rolled-back job drops it with the rest of the job).
   */
  stageCustomer(customer: Customer): void {
    this.job.customers.set(`${customer.workspaceId}/${customer.id}`, customer);
  }

  getCreditType(workspaceId: string, id: string): CreditType | undefined {
    const k = `${workspaceId}/${id}`;
    return this.job.creditTypes.get(k) ?? this.batch.creditTypes.get(k) ?? this.committed.creditTypes.get(k);
  }

  /**
   * Credit types never change or disappear once they exist (no update or delete in the port), so a
   * found one stays valid; staged like customers, a rolled-back job drops it.
   */
  stageCreditType(creditType: CreditType): void {
    this.job.creditTypes.set(`${creditType.workspaceId}/${creditType.id}`, creditType);
  }

  /** A workspace's rating rules (meters and rates never change once created; new ones invalidate). */
  getRules(workspaceId: string): RatingRulesRecord | undefined {
    for (const layer of [this.job, this.batch, this.committed]) {
      if (layer.rules.has(workspaceId)) return layer.rules.get(workspaceId) ?? undefined;
    }
    return undefined;
  }

  stageRules(workspaceId: string, rules: RatingRulesRecord | null): void {
    this.job.rules.set(workspaceId, rules);
  }

  /** A customer's upkeep facts (due subscriptions, auto top-up, thresholds), if known and current. */
  getUpkeep(workspaceId: string, customerId: string): CustomerUpkeepFacts | undefined {
    const k = `${workspaceId}/${customerId}`;
    // Unrolled (no array of layers): this runs on every write of every customer.
    let found = this.job.upkeep.get(k);
    if (found !== undefined || this.job.upkeepCleared.has(workspaceId)) return found ?? undefined;
    found = this.batch.upkeep.get(k);
    if (found !== undefined || this.batch.upkeepCleared.has(workspaceId)) return found ?? undefined;
    return this.committed.upkeep.get(k) ?? undefined;
  }

  stageUpkeep(workspaceId: string, customerId: string, facts: CustomerUpkeepFacts): void {
    this.job.upkeep.set(`${workspaceId}/${customerId}`, facts);
  }

  /**
   * A row the customer's upkeep is read from changed (a subscription, its auto top-up rule, one of
   * its thresholds); null `customerId`: a workspace-wide threshold, so every customer's.
   */
  invalidateUpkeep(workspaceId: string, customerId: string | null): void {
    if (customerId !== null) {
      this.job.upkeep.set(`${workspaceId}/${customerId}`, null);
      return;
    }
    deleteWorkspace(this.job.upkeep, workspaceId);
    this.job.upkeepCleared.add(workspaceId);
  }

  beforeBatch(): void {
    const version = this.dataVersion();
    if (version !== this.lastDataVersion) {
      this.committed.ledgers.clear();
      this.committed.customers.clear();
      this.committed.creditTypes.clear();
      this.committed.rules.clear();
      this.committed.upkeep.clear();
      this.lastDataVersion = version;
    }
  }

  jobSucceeded(): void {
    for (const [k, v] of this.job.ledgers) this.batch.ledgers.set(k, v);
    for (const [k, v] of this.job.customers) this.batch.customers.set(k, v);
    for (const [k, v] of this.job.creditTypes) this.batch.creditTypes.set(k, v);
    for (const [k, v] of this.job.rules) this.batch.rules.set(k, v);
    for (const workspaceId of this.job.upkeepCleared) {
      deleteWorkspace(this.batch.upkeep, workspaceId);
      this.batch.upkeepCleared.add(workspaceId);
    }
    for (const [k, v] of this.job.upkeep) this.batch.upkeep.set(k, v);
    clearLayer(this.job);
  }

  jobFailed(): void {
    clearLayer(this.job);
  }

  batchCommitted(): void {
    for (const [k, v] of this.batch.ledgers) {
      this.committed.ledgers.delete(k);
      this.committed.ledgers.set(k, v);
    }
    for (const [k, v] of this.batch.customers) this.committed.customers.set(k, v);
    for (const [k, v] of this.batch.creditTypes) this.committed.creditTypes.set(k, v);
    for (const [k, v] of this.batch.rules) {
      if (v === null) this.committed.rules.delete(k);
      else this.committed.rules.set(k, v);
    }
    for (const workspaceId of this.batch.upkeepCleared) deleteWorkspace(this.committed.upkeep, workspaceId);
    for (const [k, v] of this.batch.upkeep) {
      if (v === null) this.committed.upkeep.delete(k);
      else this.committed.upkeep.set(k, v);
    }
    clearLayer(this.batch);
    this.evict(this.committed.ledgers);
    this.evict(this.committed.customers);
    this.evict(this.committed.creditTypes);
    this.evict(this.committed.upkeep);
  }

  batchFailed(): void {
    clearLayer(this.batch);
    clearLayer(this.job);
  }

  /** Drops the least recently written entries beyond the bound (Map keeps insertion order). */
  private evict(map: Map<string, unknown>): void {
    let excess = map.size - this.maxLedgers;
    if (excess <= 0) return;
    for (const k of map.keys()) {
      map.delete(k);
      if (--excess <= 0) break;
    }
  }
}
