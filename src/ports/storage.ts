import type { CreditLedger, CreditLedgerSnapshot, DebitRecord } from '../domain/ledger/credit-ledger.js';
import type { GrantState, GrantStatus, HoldState, LedgerEntry } from '../domain/ledger/types.js';
import type { Instant } from '../domain/time/instant.js';

/** A value now (SQLite, synchronous) or later (PostgreSQL); services always `await` it. */
export type Awaitable<T> = T | Promise<T>;

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
}

/** A stored first response to an Idempotency-Key, replayed to identical retries. */
export interface IdempotencyRecord {
  readonly fingerprint: string;
  readonly statusCode: number;
  readonly responseBody: string;
  readonly createdAt: Instant;
}

/** Keyset pagination: resume strictly after `after` (an opaque key the adapter understands). */
export interface PageRequest {
  readonly after: string | null;
  readonly limit: number;
}

/** One page of a list and the key to resume after, or null at the end. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextAfter: string | null;
}

/** A stored ledger entry with its position in the customer's history. */
export interface StoredEntry extends LedgerEntry {
  readonly seq: string;
  readonly recordedAt: Instant;
}

/** The ledger of one customer and credit type, identified for loading and locking. */
export interface LedgerKey {
  readonly workspaceId: string;
  readonly customerId: string;
  readonly creditType: string;
}

/** Reads that see only committed data. */
export interface ReadOperations {
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
  /** Loads what the engine needs for one ledger, without locking (for balances now). */
  loadLedger(key: LedgerKey): Awaitable<CreditLedgerSnapshot>;
  listEntries(
    key: LedgerKey,
    range: { readonly from: Instant | null; readonly to: Instant | null },
    page: PageRequest,
  ): Awaitable<Page<StoredEntry>>;
  /** Every entry of one ledger dated at or before `at`, oldest first (point-in-time balances). */
  entriesUpTo(key: LedgerKey, at: Instant): Awaitable<readonly StoredEntry[]>;
  getGrantsByIds(workspaceId: string, ids: readonly string[]): Awaitable<readonly GrantState[]>;
  findApiKeyByHash(keyHash: string): Awaitable<ApiKeyRecord | null>;
  listApiKeysOf(workspaceId: string): Awaitable<readonly ApiKeyRecord[]>;
}

/** Writes, available only inside {@link Storage.write}; all of one call commit or none do. */
export interface WriteOperations extends ReadOperations {
  /** Loads one ledger and serialises concurrent writers to it until the transaction ends. */
  loadLedgerForUpdate(key: LedgerKey): Awaitable<CreditLedgerSnapshot>;
  /** Persists everything the engine recorded: entries, grants, holds, debits and cached balances. */
  saveLedger(workspaceId: string, ledger: CreditLedger, now: Instant): Awaitable<void>;
  insertCustomer(customer: Customer): Awaitable<boolean>;
  insertCreditType(creditType: CreditType): Awaitable<boolean>;
  getIdempotency(workspaceId: string, key: string): Awaitable<IdempotencyRecord | null>;
  putIdempotency(workspaceId: string, key: string, record: IdempotencyRecord): Awaitable<void>;
  insertApiKey(key: ApiKeyRecord & { readonly keyHash: string }): Awaitable<void>;
  countApiKeys(workspaceId: string): Awaitable<number>;
  /** Marks a key revoked; false when the workspace has no such active key. */
  revokeApiKey(workspaceId: string, keyId: string, at: Instant): Awaitable<boolean>;
  ensureWorkspace(workspaceId: string, now: Instant): Awaitable<void>;
  deleteIdempotencyBefore(cutoff: Instant): Awaitable<number>;
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
   * Runs `work` in a transaction and resolves only once it is durably committed. `lockKey` names
   * the customer the work touches (adapters may use it to serialise per customer). A throw
   * rolls back everything `work` did and rejects with the same error.
   */
  write<T>(lockKey: string, work: (tx: WriteOperations) => Promise<T>): Promise<T>;
  /**
   * Runs `work` over one consistent read snapshot of the whole database, so scans that run one
   * after another (entries, then balances, then grants) all see the same committed state even
   * while writes continue.
   */
  readSnapshot<T>(work: (source: ReconciliationSource) => Promise<T>): Promise<T>;
  /** Applies pending schema migrations (idempotent; safe to call at every start). */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** Returned by {@link Storage.write}'s helpers for debits; re-exported for convenience. */
export type { DebitRecord };
