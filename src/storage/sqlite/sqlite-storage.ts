import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { invalidRequest } from '../../domain/errors.js';
import type { CreditLedger, CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import type { GrantState, GrantStatus, HoldState, LedgerEntry } from '../../domain/ledger/types.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  ApiKeyRecord,
  CreditType,
  Customer,
  IdempotencyRecord,
  LedgerKey,
  Page,
  PageRequest,
  ReadOperations,
  Storage,
  StoredEntry,
  WriteOperations,
} from '../../ports/storage.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.js';
import {
  type AccountsRow,
  type ApiKeyRow,
  accountsFromRow,
  apiKeyFromRow,
  type CreditTypeRow,
  type CustomerRow,
  creditTypeFromRow,
  customerFromRow,
  DEBIT_COLUMNS,
  debitToParams,
  ENTRY_COLUMNS,
  type EntryRow,
  entryFromRow,
  GRANT_COLUMNS,
  type GrantRow,
  grantFromRow,
  grantStatusCondition,
  grantToParams,
  HOLD_COLUMNS,
  type HoldRow,
  holdFromRow,
  holdToParams,
} from '../rows.js';
import { type GroupCommitOptions, GroupCommitter } from './group-commit.js';

/** Options of the SQLite adapter. */
export interface SqliteStorageOptions extends GroupCommitOptions {
  /** File path, or `:memory:` for tests (then reads share the writer connection). */
  readonly path: string;
  /**
   * `FULL` (default) fsyncs the WAL at every commit, so an acknowledged write survives power
   * loss. `NORMAL` is only for throwaway test databases.
   */
  readonly synchronous?: 'FULL' | 'NORMAL' | 'OFF';
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
const upsertSet = (columns: readonly string[]) =>
  columns
    .filter((c) => c !== 'id')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');

/** Prepared statements of one connection. */
class Statements {
  readonly getCustomer: Statement;
  readonly listCustomers: Statement;
  readonly insertCustomer: Statement;
  readonly getCreditType: Statement;
  readonly listCreditTypes: Statement;
  readonly insertCreditType: Statement;
  readonly getBalances: Statement;
  readonly upsertBalances: Statement;
  readonly openGrants: Statement;
  readonly activeHolds: Statement;
  readonly getGrant: Statement;
  readonly upsertGrant: Statement;
  readonly getHold: Statement;
  readonly upsertHold: Statement;
  readonly insertDebit: Statement;
  readonly insertEntry: Statement;
  readonly entriesUpTo: Statement;
  readonly getIdempotency: Statement;
  readonly putIdempotency: Statement;
  readonly deleteIdempotency: Statement;
  readonly findApiKey: Statement;
  readonly insertApiKey: Statement;
  readonly countApiKeys: Statement;
  readonly listApiKeys: Statement;
  readonly revokeApiKey: Statement;
  readonly ensureWorkspace: Statement;
  readonly dueGrants: Statement;
  readonly dueHolds: Statement;

  constructor(db: Database) {
    this.getCustomer = db.prepare('SELECT * FROM customers WHERE workspace_id = ? AND id = ?');
    this.listCustomers = db.prepare(
      'SELECT * FROM customers WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
    );
    this.insertCustomer = db.prepare(
      'INSERT INTO customers (workspace_id, id, name, metadata, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.getCreditType = db.prepare('SELECT * FROM credit_types WHERE workspace_id = ? AND id = ?');
    this.listCreditTypes = db.prepare(
      'SELECT * FROM credit_types WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
    );
    this.insertCreditType = db.prepare(
      'INSERT INTO credit_types (workspace_id, id, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.getBalances = db.prepare(
      'SELECT issued, consumed, expired, voided, overage FROM balances WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
    );
    this.upsertBalances = db.prepare(
      `INSERT INTO balances (workspace_id, customer_id, credit_type, issued, consumed, expired, voided, overage, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (workspace_id, customer_id, credit_type) DO UPDATE SET issued = excluded.issued,
         consumed = excluded.consumed, expired = excluded.expired, voided = excluded.voided,
         overage = excluded.overage, updated_at = excluded.updated_at`,
    );
    this.openGrants = db.prepare(
      'SELECT * FROM grants WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND is_open = 1',
    );
    this.activeHolds = db.prepare(
      `SELECT * FROM holds WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND status = 'active'`,
    );
    this.getGrant = db.prepare('SELECT * FROM grants WHERE workspace_id = ? AND id = ?');
    this.upsertGrant = db.prepare(
      `INSERT INTO grants (${GRANT_COLUMNS.join(', ')}) VALUES (${placeholders(GRANT_COLUMNS.length)})
       ON CONFLICT (id) DO UPDATE SET ${upsertSet(GRANT_COLUMNS)}`,
    );
    this.getHold = db.prepare('SELECT * FROM holds WHERE workspace_id = ? AND id = ?');
    this.upsertHold = db.prepare(
      `INSERT INTO holds (${HOLD_COLUMNS.join(', ')}) VALUES (${placeholders(HOLD_COLUMNS.length)})
       ON CONFLICT (id) DO UPDATE SET ${upsertSet(HOLD_COLUMNS)}`,
    );
    this.insertDebit = db.prepare(
      `INSERT INTO debits (${DEBIT_COLUMNS.join(', ')}) VALUES (${placeholders(DEBIT_COLUMNS.length)})`,
    );
    this.insertEntry = db.prepare(
      `INSERT INTO entries (${ENTRY_COLUMNS.join(', ')}) VALUES (${placeholders(ENTRY_COLUMNS.length)})`,
    );
    this.entriesUpTo = db.prepare(
      'SELECT * FROM entries WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at <= ? ORDER BY at, seq',
    );
    this.getIdempotency = db.prepare('SELECT * FROM idempotency_keys WHERE workspace_id = ? AND key = ?');
    this.putIdempotency = db.prepare(
      `INSERT INTO idempotency_keys (workspace_id, key, fingerprint, status_code, response_body, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.deleteIdempotency = db.prepare('DELETE FROM idempotency_keys WHERE created_at < ?');
    this.findApiKey = db.prepare('SELECT * FROM api_keys WHERE key_hash = ?');
    this.insertApiKey = db.prepare(
      `INSERT INTO api_keys (id, workspace_id, key_hash, scope, name, created_at, revoked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING`,
    );
    this.countApiKeys = db.prepare(
      'SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND revoked_at IS NULL',
    );
    this.listApiKeys = db.prepare('SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id');
    this.revokeApiKey = db.prepare(
      'UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL',
    );
    this.ensureWorkspace = db.prepare(
      'INSERT INTO workspaces (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
    );
    this.dueGrants = db.prepare(
      `SELECT DISTINCT workspace_id, customer_id, credit_type FROM grants
       WHERE (is_open = 1 AND closed_reason IS NULL AND expires_at IS NOT NULL AND expires_at <= ?)
          OR (activated = 0 AND is_open = 1 AND effective_at <= ?)
       LIMIT ?`,
    );
    this.dueHolds = db.prepare(
      `SELECT DISTINCT workspace_id, customer_id, credit_type FROM holds WHERE status = 'active' AND expires_at <= ? LIMIT ?`,
    );
  }
}

function page<T>(rows: readonly T[], limit: number, keyOf: (row: T) => string): Page<T> {
  if (rows.length > limit) {
    const items = rows.slice(0, limit);
    return { items, nextAfter: keyOf(items[items.length - 1]!) };
  }
  return { items: rows, nextAfter: null };
}

/** Reads against one connection; shared by the read-only connection and the writer. */
class SqliteReads implements ReadOperations {
  constructor(protected readonly s: Statements) {}

  getCustomer(workspaceId: string, customerId: string): Customer | null {
    const row = this.s.getCustomer.get(workspaceId, customerId) as CustomerRow | undefined;
    return row ? customerFromRow(row) : null;
  }

  listCustomers(workspaceId: string, req: PageRequest): Page<Customer> {
    const rows = this.s.listCustomers.all(workspaceId, req.after ?? '', req.limit + 1) as CustomerRow[];
    return page(rows.map(customerFromRow), req.limit, (c) => c.id);
  }

  getCreditType(workspaceId: string, id: string): CreditType | null {
    const row = this.s.getCreditType.get(workspaceId, id) as CreditTypeRow | undefined;
    return row ? creditTypeFromRow(row) : null;
  }

  listCreditTypes(workspaceId: string, req: PageRequest): Page<CreditType> {
    const rows = this.s.listCreditTypes.all(workspaceId, req.after ?? '', req.limit + 1) as CreditTypeRow[];
    return page(rows.map(creditTypeFromRow), req.limit, (c) => c.id);
  }

  getGrant(workspaceId: string, grantId: string): GrantState | null {
    const row = this.s.getGrant.get(workspaceId, grantId) as GrantRow | undefined;
    return row ? grantFromRow(row) : null;
  }

  getGrantsByIds(workspaceId: string, ids: readonly string[]): GrantState[] {
    const grants: GrantState[] = [];
    for (const id of ids) {
      const grant = this.getGrant(workspaceId, id);
      if (grant) grants.push(grant);
    }
    return grants;
  }

  listGrants(
    workspaceId: string,
    customerId: string,
    filter: { status: GrantStatus | null; creditType: string | null; now: Instant },
    req: PageRequest,
  ): Page<GrantState> {
    const conditions = ['workspace_id = ?', 'customer_id = ?'];
    const params: unknown[] = [workspaceId, customerId];
    if (filter.creditType !== null) {
      conditions.push('credit_type = ?');
      params.push(filter.creditType);
    }
    if (filter.status !== null) {
      const status = grantStatusCondition(filter.status, filter.now);
      conditions.push(status.sql);
      params.push(...status.params);
    }
    if (req.after !== null) {
      const [createdAt, id] = decodeCompositeKey(req.after);
      conditions.push('(created_at > ? OR (created_at = ? AND id > ?))');
      params.push(Number(createdAt), Number(createdAt), id);
    }
    const sql = `SELECT * FROM grants WHERE ${conditions.join(' AND ')} ORDER BY created_at, id LIMIT ?`;
    const rows = this.s.getGrant.database.prepare(sql).all(...params, req.limit + 1) as GrantRow[];
    return page(rows.map(grantFromRow), req.limit, (g) => encodeCompositeKey(String(g.createdAt), g.id));
  }

  getHold(workspaceId: string, holdId: string): HoldState | null {
    const row = this.s.getHold.get(workspaceId, holdId) as HoldRow | undefined;
    return row ? holdFromRow(row) : null;
  }

  loadLedger(key: LedgerKey): CreditLedgerSnapshot {
    const { workspaceId, customerId, creditType } = key;
    return {
      customerId,
      creditType,
      accounts: accountsFromRow(
        this.s.getBalances.get(workspaceId, customerId, creditType) as AccountsRow | undefined,
      ),
      grants: (this.s.openGrants.all(workspaceId, customerId, creditType) as GrantRow[]).map(grantFromRow),
      holds: (this.s.activeHolds.all(workspaceId, customerId, creditType) as HoldRow[]).map(holdFromRow),
    };
  }

  listEntries(
    key: LedgerKey,
    range: { from: Instant | null; to: Instant | null },
    req: PageRequest,
  ): Page<StoredEntry> {
    const conditions = ['workspace_id = ?', 'customer_id = ?', 'credit_type = ?'];
    const params: unknown[] = [key.workspaceId, key.customerId, key.creditType];
    if (range.from !== null) {
      conditions.push('at >= ?');
      params.push(range.from);
    }
    if (range.to !== null) {
      conditions.push('at < ?');
      params.push(range.to);
    }
    if (req.after !== null) {
      const [at, seq] = decodeCompositeKey(req.after);
      conditions.push('(at > ? OR (at = ? AND seq > ?))');
      params.push(Number(at), Number(at), Number(seq));
    }
    const sql = `SELECT * FROM entries WHERE ${conditions.join(' AND ')} ORDER BY at, seq LIMIT ?`;
    const rows = this.s.getGrant.database.prepare(sql).all(...params, req.limit + 1) as EntryRow[];
    return page(rows.map(entryFromRow), req.limit, (e) => encodeCompositeKey(String(e.at), e.seq));
  }

  entriesUpTo(key: LedgerKey, at: Instant): StoredEntry[] {
    return (this.s.entriesUpTo.all(key.workspaceId, key.customerId, key.creditType, at) as EntryRow[]).map(
      entryFromRow,
    );
  }

  findApiKeyByHash(keyHash: string): ApiKeyRecord | null {
    const row = this.s.findApiKey.get(keyHash) as ApiKeyRow | undefined;
    return row ? apiKeyFromRow(row) : null;
  }

  listApiKeysOf(workspaceId: string): ApiKeyRecord[] {
    return (this.s.listApiKeys.all(workspaceId) as ApiKeyRow[]).map(apiKeyFromRow);
  }
}

/** Writes on the writer connection; only ever used inside a group-commit job. */
class SqliteWrites extends SqliteReads implements WriteOperations {
  loadLedgerForUpdate(key: LedgerKey): CreditLedgerSnapshot {
    // The single writer connection already serialises every write; no lock is needed.
    return this.loadLedger(key);
  }

  saveLedger(workspaceId: string, ledger: CreditLedger, now: Instant): void {
    const a = ledger.accounts;
    this.s.upsertBalances.run(
      workspaceId,
      ledger.customerId,
      ledger.creditType,
      a.issued.toString(),
      a.consumed.toString(),
      a.expired.toString(),
      a.voided.toString(),
      a.overage.toString(),
      now,
    );
    for (const grant of ledger.changedGrants) this.s.upsertGrant.run(...grantToParams(workspaceId, grant));
    for (const hold of ledger.changedHolds) this.s.upsertHold.run(...holdToParams(workspaceId, hold));
    for (const debit of ledger.newDebits) this.s.insertDebit.run(...debitToParams(workspaceId, debit));
    for (const e of ledger.newEntries) {
      this.s.insertEntry.run(
        e.id,
        workspaceId,
        e.customerId,
        e.creditType,
        e.type,
        e.amount.toString(),
        e.fromAccount,
        e.toAccount,
        e.grantId,
        e.ref,
        e.at,
        e.balanceAfter.toString(),
        now,
      );
    }
  }

  insertCustomer(c: Customer): boolean {
    return (
      this.s.insertCustomer.run(c.workspaceId, c.id, c.name, JSON.stringify(c.metadata), c.createdAt)
        .changes === 1
    );
  }

  insertCreditType(c: CreditType): boolean {
    return this.s.insertCreditType.run(c.workspaceId, c.id, c.name, c.createdAt).changes === 1;
  }

  getIdempotency(workspaceId: string, key: string): IdempotencyRecord | null {
    const row = this.s.getIdempotency.get(workspaceId, key) as
      | { fingerprint: string; status_code: number; response_body: string; created_at: number }
      | undefined;
    return row
      ? {
          fingerprint: row.fingerprint,
          statusCode: row.status_code,
          responseBody: row.response_body,
          createdAt: row.created_at,
        }
      : null;
  }

  putIdempotency(workspaceId: string, key: string, r: IdempotencyRecord): void {
    this.s.putIdempotency.run(workspaceId, key, r.fingerprint, r.statusCode, r.responseBody, r.createdAt);
  }

  deleteIdempotencyBefore(cutoff: Instant): number {
    return this.s.deleteIdempotency.run(cutoff).changes;
  }

  insertApiKey(k: ApiKeyRecord & { keyHash: string }): void {
    this.s.insertApiKey.run(k.id, k.workspaceId, k.keyHash, k.scope, k.name, k.createdAt, k.revokedAt);
  }

  countApiKeys(workspaceId: string): number {
    return (this.s.countApiKeys.get(workspaceId) as { n: number }).n;
  }

  revokeApiKey(workspaceId: string, keyId: string, at: Instant): boolean {
    return this.s.revokeApiKey.run(at, workspaceId, keyId).changes === 1;
  }

  ensureWorkspace(workspaceId: string, now: Instant): void {
    this.s.ensureWorkspace.run(workspaceId, now);
  }
}

/** Cursor keys made of several parts (e.g. `at` and `seq`), joined unambiguously. */
export function encodeCompositeKey(...parts: string[]): string {
  return JSON.stringify(parts);
}

export function decodeCompositeKey(key: string): string[] {
  let parts: unknown;
  try {
    parts = JSON.parse(key);
  } catch {
    parts = null;
  }
  if (!Array.isArray(parts) || parts.some((p) => typeof p !== 'string')) {
    throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
  }
  return parts as string[];
}

/**
 * The embedded adapter: one writer connection (all writes go through group commit, which also
 * serialises them) and one read connection that sees only committed data (WAL snapshot reads).
 */
export class SqliteStorage implements Storage {
  readonly dialect = 'sqlite' as const;
  readonly read: ReadOperations;
  private readonly writes: SqliteWrites;
  private readonly committer: GroupCommitter;
  private readonly readerStatements: Statements;

  private constructor(
    private readonly writer: Database,
    private readonly reader: Database,
    options: SqliteStorageOptions,
  ) {
    const writerStatements = new Statements(writer);
    this.writes = new SqliteWrites(writerStatements);
    this.readerStatements = reader === writer ? writerStatements : new Statements(reader);
    this.read = reader === writer ? this.writes : new SqliteReads(this.readerStatements);
    this.committer = new GroupCommitter(writer, options);
  }

  /** Opens (creating if needed) the database and applies migrations. */
  static async open(options: SqliteStorageOptions): Promise<SqliteStorage> {
    const inMemory = options.path === ':memory:';
    if (!inMemory) mkdirSync(dirname(options.path), { recursive: true });
    const writer = new BetterSqlite3(options.path);
    writer.pragma('journal_mode = WAL');
    writer.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    writer.pragma('busy_timeout = 10000');
    writer.pragma('foreign_keys = OFF');
    migrateSqlite(writer);
    const reader = inMemory ? writer : new BetterSqlite3(options.path, { readonly: true });
    if (!inMemory) reader.pragma('busy_timeout = 10000');
    return new SqliteStorage(writer, reader, options);
  }

  write<T>(_lockKey: string, work: (tx: WriteOperations) => Promise<T>): Promise<T> {
    return this.committer.submit(() => work(this.writes));
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.writer);
  }

  findDueLedgers(now: Instant, limit: number): LedgerKey[] {
    const rows = [
      ...this.readerStatements.dueGrants.all(now, now, limit),
      ...this.readerStatements.dueHolds.all(now, limit),
    ] as { workspace_id: string; customer_id: string; credit_type: string }[];
    const seen = new Map<string, LedgerKey>();
    for (const r of rows) {
      seen.set(JSON.stringify([r.workspace_id, r.customer_id, r.credit_type]), {
        workspaceId: r.workspace_id,
        customerId: r.customer_id,
        creditType: r.credit_type,
      });
    }
    return [...seen.values()].slice(0, limit);
  }

  *allEntries(): Iterable<LedgerEntry & { workspaceId: string }> {
    for (const row of this.reader
      .prepare('SELECT * FROM entries ORDER BY seq')
      .iterate() as Iterable<EntryRow>) {
      yield { ...entryFromRow(row), workspaceId: row.workspace_id };
    }
  }

  *allGrants(): Iterable<GrantState & { workspaceId: string }> {
    for (const row of this.reader.prepare('SELECT * FROM grants').iterate() as Iterable<GrantRow>) {
      yield { ...grantFromRow(row), workspaceId: row.workspace_id };
    }
  }

  *allCustomerAccounts(): Iterable<LedgerKey & { accounts: CreditLedgerSnapshot['accounts'] }> {
    const rows = this.reader.prepare('SELECT * FROM balances').iterate() as Iterable<
      AccountsRow & { workspace_id: string; customer_id: string; credit_type: string }
    >;
    for (const row of rows) {
      yield {
        workspaceId: row.workspace_id,
        customerId: row.customer_id,
        creditType: row.credit_type,
        accounts: accountsFromRow(row),
      };
    }
  }

  async close(): Promise<void> {
    if (this.reader !== this.writer) this.reader.close();
    this.writer.close();
  }
}

function migrateSqlite(db: Database): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  for (const migration of SQLITE_MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        Date.now(),
      );
    }).immediate();
  }
}
