import type { BalanceThreshold } from '../domain/alerts/balance-thresholds.js';
import type { Amount } from '../domain/amount/amount.js';
import type { CreditPack, Feature, PlanVersion } from '../domain/catalog/catalog.js';
import type { LedgerChanges } from '../domain/ledger/changes.js';
import type {
  CreditLedgerSnapshot,
  DebitRecord,
  ReversibleDebit,
  SettlementHistory,
} from '../domain/ledger/credit-ledger.js';
import type { Movement } from '../domain/ledger/point-in-time.js';
import type { GrantState, GrantStatus, HoldState, LedgerEntry } from '../domain/ledger/types.js';
import type { CreditLease, FloatingSeat, License, Machine } from '../domain/licensing/license.js';
import type { PaymentRecord, PendingTopUp, StripeEventRecord } from '../domain/payments/payments.js';
import type { AutoTopUp, Purchase, Subscription } from '../domain/plans/subscription.js';
import type { BreakagePolicy } from '../domain/revenue/recognition.js';
import type { Instant } from '../domain/time/instant.js';

/**
 * What every write for a customer must know beyond its ledger: whether a subscription reset is
 * due, the auto top-up rule, and whether any balance threshold may apply.
 */
export interface CustomerUpkeep {
  readonly subscriptionsDue: boolean;
  readonly autoTopUp: AutoTopUp | null;
  readonly balanceThresholds: boolean;
}

/** A value now (SQLite, synchronous) or later (PostgreSQL); services always `await` it. */
export type Awaitable<T> = T | Promise<T>;

/**
 * What a database URL points at, before opening it: nothing (`missing`), a database without
 * Burndown's schema (`not_migrated`), or a Burndown database (`ready`). Commands that read the
 * books refuse the first two, so a wrong path never "proves" an empty ledger.
 */
export type DatabaseState = 'missing' | 'not_migrated' | 'ready';

/** A customer of a workspace: the party credits belong to. */
export interface Customer {
  readonly workspaceId: string;
  readonly id: string;
  readonly name: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Instant;
}

/** A unit customers hold balances in (`credits` always exists). */
export interface CreditType {
  readonly workspaceId: string;
  readonly id: string;
  readonly name: string | null;
  readonly createdAt: Instant;
}

/** Which operations a key may call: admin ⊇ write ⊇ read; `check` may only check entitlements and read balances. */
export type ApiKeyScope = 'admin' | 'write' | 'read' | 'check';

export interface ApiKeyRecord {
  readonly id: string;
  readonly workspaceId: string;
  readonly scope: ApiKeyScope;
  readonly name: string | null;
  readonly createdAt: Instant;
  readonly revokedAt: Instant | null;
  /**
   * The key's `resource:action` permissions, or null for "its scope's preset" (keys made with a
   * scope only, and every key made before permissions existed). Names are checked by the services.
   */
  readonly permissions: readonly string[] | null;
  /** When the key stops working (401 `api_key_expired`); null: never. */
  readonly expiresAt: Instant | null;
  /** When the key was last used, to within a minute (written at most once a minute per key). */
  readonly lastUsedAt: Instant | null;
  /** The key's own rate limit (`<requests>/<seconds>s`), or null for the server's default. */
  readonly rateLimit: string | null;
}

/**
 * A key to store: its record and the SHA-256 of the key. The governance fields default to the
 * scope's preset, no expiry, never used, the server's default rate limit.
 */
export type NewApiKey = Omit<ApiKeyRecord, 'permissions' | 'expiresAt' | 'lastUsedAt' | 'rateLimit'> &
  Partial<Pick<ApiKeyRecord, 'permissions' | 'expiresAt' | 'lastUsedAt' | 'rateLimit'>> & {
    readonly keyHash: string;
  };

/** A workspace: the boundary nothing crosses (every object and key belongs to exactly one). */
export interface WorkspaceRecord {
  readonly id: string;
  readonly name: string | null;
  readonly createdAt: Instant;
}

/**
 * One audit record: an administrative change, who made it (the key's id), under which request,
 * what it was before and after. Records of one workspace form a hash chain: `prevHash` is the
 * previous record's `hash` (empty for the first) and `hash` covers this record's canonical form
 * (src/services/audit.ts defines it); `seq` counts from 1 without gaps.
 */
export interface AuditRecord {
  readonly workspaceId: string;
  readonly seq: number;
  readonly id: string;
  readonly at: Instant;
  readonly actorKeyId: string | null;
  readonly requestId: string | null;
  readonly action: string;
  readonly targetType: string;
  readonly targetId: string;
  /** Canonical JSON text of the state before (null: created). */
  readonly before: string | null;
  /** Canonical JSON text of the state after (null: deleted). */
  readonly after: string | null;
  readonly prevHash: string;
  readonly hash: string;
}

/** Filters of the audit log listing (all optional; `from` inclusive, `to` exclusive). */
export interface AuditQuery {
  readonly workspaceId: string;
  readonly actorKeyId: string | null;
  readonly action: string | null;
  readonly targetType: string | null;
  readonly targetId: string | null;
  readonly from: Instant | null;
  readonly to: Instant | null;
}

/** The audit log's reads. */
export interface AuditReadOperations {
  /** One page of the records matching the query, in `seq` order. */
  list(query: AuditQuery, page: PageRequest): Awaitable<Page<AuditRecord>>;
  /** The chain heads: per workspace with records, the last `seq` and its hash. */
  heads(): Awaitable<readonly { workspaceId: string; seq: number; hash: string }[]>;
}

/** The audit log's writes: append only (no update, no delete). */
export interface AuditWriteOperations extends AuditReadOperations {
  /**
   * Claims the next position of a workspace's chain and locks its head until the transaction ends
   * (on PostgreSQL a row lock: appenders of one workspace queue here, so the chain stays linear).
   * Returns the claimed `seq` and the hash of the record before it ('' for the first).
   */
  claimNext(workspaceId: string): Awaitable<{ seq: number; prevHash: string }>;
  /** Stores a record at the position claimed and makes it the chain's head. */
  append(record: AuditRecord): Awaitable<void>;
}

/**
 * Tokens of shared rate-limit buckets (PostgreSQL: one row per bucket). A process takes a batch of
 * tokens in one statement and spends them locally; tokens are never given back.
 */
export interface RateLimitLeases {
  /**
   * Refills the bucket for the time since it was last touched (`refillPerMs`, up to `capacity`),
   * then takes up to `want` whole tokens; returns how many it took (0 when the bucket is empty).
   */
  take(input: {
    readonly bucketKey: string;
    readonly want: number;
    readonly capacity: number;
    readonly refillPerMs: number;
    readonly now: Instant;
  }): Promise<number>;
}

/** A stored first response to an Idempotency-Key, replayed to identical retries. */
export interface IdempotencyRecord {
  readonly fingerprint: string;
  readonly statusCode: number;
  readonly responseBody: string;
  readonly createdAt: Instant;
}

/** A meter as stored (paths as the client wrote them). */
export interface MeterRecord {
  readonly workspaceId: string;
  readonly id: string;
  readonly eventType: string;
  readonly aggregation: 'sum' | 'count' | 'max' | 'unique_count';
  readonly valueProperty: string | null;
  readonly groupBy: Readonly<Record<string, string>>;
  readonly createdAt: Instant;
}

/** A rate as stored; `pricing` is the API's pricing fields, amounts as decimal strings. */
export interface RateRecord {
  readonly workspaceId: string;
  readonly id: string;
  readonly meterId: string;
  readonly filter: Readonly<Record<string, string>>;
  readonly creditType: string;
  readonly pricing: StoredPricing;
  /** Order of creation within the workspace (1, 2, …): events record the last one in force when they arrived. */
  readonly seq: number;
  readonly createdAt: Instant;
}

/** Pricing as stored and as the API shows it. */
export type StoredPricing =
  | { readonly credits_per_unit: string }
  | { readonly package: { readonly size: string; readonly credits: string } }
  | { readonly tiers: readonly { readonly up_to: string | null; readonly credits_per_unit: string }[] };

/** A usage event as stored. `eventKey` identifies it in its workspace (source and id for CloudEvents). */
export interface StoredEvent {
  readonly workspaceId: string;
  readonly eventKey: string;
  readonly id: string;
  readonly source: string | null;
  readonly type: string;
  readonly customerId: string;
  readonly time: Instant;
  readonly data: unknown;
  /** The highest rate `seq` of the workspace when the event was ingested: those rates had to rate it. */
  readonly rulesSeq: number;
  readonly receivedAt: Instant;
  /** No meter could read it when it arrived (no meter of its type, or a missing or non-numeric value). */
  readonly unmetered: boolean;
}

/** A stored event with what happened to it after arrival, as `GET /v1/events` lists it. */
export interface ListedEvent extends StoredEvent {
  /** How many times its id was delivered again (and refused as a duplicate). */
  readonly duplicates: number;
  /** When its burns were reversed and it left meter usage; null while it counts. */
  readonly reversedAt: Instant | null;
}

/**
 * Which events to list, in (time, identity) order. `burned`: events a meter read (whatever their
 * rates burned); `unmetered`: events no meter could read; `duplicate`: events delivered again.
 */
export interface EventListQuery {
  readonly workspaceId: string;
  readonly customerId: string | null;
  readonly type: string | null;
  readonly from: Instant | null;
  readonly to: Instant | null;
  readonly status: 'burned' | 'unmetered' | 'duplicate' | null;
}

/** The burn of one event by one rate (at most one per pair). */
export interface EventBurn {
  readonly workspaceId: string;
  readonly eventKey: string;
  readonly rateId: string;
  readonly customerId: string;
  readonly debitId: string | null;
  readonly quantity: Amount;
  readonly credits: Amount;
  readonly createdAt: Instant;
}

/** Which stored events to read, oldest first. */
export interface EventQuery {
  readonly workspaceId: string;
  readonly type: string;
  readonly customerId: string | null;
  readonly from: Instant | null;
  readonly to: Instant | null;
  /** Rows read per query (default 2000); smaller keeps each synchronous read short. */
  readonly batchSize?: number;
}

/**
 * Where a keyset page resumes: the sort key of the last item, as parts (an id; a creation instant
 * and an id; an entry instant and sequence). Only the adapter that made a key reads its parts
 * (src/storage/sql/paging.ts); services pass keys through untouched, and how they travel to
 * clients (an opaque cursor string) is the transport's business (src/http/pagination.ts).
 */
export type ResumeKey = readonly string[];

/**
 * What a point-in-time read of one ledger needs: the balances of the latest checkpoint at or
 * before the instant, and the entries after that checkpoint's cut up to the instant (see
 * src/storage/sql/checkpoints.ts for the invariant that makes the two add up to the balance).
 */
export interface CheckpointedMovements {
  /** Units per account at the checkpoint (empty without one). */
  readonly start: ReadonlyMap<string, bigint>;
  /** The instant of that checkpoint, or null when the read summed from the first entry. */
  readonly checkpointAt: Instant | null;
  /** Entries after the checkpoint, dated at or before the instant read, in no particular order. */
  readonly movements: readonly (Movement & { readonly grantId: string | null })[];
}

/**
 * The one request of every listing of this port (keyset pagination): at most `limit` items,
 * strictly after `after` (a {@link Page.nextAfter} this listing returned; null: from the start).
 * A key of another listing's shape is refused as a 400 `invalid_request`, never a 500.
 */
export interface PageRequest {
  readonly after: ResumeKey | null;
  readonly limit: number;
}

/**
 * The one answer of every listing of this port: the items, and where the next page resumes —
 * null when there is no more (`nextAfter !== null` is "has more"). Work queues that are drained
 * by changing state (`claim…`, `find…Due…`) and the outbox's tail read by `seq` are not listings.
 */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextAfter: ResumeKey | null;
}

/** A stored ledger entry with its position in the customer's history. */
export interface StoredEntry extends LedgerEntry {
  readonly seq: string;
  readonly recordedAt: Instant;
}

/**
 * A ledger entry as an export writes it: its amounts are their canonical decimal text (what
 * `Amount.toString()` gives), so an export of millions of entries parses no amount per row.
 */
export interface ExportedEntry extends Omit<StoredEntry, 'amount' | 'balanceAfter'> {
  readonly amount: string;
  readonly balanceAfter: string;
}

/** The ledger of one customer and credit type, identified for loading and locking. */
export interface LedgerKey {
  readonly workspaceId: string;
  readonly customerId: string;
  readonly creditType: string;
}

/** Reads of the catalogue (features, plans, packs) and of customers' subscriptions and usage. */
export interface PlanReadOperations {
  getFeature(workspaceId: string, id: string): Awaitable<Feature | null>;
  /** Features by id. */
  listFeatures(workspaceId: string, page: PageRequest): Awaitable<Page<Feature>>;
  /** Every feature of a workspace (what ingest needs to attribute rates to features). */
  allFeatures(workspaceId: string): Awaitable<readonly Feature[]>;
  /** One version of a plan, or the latest when `version` is null. */
  getPlanVersion(workspaceId: string, id: string, version: number | null): Awaitable<PlanVersion | null>;
  /** The latest version of each plan, by id. */
  listPlans(workspaceId: string, page: PageRequest): Awaitable<Page<PlanVersion>>;
  getCreditPack(workspaceId: string, id: string): Awaitable<CreditPack | null>;
  /** Credit packs by id. */
  listCreditPacks(workspaceId: string, page: PageRequest): Awaitable<Page<CreditPack>>;
  getSubscription(workspaceId: string, id: string): Awaitable<Subscription | null>;
  /** All subscriptions of a customer, active or ended, by id. */
  subscriptionsOf(workspaceId: string, customerId: string): Awaitable<readonly Subscription[]>;
  /** One page of a customer's subscriptions, active or ended, by id. */
  listSubscriptions(
    workspaceId: string,
    customerId: string,
    page: PageRequest,
  ): Awaitable<Page<Subscription>>;
  /** A customer's subscriptions with a reset, change or end due at or before `now` (usually none). */
  dueSubscriptionsOf(
    workspaceId: string,
    customerId: string,
    now: Instant,
  ): Awaitable<readonly Subscription[]>;
  getAutoTopUp(workspaceId: string, customerId: string): Awaitable<AutoTopUp | null>;
  /**
   * What every burn needs to know about its customer beyond the ledger, in one round trip:
   * whether a subscription reset is due, the auto top-up rule, and whether any balance threshold
   * (the workspace's or the customer's own) may apply, so a save skips reading thresholds when none can.
   */
  customerUpkeep(workspaceId: string, customerId: string, now: Instant): Awaitable<CustomerUpkeep>;
  /** Usage of a feature counted in one usage-limit period (zero when none). */
  getFeatureUsage(
    workspaceId: string,
    customerId: string,
    featureId: string,
    periodStart: Instant,
  ): Awaitable<Amount>;
  /** A customer's purchases, oldest first (by creation, then id). */
  listPurchases(workspaceId: string, customerId: string, page: PageRequest): Awaitable<Page<Purchase>>;
  /** Customers with a subscription that has something due at or before `now` (renewal sweeper). */
  findDueSubscriptions(
    now: Instant,
    limit: number,
  ): Awaitable<readonly { readonly workspaceId: string; readonly customerId: string }[]>;
}

/** Writes of plans and entitlements, inside {@link Storage.write}. */
export interface PlanWriteOperations extends PlanReadOperations {
  insertFeature(feature: Feature): Awaitable<boolean>;
  updateFeature(feature: Feature): Awaitable<void>;
  insertPlanVersion(plan: PlanVersion): Awaitable<boolean>;
  insertCreditPack(pack: CreditPack): Awaitable<boolean>;
  saveSubscription(subscription: Subscription): Awaitable<void>;
  putAutoTopUp(rule: AutoTopUp): Awaitable<void>;
  /** Removes a customer's auto top-up rule; false when it had none. */
  deleteAutoTopUp(workspaceId: string, customerId: string): Awaitable<boolean>;
  setFeatureUsage(
    workspaceId: string,
    customerId: string,
    featureId: string,
    periodStart: Instant,
    quantity: Amount,
  ): Awaitable<void>;
  insertPurchase(purchase: Purchase): Awaitable<void>;
}

/** Which rows an export reads: a workspace's, optionally one customer's, optionally within [from, to). */
export interface ExportQuery {
  readonly workspaceId: string;
  readonly customerId: string | null;
  /** Inclusive lower bound of the row's instant (entries: `at`; grants and burns: creation; events: `time`). */
  readonly from: Instant | null;
  /** Exclusive upper bound of the same instant. */
  readonly to: Instant | null;
}

/** Breakage policies of a workspace: its default (null: never set) and overrides per credit pack. */
export interface RevenuePolicies {
  readonly workspaceDefault: BreakagePolicy | null;
  readonly byPack: ReadonlyMap<string, BreakagePolicy>;
}

/** An object an import created, keyed by the row's external id so a re-run finds it. */
export interface ImportRecord {
  readonly workspaceId: string;
  /** `customers`, `grants` or `opening_balances`. */
  readonly kind: string;
  readonly externalId: string;
  /** The id of what the row created (a customer or grant id). */
  readonly objectId: string;
  readonly createdAt: Instant;
}

/**
 * Finance reads: paid grants for revenue recognition, breakage policies, import records, and the
 * keyset pages the streaming exports read (each resumes strictly after a key it returned).
 */
export interface FinanceReadOperations {
  /**
   * Paid grants carrying a cost basis, issued before `createdBefore`, in (customer, credit type,
   * id) order so a caller can read each ledger's entries once.
   */
  paidGrants(
    query: {
      readonly workspaceId: string;
      readonly customerId: string | null;
      readonly createdBefore: Instant;
    },
    page: PageRequest,
  ): Awaitable<Page<GrantState>>;
  revenuePolicies(workspaceId: string): Awaitable<RevenuePolicies>;
  /**
   * The breakage policies recorded on these grants when they were sold (see
   * {@link FinanceWriteOperations.insertGrantRevenuePolicy}), by grant id; grants without one are left out.
   */
  grantRevenuePolicies(
    workspaceId: string,
    grantIds: readonly string[],
  ): Awaitable<ReadonlyMap<string, BreakagePolicy>>;
  /** What earlier imports created for these external ids of one kind (unknown ids are left out). */
  importRecords(
    workspaceId: string,
    kind: string,
    externalIds: readonly string[],
  ): Awaitable<readonly ImportRecord[]>;
  /** Ledger entries in recording (`seq`) order, amounts as text (see {@link ExportedEntry}). */
  exportEntries(query: ExportQuery, page: PageRequest): Awaitable<Page<ExportedEntry>>;
  /** Grants in id order. */
  exportGrants(
    query: ExportQuery,
    page: PageRequest,
  ): Awaitable<Page<GrantState & { readonly workspaceId: string }>>;
  /** Stored events in (workspace, event key) order. */
  exportEvents(query: ExportQuery, page: PageRequest): Awaitable<Page<ListedEvent>>;
  /** Event burns (usage priced by rates) in (event key, rate) order. */
  exportUsage(query: ExportQuery, page: PageRequest): Awaitable<Page<EventBurn>>;
}

/** Finance writes: breakage policies and import records. */
export interface FinanceWriteOperations extends FinanceReadOperations {
  /** Sets the workspace default (`packId` null) or a pack's override; null `policy` removes it. */
  putRevenuePolicy(
    workspaceId: string,
    packId: string | null,
    policy: BreakagePolicy | null,
    now: Instant,
  ): Awaitable<void>;
  insertImportRecord(record: ImportRecord): Awaitable<void>;
  /** Records the breakage policy in force when a paid grant was sold, so later settings do not reach it. */
  insertGrantRevenuePolicy(
    workspaceId: string,
    grantId: string,
    policy: BreakagePolicy,
    now: Instant,
  ): Awaitable<void>;
}

/** Reads that see only committed data. */
export interface ReadOperations {
  /** Revenue recognition inputs, policies, import records and export pages. */
  readonly finance: FinanceReadOperations;
  /** Features, plans, packs, subscriptions, auto top-ups, feature usage. */
  readonly plans: PlanReadOperations;
  /** Facts written for webhooks (see {@link OutboxRecord}). */
  readonly outbox: OutboxReadOperations;
  /** Webhook endpoints and their delivery log. */
  readonly webhooks: WebhookReadOperations;
  /** Balance thresholds and their per-customer state. */
  readonly alerts: AlertReadOperations;
  /** Payments in: Stripe events, the payments that bought credits, auto top-ups waiting to be charged. */
  readonly payments: PaymentReadOperations;
  /** Customer portal sessions (codes and cookie sessions, stored as hashes). */
  readonly portal: PortalReadOperations;
  /** Licenses, machines, seats, credit leases, usage records, signing keys. */
  readonly licensing: LicensingReadOperations;
  getCustomer(workspaceId: string, customerId: string): Awaitable<Customer | null>;
  listCustomers(workspaceId: string, page: PageRequest): Awaitable<Page<Customer>>;
  getCreditType(workspaceId: string, id: string): Awaitable<CreditType | null>;
  listCreditTypes(workspaceId: string, page: PageRequest): Awaitable<Page<CreditType>>;
  getGrant(workspaceId: string, grantId: string): Awaitable<GrantState | null>;
  listGrants(
    workspaceId: string,
    customerId: string,
    filter: {
      readonly status: GrantStatus | null;
      readonly creditType: string | null;
      readonly now: Instant;
    },
    page: PageRequest,
  ): Awaitable<Page<GrantState>>;
  getHold(workspaceId: string, holdId: string): Awaitable<HoldState | null>;
  /** Loads what the engine needs for one ledger, without locking (for balances now); read-only, as {@link WriteOperations.loadLedgerForUpdate}'s. */
  loadLedger(key: LedgerKey): Awaitable<CreditLedgerSnapshot>;
  /** One page of a ledger's entries in (at, seq) order, oldest first or (`desc`) newest first. */
  listEntries(
    key: LedgerKey,
    range: {
      readonly from: Instant | null;
      readonly to: Instant | null;
      readonly order?: 'asc' | 'desc';
    },
    page: PageRequest,
  ): Awaitable<Page<StoredEntry>>;
  /** The instant of the latest entry of one ledger (null: none), through its index. */
  latestEntryAt(key: LedgerKey): Awaitable<Instant | null>;
  /** Every entry of one ledger dated at or before `at`, oldest first (point-in-time balances). */
  entriesUpTo(key: LedgerKey, at: Instant): Awaitable<readonly StoredEntry[]>;
  /** A balance's inputs at `at` in bounded time: a checkpoint plus the entries after it. */
  checkpointedEntriesUpTo(key: LedgerKey, at: Instant): Awaitable<CheckpointedMovements>;
  getGrantsByIds(workspaceId: string, ids: readonly string[]): Awaitable<readonly GrantState[]>;
  getMeter(workspaceId: string, id: string): Awaitable<MeterRecord | null>;
  listMeters(workspaceId: string, page: PageRequest): Awaitable<Page<MeterRecord>>;
  getRate(workspaceId: string, id: string): Awaitable<RateRecord | null>;
  listRates(workspaceId: string, page: PageRequest): Awaitable<Page<RateRecord>>;
  /** Every meter and rate of a workspace: what ingest and quotes price events with. */
  listRatingRules(
    workspaceId: string,
  ): Awaitable<{ meters: readonly MeterRecord[]; rates: readonly RateRecord[] }>;
  /** Stored events matching the query, oldest first, streamed in batches. */
  scanEvents(query: EventQuery): AsyncIterable<StoredEvent>;
  getBurn(workspaceId: string, eventKey: string, rateId: string): Awaitable<EventBurn | null>;
  /** One page of stored events (GET /v1/events), oldest first. */
  listEvents(query: EventListQuery, page: PageRequest): Awaitable<Page<ListedEvent>>;
  getEvent(workspaceId: string, eventKey: string): Awaitable<ListedEvent | null>;
  /** The burns of some events (any order). */
  burnsOfEvents(workspaceId: string, eventKeys: readonly string[]): Awaitable<readonly EventBurn[]>;
  /** A debit or capture with what has been reversed of it. */
  getDebit(workspaceId: string, debitId: string): Awaitable<ReversibleDebit | null>;
  /**
   * What the grants of a ledger paid in overage debt (its `overage_settled` entries, oldest first)
   * and what reversals refunded to each as paid overage (read by corrections only).
   */
  settlementHistoryOf(key: LedgerKey): Awaitable<SettlementHistory>;
  /** Several debits at once (any order; unknown ids are left out). */
  getDebits(workspaceId: string, debitIds: readonly string[]): Awaitable<readonly ReversibleDebit[]>;
  /** A customer's usage of a rate in a rating period (zero when none). */
  getRateUsage(
    workspaceId: string,
    customerId: string,
    rateId: string,
    periodStart: Instant,
  ): Awaitable<Amount>;
  findApiKeyByHash(keyHash: string): Awaitable<ApiKeyRecord | null>;
  listApiKeysOf(workspaceId: string): Awaitable<readonly ApiKeyRecord[]>;
  getWorkspace(workspaceId: string): Awaitable<WorkspaceRecord | null>;
  listWorkspaces(): Awaitable<readonly WorkspaceRecord[]>;
  /** The audit log (administrative changes, hash-chained per workspace). */
  readonly audit: AuditReadOperations;
}

/** Writes, available only inside {@link Storage.write}; all of one call commit or none do. */
/**
 * One fact for the outbox (webhooks): written in the transaction of the change that caused it, so
 * it exists exactly when the change does; delivered later by a dispatcher. `seq` is assigned by the
 * store on insert and grows with insertion; writes of one customer are serialised, so one customer's
 * events are in `seq` order of their commits (events of different customers may commit out of `seq`
 * order on PostgreSQL, so a reader must not treat `seq` as a commit high-water mark).
 */
export interface OutboxRecord {
  /** The event id (`evt_…`), stable across deliveries: the `webhook-id`. */
  readonly id: string;
  readonly workspaceId: string;
  /** The event type (`grant.created`, `balance.low`, …). */
  readonly type: string;
  /** The customer the event is about, when it is about one (ordering and filtering). */
  readonly customerId: string | null;
  readonly occurredAt: Instant;
  /** The event's `data`, a JSON value. */
  readonly data: unknown;
}

/** A stored outbox fact with its insertion order. */
export interface StoredOutboxRecord extends OutboxRecord {
  readonly seq: number;
}

/** What a customer portal session may do: read, or read and buy credit packs. */
export type PortalScope = 'read' | 'read+topup';

/**
 * A customer portal session: created with a single-use code (valid about a minute) that the portal
 * exchanges for a short cookie session. Only SHA-256 hashes of the code and the token are kept.
 */
export interface PortalSessionRecord {
  readonly id: string;
  readonly workspaceId: string;
  readonly customerId: string;
  readonly scope: PortalScope;
  readonly codeHash: string;
  readonly codeExpiresAt: Instant;
  readonly codeUsedAt: Instant | null;
  readonly sessionHash: string | null;
  readonly sessionExpiresAt: Instant | null;
  readonly revokedAt: Instant | null;
  readonly createdAt: Instant;
}

/** The portal session aggregate's reads. */
export interface PortalReadOperations {
  get(workspaceId: string, id: string): Awaitable<PortalSessionRecord | null>;
  findByCodeHash(codeHash: string): Awaitable<PortalSessionRecord | null>;
  findBySessionHash(sessionHash: string): Awaitable<PortalSessionRecord | null>;
}

/** The portal session aggregate's writes. */
export interface PortalWriteOperations extends PortalReadOperations {
  insert(record: PortalSessionRecord): Awaitable<void>;
  /**
   * Spends the code once: sets the session if the code is unused, unexpired and not revoked at
   * `now`; false when another exchange (or time) got there first.
   */
  redeem(id: string, sessionHash: string, sessionExpiresAt: Instant, now: Instant): Awaitable<boolean>;
  /** Replaces a live session's token and expiry (refresh); false when it is no longer live. */
  refresh(
    id: string,
    oldHash: string,
    newHash: string,
    sessionExpiresAt: Instant,
    now: Instant,
  ): Awaitable<boolean>;
  /** Ends a session (and its code) for good; false when it was already revoked. */
  revoke(workspaceId: string, id: string, now: Instant): Awaitable<boolean>;
}

/** One accepted record of a machine's usage log (its hash continues the chain). */
export interface StoredUsageRecord {
  readonly workspaceId: string;
  readonly licenseId: string;
  readonly machineId: string;
  readonly seq: number;
  readonly hash: string;
  /** The usage event it became. */
  readonly eventKey: string;
  /** The record as uploaded (JSON). */
  readonly record: unknown;
  readonly receivedAt: Instant;
}

/** A license-file signing key: Ed25519, its private key PKCS#8 (encrypted when `encrypted`). */
export interface SigningKeyRecord {
  readonly kid: string;
  /** The public key, JWK `x`. */
  readonly publicX: string;
  /** base64 PKCS#8 DER, or `iv.tag.ciphertext` (base64) of it under AES-256-GCM when `encrypted`. */
  readonly privateKey: string;
  readonly encrypted: boolean;
  readonly createdAt: Instant;
  /** When a newer key replaced it for signing (still published until its files expire). */
  readonly retiredAt: Instant | null;
}

/** Reads of licenses, machines, seats, credit leases, usage records and signing keys. */
export interface LicensingReadOperations {
  getLicense(workspaceId: string, id: string): Awaitable<License | null>;
  /** The license a key opens (keys are unique across workspaces). */
  findLicenseByKeyHash(keyHash: string): Awaitable<License | null>;
  listLicenses(workspaceId: string, customerId: string | null, page: PageRequest): Awaitable<Page<License>>;
  /** A license's machines, active ones first then by activation, all statuses. */
  listMachines(workspaceId: string, licenseId: string): Awaitable<readonly Machine[]>;
  /** The machine holding a seat on this license with this fingerprint, if any. */
  findActiveMachine(workspaceId: string, licenseId: string, fingerprint: string): Awaitable<Machine | null>;
  /** Floating seats of a license not released (some may have expired). */
  listOpenSeats(workspaceId: string, licenseId: string): Awaitable<readonly FloatingSeat[]>;
  /** The machine's open credit lease, if any. */
  findOpenCreditLease(workspaceId: string, machineId: string): Awaitable<CreditLease | null>;
  getUsageRecord(workspaceId: string, machineId: string, seq: number): Awaitable<StoredUsageRecord | null>;
  /** Every signing key, oldest first. */
  listSigningKeys(): Awaitable<readonly SigningKeyRecord[]>;
  /** Licenses with an active machine silent past the license's heartbeat window at `now` (the cull sweeper). */
  findLicensesWithSilentMachines(
    now: Instant,
    limit: number,
  ): Awaitable<
    readonly { readonly workspaceId: string; readonly customerId: string; readonly licenseId: string }[]
  >;
}

/** Writes of the licensing aggregate, inside {@link Storage.write} under the license's customer lock. */
export interface LicensingWriteOperations extends LicensingReadOperations {
  /** False when the id or the key hash is taken. */
  insertLicense(license: License): Awaitable<boolean>;
  updateLicense(license: License): Awaitable<void>;
  insertMachine(machine: Machine): Awaitable<void>;
  updateMachine(machine: Machine): Awaitable<void>;
  insertSeat(seat: FloatingSeat): Awaitable<void>;
  updateSeat(seat: FloatingSeat): Awaitable<void>;
  insertCreditLease(lease: CreditLease): Awaitable<void>;
  updateCreditLease(lease: CreditLease): Awaitable<void>;
  /** False when that machine's record of that seq is already stored. */
  insertUsageRecord(record: StoredUsageRecord): Awaitable<boolean>;
  /** False when the kid exists. */
  insertSigningKey(key: SigningKeyRecord): Awaitable<boolean>;
  /** Marks every key but `kid` retired at `at` (those not retired yet). */
  retireSigningKeysExcept(kid: string, at: Instant): Awaitable<void>;
}

/** The outbox aggregate's reads. */
export interface OutboxReadOperations {
  /**
   * A workspace's facts after `afterSeq` in insertion order (oldest first). Not a listing (no
   * {@link PageRequest}): `seq` is the log offset a tailing reader keeps, and it must resume from
   * there after reaching the end, which a page's `nextAfter` (null at the end) cannot do.
   */
  listAfter(workspaceId: string, afterSeq: number, limit: number): Awaitable<readonly StoredOutboxRecord[]>;
}

/** The outbox aggregate's writes: append only. */
export interface OutboxWriteOperations extends OutboxReadOperations {
  append(records: readonly OutboxRecord[]): Awaitable<void>;
}

/** Why an endpoint is disabled: by a caller, by a 410 answer, or after failing for too long. */
export type EndpointDisabledReason = 'manual' | 'gone' | 'failing';

/**
 * A webhook endpoint as stored. The signing secrets are kept in clear (they sign, so they cannot
 * be hashed); they are shown to clients once, at creation and rotation.
 */
export interface WebhookEndpoint {
  readonly workspaceId: string;
  readonly id: string;
  readonly url: string;
  readonly description: string | null;
  /** Event types it receives; null: every type. */
  readonly eventTypes: readonly string[] | null;
  readonly enabled: boolean;
  readonly disabledReason: EndpointDisabledReason | null;
  /** The signing secret, `whsec_<base64>`. */
  readonly secret: string;
  /** The secret before the last rotation, still signing until `previousSecretUntil`. */
  readonly previousSecret: string | null;
  readonly previousSecretUntil: Instant | null;
  /** Since when every attempt to it failed (null: its last attempt succeeded, or none yet). */
  readonly failingSince: Instant | null;
  readonly createdAt: Instant;
  readonly updatedAt: Instant;
}

/** Where a delivery stands: waiting for its next attempt, done, given up, or dropped with its endpoint. */
export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'canceled';

/** One event to send to one endpoint (a replay is a delivery of its own). */
export interface WebhookDelivery {
  readonly id: string;
  readonly workspaceId: string;
  readonly endpointId: string;
  readonly eventId: string;
  /** The event's outbox `seq` (ordering of one customer's events). */
  readonly eventSeq: number;
  readonly customerId: string | null;
  /** A replay asked for by a client: not held back behind the customer's earlier events. */
  readonly replay: boolean;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: Instant;
  readonly createdAt: Instant;
}

/** A delivery claimed by one dispatcher, with what it needs to send it. */
export interface ClaimedDelivery {
  readonly delivery: WebhookDelivery;
  readonly event: StoredOutboxRecord;
  readonly endpoint: WebhookEndpoint;
}

/** What an attempt came to: sent and accepted, to be retried, given up, or the endpoint is gone (410). */
export type AttemptOutcome = 'delivered' | 'retry' | 'failed' | 'gone';

/** One attempt of a delivery, for the delivery log. */
export interface WebhookAttempt {
  readonly id: string;
  readonly workspaceId: string;
  readonly deliveryId: string;
  readonly endpointId: string;
  readonly eventId: string;
  /** 1 for the first attempt of the delivery. */
  readonly attempt: number;
  readonly attemptedAt: Instant;
  readonly statusCode: number | null;
  readonly latencyMs: number;
  /** The first 1 kB of the answer's body. */
  readonly responseExcerpt: string | null;
  /** Why no answer came (timeout, refused connection, forbidden address). */
  readonly error: string | null;
  readonly outcome: AttemptOutcome;
}

/** How a delivery stands after an attempt (written only while the claim's lease is held). */
export interface DeliveryUpdate {
  readonly deliveryId: string;
  /** The dispatcher that claimed it; a lease lost to another dispatcher changes nothing. */
  readonly owner: string;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: Instant;
  readonly finishedAt: Instant | null;
}

/** Reads of webhook endpoints, their deliveries' log, and the outbox events they carry. */
export interface WebhookReadOperations {
  /** A live (not deleted) endpoint. */
  getEndpoint(workspaceId: string, id: string): Awaitable<WebhookEndpoint | null>;
  /** Live endpoints by id. */
  listEndpoints(workspaceId: string, page: PageRequest): Awaitable<Page<WebhookEndpoint>>;
  /** One outbox event by its id. */
  getEvent(workspaceId: string, eventId: string): Awaitable<StoredOutboxRecord | null>;
  /** Attempts to one endpoint or of one event, oldest first (by id). */
  listAttempts(
    workspaceId: string,
    of: { readonly endpointId: string } | { readonly eventId: string },
    page: PageRequest,
  ): Awaitable<Page<WebhookAttempt>>;
  /** The deliveries of one event (tests and the per-event log). */
  deliveriesOfEvent(workspaceId: string, eventId: string): Awaitable<readonly WebhookDelivery[]>;
  /**
   * Attempts to one endpoint, newest first (by id, before `beforeId`; '' for the newest), of the
   * given outcomes (null: all), with their event's type and their delivery's state now: the
   * operator's deliveries view merges these across endpoints.
   */
  /**
   * The newest attempts of some endpoints (each read backwards through its own index, then merged
   * by id, which is time-ordered), newest first, optionally only some outcomes.
   */
  recentAttempts(
    workspaceId: string,
    endpointIds: readonly string[],
    outcomes: readonly AttemptOutcome[] | null,
    page: PageRequest,
  ): Awaitable<Page<RecentAttempt>>;
}

/** An attempt with what the deliveries view shows beside it. */
export interface RecentAttempt extends WebhookAttempt {
  /** The event's type (null if the event is gone). */
  readonly eventType: string | null;
  /** Where its delivery stands now (a retried attempt's delivery may have succeeded since). */
  readonly deliveryState: DeliveryState | null;
}

/** Writes of the webhook aggregate, inside {@link Storage.write}. */
export interface WebhookWriteOperations extends WebhookReadOperations {
  insertEndpoint(endpoint: WebhookEndpoint): Awaitable<void>;
  /** Stores an endpoint's changed fields (id, workspace and creation time never change). */
  saveEndpoint(endpoint: WebhookEndpoint): Awaitable<void>;
  /** Marks an endpoint deleted (it disappears from reads) and cancels its pending deliveries. */
  deleteEndpoint(workspaceId: string, id: string, now: Instant): Awaitable<boolean>;
  /** Enabled, live endpoints of a workspace (what fan-out sends to). */
  liveEndpointsOf(workspaceId: string): Awaitable<readonly WebhookEndpoint[]>;
  /**
   * Outbox events not fanned out yet, oldest first; on PostgreSQL locked for this transaction and
   * skipping rows another dispatcher holds (`FOR UPDATE SKIP LOCKED`).
   */
  claimEventsToFanOut(limit: number): Awaitable<readonly StoredOutboxRecord[]>;
  markFannedOut(seqs: readonly number[]): Awaitable<void>;
  /** Inserts deliveries; a non-replay delivery of an event already queued for that endpoint is skipped. */
  insertDeliveries(deliveries: readonly WebhookDelivery[]): Awaitable<void>;
  /**
   * Leases due deliveries to `owner` until `leaseUntil`: pending, due at `now`, lease free or
   * expired, endpoint enabled and live, and (for non-replays with a customer) no earlier pending
   * delivery of the same customer to the same endpoint. Each is claimed by exactly one caller.
   */
  claimDueDeliveries(claim: {
    readonly now: Instant;
    readonly owner: string;
    readonly leaseUntil: Instant;
    readonly limit: number;
  }): Awaitable<readonly ClaimedDelivery[]>;
  /**
   * Records an attempt and, if `owner` still holds the lease of a still pending delivery (not
   * canceled by a deletion meanwhile), the delivery's new state; false otherwise.
   */
  finishAttempt(attempt: WebhookAttempt, update: DeliveryUpdate): Awaitable<boolean>;
  /** Outbox events of a workspace that occurred in [from, to), oldest first (by `seq`). */
  eventsBetween(
    workspaceId: string,
    range: { readonly from: Instant; readonly to: Instant },
    page: PageRequest,
  ): Awaitable<Page<StoredOutboxRecord>>;
}

/** Which thresholds to list: a customer's own, or the workspace defaults (customerId null). */
export interface ThresholdListQuery {
  readonly workspaceId: string;
  readonly customerId: string | null;
  readonly creditType: string | null;
}

/** A grant whose expiry is within a notice lead time (`grant.expiring_soon`), not yet noticed. */
export interface ExpiringGrant {
  readonly workspaceId: string;
  readonly grantId: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly expiresAt: Instant;
  /** Its remaining credits (free and held) when scanned. */
  readonly remaining: Amount;
}

/** The balance alerts aggregate's reads. */
export interface AlertReadOperations {
  getThreshold(workspaceId: string, id: string): Awaitable<BalanceThreshold | null>;
  /** Thresholds of one scope (a customer's own, or the workspace defaults), oldest first. */
  listThresholds(query: ThresholdListQuery): Awaitable<readonly BalanceThreshold[]>;
  /**
   * The thresholds that may apply to one ledger (the customer's own and the workspace defaults of
   * its credit type), each with whether it has fired for this customer. One indexed read; empty
   * for a workspace without thresholds.
   */
  thresholdsForLedger(key: LedgerKey): Awaitable<readonly { threshold: BalanceThreshold; fired: boolean }[]>;
  /**
   * Every `runway_hours` threshold of every workspace, by (workspace, id), after `after`: what the
   * runway sweep (`balance.runway_below`) walks. A scan of the thresholds table, which is small.
   */
  runwayThresholds(page: PageRequest): Awaitable<Page<BalanceThreshold>>;
}

/** The balance alerts aggregate's writes (and the reads a write needs, inside its transaction). */
export interface AlertWriteOperations extends AlertReadOperations {
  insertThreshold(threshold: BalanceThreshold): Awaitable<void>;
  /** Deletes a threshold and its per-customer state; false when there was none. */
  deleteThreshold(workspaceId: string, id: string): Awaitable<boolean>;
  /** Records that a threshold fired for a customer (disarmed until it recovers). */
  markThresholdFired(
    workspaceId: string,
    thresholdId: string,
    customerId: string,
    at: Instant,
  ): Awaitable<void>;
  /** Re-arms a threshold for a customer. */
  markThresholdRecovered(workspaceId: string, thresholdId: string, customerId: string): Awaitable<void>;
  /** Σ original amounts of a ledger's grants in force at `now` (effective, not expired, not voided), depleted ones included. */
  grantedInForce(key: LedgerKey, now: Instant): Awaitable<Amount>;
  /** Open grants expiring in (now, now + leadMs] whose notice for that lead was not written, soonest first. */
  expiringWithoutNotice(now: Instant, leadMs: number, limit: number): Awaitable<readonly ExpiringGrant[]>;
  /** Records a grant's notice for one lead time; false when it was recorded already (another sweeper). */
  recordExpiryNotice(workspaceId: string, grantId: string, leadMs: number, at: Instant): Awaitable<boolean>;
}

/** The payments aggregate's reads (payments in: docs/design.md). */
export interface PaymentReadOperations {
  getStripeEvent(workspaceId: string, id: string): Awaitable<StripeEventRecord | null>;
  /** Stripe events of a workspace, newest first; `status` filters (e.g. the failed ones operators act on). */
  listStripeEvents(
    workspaceId: string,
    filter: { readonly status: StripeEventRecord['status'] | null },
    page: PageRequest,
  ): Awaitable<Page<StripeEventRecord>>;
  getPayment(workspaceId: string, id: string): Awaitable<PaymentRecord | null>;
  /** The payment a refund or dispute is about: by its payment intent, else by its charge. */
  findPayment(
    workspaceId: string,
    ref: { readonly paymentIntentId: string | null; readonly chargeId: string | null },
  ): Awaitable<PaymentRecord | null>;
  getTopUp(workspaceId: string, id: string): Awaitable<PendingTopUp | null>;
  /** Top-ups still waiting for their charge, oldest first, across workspaces (the top-up worker). */
  listWaitingTopUps(limit: number): Awaitable<readonly PendingTopUp[]>;
}

/** The payments aggregate's writes. */
export interface PaymentWriteOperations extends PaymentReadOperations {
  /** Records a Stripe event once; false when its id was recorded already (nothing written). */
  insertStripeEvent(event: StripeEventRecord): Awaitable<boolean>;
  /** Stores a payment (new, or its refunds, dispute and references changed). */
  putPayment(payment: PaymentRecord): Awaitable<void>;
  /** Stores a top-up (new, or its status changed). */
  putTopUp(topUp: PendingTopUp): Awaitable<void>;
}

export interface WriteOperations extends ReadOperations {
  /** Webhook endpoints and deliveries, written in this transaction. */
  readonly webhooks: WebhookWriteOperations;
  /** The outbox, written in this transaction. */
  readonly outbox: OutboxWriteOperations;
  /** Breakage policies and import records, written in this transaction. */
  readonly finance: FinanceWriteOperations;
  /** Balance thresholds and their state, written in this transaction. */
  readonly alerts: AlertWriteOperations;
  /** Payments in, written in this transaction. */
  readonly payments: PaymentWriteOperations;
  readonly portal: PortalWriteOperations;
  readonly licensing: LicensingWriteOperations;
  readonly plans: PlanWriteOperations;
  /**
   * Loads one ledger and serialises concurrent writers to it until the transaction ends. The
   * snapshot is read-only (an adapter may hand out the one it caches; the engine never writes to it).
   */
  loadLedgerForUpdate(key: LedgerKey): Awaitable<CreditLedgerSnapshot>;
  /**
   * What a write for one customer and credit type reads first: the customer's upkeep (as
   * {@link PlanReadOperations.customerUpkeep}) and the ledger (as {@link loadLedgerForUpdate}), in
   * one round trip where the dialect can (PostgreSQL: one statement; SQLite: its caches). The
   * caller must not use the ledger if subscriptions are due: renewing them changes it.
   */
  loadCustomerWrite(
    key: LedgerKey,
    now: Instant,
  ): Awaitable<{ readonly upkeep: CustomerUpkeep; readonly ledger: CreditLedgerSnapshot }>;
  /**
   * Tells the adapter which ledgers the work is about to load (an ingest chunk's customers), so it
   * can read them all at once: PostgreSQL reads every key's {@link loadCustomerWrite} row in one
   * statement and answers the loads of those keys from it until the work's next write (which may
   * change them); SQLite's caches already make loads cheap, so it does nothing. Must be called
   * under the locks of those customers.
   */
  prefetchCustomerWrites(keys: readonly LedgerKey[]): Awaitable<void>;
  /**
   * Whether statements issued without awaiting each other leave together (PostgreSQL's pipelined
   * connection: one flight instead of one round trip each). Work with independent writes (an
   * ingest chunk's customers) issues them concurrently only then; SQLite answers each statement
   * at once, so there concurrency would only interleave them.
   */
  readonly pipelined: boolean;
  /**
   * Persists one change set the engine handed over (`CreditLedger.takeChanges`): its entries,
   * grants, holds, debits and cached balances, exactly as taken. Each change set holds only what
   * changed since the previous one, so saving a ledger twice in a transaction writes nothing twice.
   */
  saveLedger(workspaceId: string, changes: LedgerChanges, now: Instant): Awaitable<void>;
  /**
   * Writes checkpoints into the gap a point-in-time read at `at` fell into (history older than
   * checkpoints), walking at most `budget` entries; returns how many it wrote (0: no gap left there).
   */
  fillCheckpointGap(key: LedgerKey, at: Instant, budget: number): Awaitable<number>;
  insertCustomer(customer: Customer): Awaitable<boolean>;
  /**
   * The customer as stored now, never from a cache: `getCustomer` may serve a copy cached by this
   * process (exact about existence, possibly stale in name and metadata), so an update starts here.
   */
  loadCustomerForUpdate(workspaceId: string, customerId: string): Awaitable<Customer | null>;
  /** Stores a customer's new name and metadata (id, workspace and creation time never change). */
  updateCustomer(customer: Customer): Awaitable<void>;
  insertCreditType(creditType: CreditType): Awaitable<boolean>;
  getIdempotency(workspaceId: string, key: string): Awaitable<IdempotencyRecord | null>;
  putIdempotency(workspaceId: string, key: string, record: IdempotencyRecord): Awaitable<void>;
  insertApiKey(key: NewApiKey): Awaitable<void>;
  countApiKeys(workspaceId: string): Awaitable<number>;
  /** Marks a key revoked; false when the workspace has no such active key. */
  revokeApiKey(workspaceId: string, keyId: string, at: Instant): Awaitable<boolean>;
  ensureWorkspace(workspaceId: string, now: Instant): Awaitable<void>;
  /** Creates a workspace; false when one with that id exists. */
  insertWorkspace(workspace: WorkspaceRecord): Awaitable<boolean>;
  /** Sets a key's last-used time unless it is already at or after `at`. */
  markApiKeyUsed(keyId: string, at: Instant): Awaitable<void>;
  /** Replaces a key's permission list (the bootstrap key's, at start). */
  setApiKeyPermissions(keyId: string, permissions: readonly string[] | null): Awaitable<void>;
  /** The audit log, appended in this transaction. */
  readonly audit: AuditWriteOperations;
  deleteIdempotencyBefore(cutoff: Instant): Awaitable<number>;
  insertMeter(meter: MeterRecord): Awaitable<boolean>;
  /** Stores a rate with the next `seq` of its workspace (the record's own `seq` is ignored). */
  insertRate(rate: RateRecord): Awaitable<boolean>;
  /** Stores an event unless its key is already stored; true when it was new. */
  insertEvent(event: StoredEvent): Awaitable<boolean>;
  /** Stores events whose keys are not stored yet (in one statement where the dialect can); returns the keys stored. */
  insertEvents(events: readonly StoredEvent[]): Awaitable<Set<string>>;
  /** Counts one more (refused) delivery of each of these stored events, once per occurrence. */
  countDuplicates(workspaceId: string, eventKeys: readonly string[]): Awaitable<void>;
  /**
   * Removes events this transaction stored and then refused (ingest inserts first, so that only
   * new events reserve their burns; one whose reservation fails is removed again before commit).
   */
  deleteUncommittedEvents(workspaceId: string, eventKeys: readonly string[]): Awaitable<void>;
  /** Marks an event reversed (it leaves meter usage); false when it already was. */
  markEventReversed(workspaceId: string, eventKey: string, at: Instant): Awaitable<boolean>;
  /** Records burns (in one statement where the dialect can); a pair already burned is left as it is. */
  insertBurns(burns: readonly EventBurn[]): Awaitable<void>;
  setRateUsage(
    workspaceId: string,
    customerId: string,
    rateId: string,
    periodStart: Instant,
    quantity: Amount,
  ): Awaitable<void>;
  /** Records a burn unless that event was already burned by that rate; true when it was new. */
  insertBurn(burn: EventBurn): Awaitable<boolean>;
}

/** Ledgers with something due (a grant or hold past its expiry, a grant becoming effective). */
export interface DueLedgerQuery {
  findDueLedgers(now: Instant, limit: number): Awaitable<readonly LedgerKey[]>;
}

/** Everything reconciliation reads, streamed so memory stays flat however long the ledger is. */
export interface ReconciliationSource {
  /** All entries, in any order. */
  allEntries(): AsyncIterable<LedgerEntry & { readonly workspaceId: string }>;
  allGrants(): AsyncIterable<GrantState & { readonly workspaceId: string }>;
  allCustomerAccounts(): AsyncIterable<LedgerKey & { readonly accounts: CreditLedgerSnapshot['accounts'] }>;
  allEvents(): AsyncIterable<StoredEvent>;
  /** Every debit or capture that has been (partly) reversed. */
  allReversedDebits(): AsyncIterable<ReversibleDebit & { readonly workspaceId: string }>;
  allBurns(): AsyncIterable<EventBurn>;
  allRatingRules(): AsyncIterable<{
    readonly meters: readonly MeterRecord[];
    readonly rates: readonly RateRecord[];
  }>;
}

/**
 * Operational gauges read from the database at scrape time: global (whichever process asks), and
 * float64 (for metrics only; never fed back into amounts).
 */
export interface OperationalGauges {
  /** Active holds per credit type: how many, and the credits they reserve. */
  readonly openHolds: readonly {
    readonly creditType: string;
    readonly count: number;
    readonly amount: number;
  }[];
  /** Overage owed per credit type: how many ledgers owe, and how much (positive). */
  readonly overage: readonly {
    readonly creditType: string;
    readonly count: number;
    readonly amount: number;
  }[];
  /** The oldest instant at or before now of something due the sweeper has not applied yet, per kind. */
  readonly oldestDue: Readonly<
    Record<'grant_expiry' | 'grant_activation' | 'hold_expiry' | 'subscription_reset', Instant | null>
  >;
  /** The outbound webhooks' backlog: what the dispatcher has not done yet. */
  readonly webhooks: {
    /** Outbox events not yet fanned out into deliveries. */
    readonly unfannedEvents: number;
    /** Deliveries not yet delivered nor given up (waiting, retrying or being sent). */
    readonly pendingDeliveries: number;
    /** The earliest instant at or before now at which a pending delivery was due; null when none is. */
    readonly oldestDueDelivery: Instant | null;
  };
}

/**
 * What a write will do first, told to the adapter so it can do it sooner. A networked adapter
 * (PostgreSQL) sends the read of {@link prefetch} right behind `BEGIN` and the lock, without
 * waiting for their answer (one round trip fewer, and a customer's lock held one round trip less);
 * the work's {@link WriteOperations.loadCustomerWrite} of that key then answers with it. The read
 * still runs under the lock, and the work itself (which reads the clock first) still starts only
 * once the lock is held, so nothing it observes changes.
 */
export interface WriteHints {
  /** The ledger whose upkeep and state the work loads first (`loadCustomerWrite`). */
  readonly prefetch?: LedgerKey;
  /**
   * The work claims a row shared by a whole workspace (the audit chain's head), so it must not
   * share a transaction with other customers' writes (group commit, PostgreSQL): two batches
   * claiming two workspaces' heads in opposite orders would wait for each other.
   */
  readonly ownTransaction?: boolean;
}

/**
 * The storage port. One interface, one contract test suite, two adapters (SQLite, PostgreSQL);
 * how each adapter serialises writers is its own documented capability.
 */
export interface Storage extends DueLedgerQuery {
  /** Which adapter this is, for logs and /metrics only; services never branch on it. */
  readonly dialect: 'sqlite' | 'postgres';
  readonly read: ReadOperations;
  /**
   * Shared rate-limit buckets, when several processes may serve one database (PostgreSQL); null
   * when one process owns the database (SQLite), which keeps its buckets in memory.
   */
  readonly rateLimitLeases: RateLimitLeases | null;
  /**
   * Runs `work` in a transaction and resolves only once it is durably committed. `lockKey` names
   * the customer (or customers) the work touches; adapters use it to serialise per customer. A throw
   * rolls back everything `work` did and rejects with the same error. `hints` change nothing the
   * work can observe, only how many round trips the adapter takes.
   */
  write<T>(
    lockKey: string | readonly string[],
    work: (tx: WriteOperations) => Promise<T>,
    hints?: WriteHints,
  ): Promise<T>;
  /**
   * Runs `work` over one consistent read snapshot of the whole database, so scans that run one
   * after another (entries, then balances, then grants) all see the same committed state even
   * while writes continue.
   */
  readSnapshot<T>(work: (source: ReconciliationSource) => Promise<T>): Promise<T>;
  /** Applies pending schema migrations (idempotent; safe to call at every start). */
  migrate(): Promise<void>;
  /** Reads the gauges `/metrics` shows from the database (indexed reads, bounded by what is open or owed). */
  operationalGauges(now: Instant): Promise<OperationalGauges>;
  close(): Promise<void>;
}

/** Returned by {@link Storage.write}'s helpers for debits; re-exported for convenience. */
export type { DebitRecord };
