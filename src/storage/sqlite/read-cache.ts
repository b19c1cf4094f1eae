import type { Feature } from '../../domain/catalog/catalog.js';
import type { CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import type { Subscription } from '../../domain/plans/subscription.js';
import type { Customer, LedgerKey, PlanReadOperations } from '../../ports/storage.js';
import type { SqlExecutor } from '../sql/executor.js';
import { PlanReads } from '../sql/plan-queries.js';
import { SqlReads } from '../sql/sql-store.js';
import { cloneSnapshot } from './ledger-cache.js';

/** Entries kept before the cache starts over (a bound on memory, not a tuning knob). */
const LIMIT = 50_000;

/**
 * What the read connection remembers between commits. SQLite's `PRAGMA data_version` on this
 * connection changes whenever any other connection (this process's writer, or another process)
 * commits, so every read first compares it and drops everything on a change: a cached answer is
 * always what the database would answer now. It pays off on read-mostly traffic (checks, balance
 * reads between writes); under constant writes it simply misses.
 */
class Freshness {
  private version = Number.NaN;
  readonly ledgers = new Map<string, CreditLedgerSnapshot>();
  readonly customers = new Map<string, Customer | null>();
  readonly subscriptions = new Map<string, readonly Subscription[]>();
  readonly features = new Map<string, Feature | null>();

  constructor(private readonly dataVersion: () => number) {}

  /** Drops everything if anything was committed since the last read. */
  check(): void {
    const version = this.dataVersion();
    if (version === this.version) return;
    this.version = version;
    this.clear();
  }

  /** Remembers a value, starting over when the bound is reached. */
  put<V>(map: Map<string, V>, key: string, value: V): void {
    if (this.ledgers.size + this.customers.size + this.subscriptions.size + this.features.size >= LIMIT) {
      this.clear();
    }
    map.set(key, value);
  }

  private clear(): void {
    this.ledgers.clear();
    this.customers.clear();
    this.subscriptions.clear();
    this.features.clear();
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
    this.cache.check();
    const key = key2(workspaceId, customerId);
    const known = this.cache.subscriptions.get(key);
    // Copies: callers may change a subscription they are about to save.
    if (known) return known.map(copySubscription);
    const found = await super.subscriptionsOf(workspaceId, customerId);
    this.cache.put(this.cache.subscriptions, key, found.map(copySubscription));
    return found;
  }

  override async getFeature(workspaceId: string, id: string): Promise<Feature | null> {
    this.cache.check();
    const key = key2(workspaceId, id);
    if (this.cache.features.has(key)) return this.cache.features.get(key) ?? null;
    const found = await super.getFeature(workspaceId, id);
    this.cache.put(this.cache.features, key, found);
    return found;
  }
}

function copySubscription(s: Subscription): Subscription {
  return {
    ...s,
    nextAllowancePeriod: [...s.nextAllowancePeriod],
    grantedCreditTypes: [...s.grantedCreditTypes],
  };
}

/** The reads of the SQLite read connection, remembering ledgers, customers, subscriptions and features. */
export class CachedSqliteReads extends SqlReads {
  private readonly cache: Freshness;

  constructor(db: SqlExecutor, dataVersion: () => number) {
    const cache = new Freshness(dataVersion);
    super(db, new CachedPlanReads(db, cache));
    this.cache = cache;
  }

  override async loadLedger(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    this.cache.check();
    const id = `${key.workspaceId}\u0000${key.customerId}\u0000${key.creditType}`;
    const known = this.cache.ledgers.get(id);
    // Copies both ways: a CreditLedger changes the grants and holds it is given.
    if (known) return cloneSnapshot(known);
    const loaded = await super.loadLedger(key);
    this.cache.put(this.cache.ledgers, id, cloneSnapshot(loaded));
    return loaded;
  }

  override async getCustomer(workspaceId: string, customerId: string): Promise<Customer | null> {
    this.cache.check();
    const key = key2(workspaceId, customerId);
    if (this.cache.customers.has(key)) return this.cache.customers.get(key) ?? null;
    const found = await super.getCustomer(workspaceId, customerId);
    this.cache.put(this.cache.customers, key, found);
    return found;
  }
}
