import type { Amount } from '../../domain/amount/amount.js';
import type { Feature } from '../../domain/catalog/catalog.js';
import type { CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import { extend } from '../../domain/objects.js';
import type { Subscription } from '../../domain/plans/subscription.js';
import type { Instant } from '../../domain/time/instant.js';
import type { Customer, LedgerKey, PlanReadOperations, RateRecord } from '../../ports/storage.js';
import type { AccountsRow, GrantRow, HoldRow } from '../rows.js';
import type { SqlExecutor } from '../sql/executor.js';
import { PlanReads } from '../sql/plan-queries.js';
import { Q } from '../sql/queries.js';
import { ledgerParams, SqlReads, snapshotFromRows } from '../sql/sql-store.js';

/**
 * The tables the cached answers below are read from (the queries `Q.getBalances`, `Q.openGrants`,
 * `Q.activeHolds`, `Q.getCustomer`, `Q.getRate`, `PQ.subscriptionsOf`, `PQ.getFeature`,
 * `PQ.getFeatureUsage`; a test keeps this list and those queries in step): a commit that wrote
 * none of them leaves every cached answer true.
 */
export const READ_CACHED_TABLES: ReadonlySet<string> = new Set([
  'balances',
  'grants',
  'holds',
  'customers',
  'subscriptions',
  'features',
  'rates',
  'feature_usage',
]);

/** Entries kept before the cache starts over (a bound on memory, not a tuning knob). */
const LIMIT = 50_000;

/**
 * What the read connection remembers between commits. SQLite's `PRAGMA data_version` on this
 * connection changes whenever any other connection (this process's writer, or another process)
 * commits, so every read first compares it and, on a change, drops everything unless the change
 * is known to leave every cached answer true: a cached answer is always what the database would
 * answer now. It pays off on read-mostly traffic (checks, balance reads between writes); under
 * constant ledger writes it simply misses.
 *
 * Known harmless: commits of this process's writer that wrote none of the cached tables (the
 * writer says so with each commit, {@link noteCommit}): outbox fan-out, webhook deliveries,
 * expiry notices, API key use, idempotency records. Without that, every such background commit
 * emptied the cache and the next read of every customer went to disk. A commit by another process
 * is never known harmless: the writer connection's own `data_version`, which only other
 * connections' commits change, tells whether there was one.
 */
class Freshness {
  private version = Number.NaN;
  private writerVersion = Number.NaN;
  /** Whether a commit of this process's writer since the last change seen may have changed cached tables. */
  private ownCommitsChangedTables = false;
  /**
   * Bumped on every clear. A read notes it before its query and stores its answer only if it is
   * unchanged after: an answer read before a commit that another read has since noticed is never
   * filed as current.
   */
  generation = 0;
  readonly ledgers = new Map<string, CreditLedgerSnapshot>();
  readonly customers = new Map<string, Customer | null>();
  readonly subscriptions = new Map<string, readonly Subscription[]>();
  readonly features = new Map<string, Feature | null>();
  readonly rates = new Map<string, RateRecord | null>();
  readonly featureUsage = new Map<string, Amount>();

  /**
   * Whether `data_version` was already read in this turn of the event loop. Reading it is a
   * statement of its own (a few µs, most of a cached check's cost), so it is read once per turn:
   * a commit by another process is seen from the next turn on, which no client can tell apart
   * (a request that follows anything it learnt from that process arrives in a later turn). This
   * process's writer calls {@link noteCommit}, so its own commits are seen at once.
   */
  private checkedThisTurn = false;
  private readonly endTurn = () => {
    this.checkedThisTurn = false;
  };

  constructor(
    private readonly dataVersion: () => number,
    /** `data_version` of this process's writer connection: it changes only when another process commits. */
    private readonly writerDataVersion: () => number,
  ) {}

  /**
   * Drops everything if something that may change a cached answer was committed since the last
   * read; returns the generation.
   */
  check(): number {
    if (this.checkedThisTurn) return this.generation;
    const version = this.dataVersion();
    if (version !== this.version) {
      // Both versions are read before either is noted: if a read throws, the change stays unseen
      // and the next read decides again (noted first, a throw would have kept a stale cache).
      const writerVersion = this.writerDataVersion();
      const foreignCommit = writerVersion !== this.writerVersion;
      this.version = version;
      this.writerVersion = writerVersion;
      if (foreignCommit || this.ownCommitsChangedTables) this.clear();
      this.ownCommitsChangedTables = false;
    }
    this.checkedThisTurn = true;
    setImmediate(this.endTurn);
    return this.generation;
  }

  /**
   * This process's writer committed (`changedCachedTables`: whether the batch may have written a
   * table this cache reads): the next read looks at `data_version` again.
   */
  noteCommit(changedCachedTables: boolean): void {
    if (changedCachedTables) this.ownCommitsChangedTables = true;
    this.checkedThisTurn = false;
  }

  /** Remembers a value read in `generation`, unless the cache moved on meanwhile. */
  put<V>(generation: number, map: Map<string, V>, key: string, value: V): void {
    if (generation !== this.generation) return;
    const size =
      this.ledgers.size +
      this.customers.size +
      this.subscriptions.size +
      this.features.size +
      this.rates.size +
      this.featureUsage.size;
    if (size >= LIMIT) {
      this.clear();
      return;
    }
    map.set(key, value);
  }

  private clear(): void {
    this.generation += 1;
    this.ledgers.clear();
    this.customers.clear();
    this.subscriptions.clear();
    this.features.clear();
    this.rates.clear();
    this.featureUsage.clear();
  }
}

const key2 = (a: string, b: string) => `${a}\u0000${b}`;

/** The plan reads of the read connection, with subscriptions and features remembered. */
class CachedPlanReads extends PlanReads implements PlanReadOperations {
  constructor(
    db: SqlExecutor,
    private readonly cache: Freshness,
  ) {
    super(db);
  }

  override async subscriptionsOf(workspaceId: string, customerId: string): Promise<Subscription[]> {
    const generation = this.cache.check();
    const key = key2(workspaceId, customerId);
    const known = this.cache.subscriptions.get(key);
    // Copies: callers may change a subscription they are about to save.
    if (known) return known.map(copySubscription);
    const found = await super.subscriptionsOf(workspaceId, customerId);
    this.cache.put(generation, this.cache.subscriptions, key, found.map(copySubscription));
    return found;
  }

  /** Read by every check of a feature with a usage limit. */
  override async getFeatureUsage(
    workspaceId: string,
    customerId: string,
    featureId: string,
    periodStart: Instant,
  ): Promise<Amount> {
    const generation = this.cache.check();
    const key = `${workspaceId}\u0000${customerId}\u0000${featureId}\u0000${periodStart}`;
    const known = this.cache.featureUsage.get(key);
    if (known) return known;
    const found = await super.getFeatureUsage(workspaceId, customerId, featureId, periodStart);
    this.cache.put(generation, this.cache.featureUsage, key, found);
    return found;
  }

  override async getFeature(workspaceId: string, id: string): Promise<Feature | null> {
    const generation = this.cache.check();
    const key = key2(workspaceId, id);
    if (this.cache.features.has(key)) return this.cache.features.get(key) ?? null;
    const found = await super.getFeature(workspaceId, id);
    this.cache.put(generation, this.cache.features, key, found);
    return found;
  }
}

function copySubscription(s: Subscription): Subscription {
  return extend(s, {
    nextAllowancePeriod: [...s.nextAllowancePeriod],
    grantedCreditTypes: [...s.grantedCreditTypes],
  });
}

/** The reads of the SQLite read connection, remembering ledgers, customers, subscriptions, features, rates and feature usage. */
export class CachedSqliteReads extends SqlReads {
  private readonly cache: Freshness;

  constructor(db: SqlExecutor, dataVersion: () => number, writerDataVersion: () => number) {
    const cache = new Freshness(dataVersion, writerDataVersion);
    super(db, new CachedPlanReads(db, cache));
    this.cache = cache;
  }

  /**
   * Called after every commit of this process's writer, so its writes are seen at once; says
   * whether the commit may have written a table this cache reads.
   */
  noteCommit(changedCachedTables: boolean): void {
    this.cache.noteCommit(changedCachedTables);
  }

  override async loadLedger(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    const generation = this.cache.check();
    const id = `${key.workspaceId}\u0000${key.customerId}\u0000${key.creditType}`;
    const known = this.cache.ledgers.get(id);
    // Shared, not copied: snapshots are read-only (the ledger engine copies a grant before changing it).
    if (known) return known;
    const loaded = this.loadLedgerAtOnce(key);
    this.cache.put(generation, this.cache.ledgers, id, loaded);
    return loaded;
  }

  /**
   * The three reads of a ledger with no await between them: better-sqlite3 answers synchronously,
   * so no commit can land in between and the balances, grants and holds agree.
   */
  private loadLedgerAtOnce(key: LedgerKey): CreditLedgerSnapshot {
    const params = ledgerParams(key);
    const accounts = this.db.get<AccountsRow>(Q.getBalances, params) as AccountsRow | undefined;
    const grants = this.db.all<GrantRow>(Q.openGrants, params) as GrantRow[];
    const holds = this.db.all<HoldRow>(Q.activeHolds, params) as HoldRow[];
    return snapshotFromRows(key, accounts, grants, holds);
  }

  /** Read by every check of a feature priced by rates. */
  override async getRate(workspaceId: string, id: string): Promise<RateRecord | null> {
    const generation = this.cache.check();
    const key = key2(workspaceId, id);
    if (this.cache.rates.has(key)) return this.cache.rates.get(key) ?? null;
    const found = await super.getRate(workspaceId, id);
    this.cache.put(generation, this.cache.rates, key, found);
    return found;
  }

  override async getCustomer(workspaceId: string, customerId: string): Promise<Customer | null> {
    const generation = this.cache.check();
    const key = key2(workspaceId, customerId);
    if (this.cache.customers.has(key)) return this.cache.customers.get(key) ?? null;
    const found = await super.getCustomer(workspaceId, customerId);
    this.cache.put(generation, this.cache.customers, key, found);
    return found;
  }
}
