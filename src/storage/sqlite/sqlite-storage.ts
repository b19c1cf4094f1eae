import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import type { BalanceThreshold } from '../../domain/alerts/balance-thresholds.js';
import type { LedgerChanges } from '../../domain/ledger/changes.js';
import type { CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import { extend } from '../../domain/objects.js';
import type { AutoTopUp, Subscription } from '../../domain/plans/subscription.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  AlertWriteOperations,
  CreditType,
  Customer,
  DatabaseState,
  LedgerKey,
  MeterRecord,
  OperationalGauges,
  PlanWriteOperations,
  RateRecord,
  ReadOperations,
  ReconciliationSource,
  Storage,
  WriteHints,
  WriteOperations,
} from '../../ports/storage.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.js';
import { AlertWrites } from '../sql/alert-queries.js';
import type { SqlExecutor } from '../sql/executor.js';
import { readOperationalGauges } from '../sql/gauges.js';
import { type CustomerUpkeepFacts, PlanWrites } from '../sql/plan-queries.js';
import { findDueLedgers, SqlWrites, snapshotSource } from '../sql/sql-store.js';
import { BackgroundCheckpoint } from './background-checkpoint.js';
import { type GroupCommitOptions, GroupCommitter } from './group-commit.js';
import { LedgerCache, type RatingRulesRecord } from './ledger-cache.js';
import { CachedSqliteReads, READ_CACHED_TABLES } from './read-cache.js';
import { CoalescedSync, walFileSync } from './wal-sync.js';

/** Options of the SQLite adapter. */
export interface SqliteStorageOptions extends GroupCommitOptions {
  /** File path, or `:memory:` for tests (then reads share the writer connection). */
  readonly path: string;
  /**
   * `FULL` (default): every acknowledged write survives power loss. For a file, it is implemented
   * as SQLite's `synchronous=NORMAL` plus a WAL fdatasync on the thread pool after each group
   * commit, awaited before the batch's callers are answered (src/storage/sqlite/wal-sync.ts), so
   * the event loop never stalls in an fsync. `NORMAL` and `OFF` (SQLite's own meanings, no sync
   * before answering) are only for throwaway test databases.
   */
  readonly synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  /** Entries between ledger checkpoints (default 128, see src/storage/sql/checkpoints.ts); tests use tiny ones. */
  readonly checkpointInterval?: number;
  /**
   * WAL length (frames, 4 KiB pages) past which writes pause once, between two batches, for a
   * checkpoint of the whole WAL, so the next write starts it over (default 16,384: 64 MiB; 0: never;
   * see `walRestarter` for the two stages that keep the pause short).
   * The background checkpoint alone never catches up under write load that does not pause: the WAL
   * grew by about 75 MB a second under saturating debits and started over only when traffic paused.
   */
  readonly walRestartFrames?: number;
  /** Milliseconds between background checkpoints (default 250). */
  readonly walCheckpointIntervalMs?: number;
}

/** Default of {@link SqliteStorageOptions.walRestartFrames}. */
const WAL_RESTART_FRAMES = 16_384;

/**
 * The plan writes, with each customer's upkeep facts (read by every write for the customer) kept
 * in the writer's cache until a subscription or auto top-up rule of the customer changes.
 */
class CachedPlanWrites extends PlanWrites {
  constructor(
    db: SqlExecutor,
    private readonly cache: () => LedgerCache,
  ) {
    super(db);
  }

  override async customerUpkeepFacts(workspaceId: string, customerId: string): Promise<CustomerUpkeepFacts> {
    const cached = this.cache().getUpkeep(workspaceId, customerId);
    if (cached) return cached;
    const facts = await super.customerUpkeepFacts(workspaceId, customerId);
    this.cache().stageUpkeep(workspaceId, customerId, facts);
    return facts;
  }

  override async saveSubscription(s: Subscription): Promise<void> {
    await super.saveSubscription(s);
    this.cache().invalidateUpkeep(s.workspaceId, s.customerId);
  }

  override async putAutoTopUp(a: AutoTopUp): Promise<void> {
    await super.putAutoTopUp(a);
    this.cache().invalidateUpkeep(a.workspaceId, a.customerId);
  }

  override async deleteAutoTopUp(workspaceId: string, customerId: string): Promise<boolean> {
    const deleted = await super.deleteAutoTopUp(workspaceId, customerId);
    this.cache().invalidateUpkeep(workspaceId, customerId);
    return deleted;
  }
}

/** The threshold writes, telling the cache whose upkeep facts (`balanceThresholds`) they change. */
class CachedAlertWrites extends AlertWrites {
  constructor(
    db: SqlExecutor,
    private readonly cache: () => LedgerCache,
  ) {
    super(db);
  }

  override async insertThreshold(t: BalanceThreshold): Promise<void> {
    await super.insertThreshold(t);
    this.cache().invalidateUpkeep(t.workspaceId, t.customerId || null);
  }

  /** The id alone does not say whose threshold it was: every customer of the workspace is re-read. */
  override async deleteThreshold(workspaceId: string, id: string): Promise<boolean> {
    const deleted = await super.deleteThreshold(workspaceId, id);
    if (deleted) this.cache().invalidateUpkeep(workspaceId, null);
    return deleted;
  }
}

/** The shared writes, served from a write-through cache of ledgers and customers where it can. */
class CachedSqliteWrites extends SqlWrites {
  constructor(
    db: SqlExecutor,
    private readonly cache: LedgerCache,
  ) {
    super(db);
  }

  // Called by the base constructor, before `cache` is assigned: the cache is reached lazily.
  protected override makePlans(): PlanWriteOperations {
    return new CachedPlanWrites(this.db, () => this.cache);
  }

  protected override makeAlerts(): AlertWriteOperations {
    return new CachedAlertWrites(this.db, () => this.cache);
  }

  override async loadLedgerForUpdate(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    const cached = this.cache.getLedger(key);
    if (cached) return cached;
    const loaded = await super.loadLedgerForUpdate(key);
    this.cache.stageLoaded(key, loaded, await this.readLedgerHead(key));
    return loaded;
  }

  /**
   * This connection is the only writer and the cache is transactional, so the cached head is the
   * row's: the balances row is written without conflict resolution or RETURNING.
   */
  override async saveLedger(workspaceId: string, changes: LedgerChanges, now: Instant): Promise<void> {
    const key = { workspaceId, customerId: changes.customerId, creditType: changes.creditType };
    const head = await this.saveLedgerWithHead(workspaceId, changes, now, this.cache.getHead(key));
    this.cache.stageSaved(workspaceId, changes, head);
  }

  override async fillCheckpointGap(key: LedgerKey, at: Instant, budget: number): Promise<number> {
    const written = await super.fillCheckpointGap(key, at, budget);
    if (written > 0) this.cache.stageHead(key, await this.readLedgerHead(key));
    return written;
  }

  override async getCustomer(workspaceId: string, customerId: string): Promise<Customer | null> {
    const cached = this.cache.getCustomer(workspaceId, customerId);
    if (cached) return cached;
    const customer = await super.getCustomer(workspaceId, customerId);
    if (customer) this.cache.stageCustomer(customer);
    return customer;
  }

  /** One statement fewer per debit, hold and grant: requireCreditType reads it on every one. */
  override async getCreditType(workspaceId: string, id: string): Promise<CreditType | null> {
    const cached = this.cache.getCreditType(workspaceId, id);
    if (cached) return cached;
    const creditType = await super.getCreditType(workspaceId, id);
    if (creditType) this.cache.stageCreditType(creditType);
    return creditType;
  }

  override async listRatingRules(workspaceId: string): Promise<RatingRulesRecord> {
    const cached = this.cache.getRules(workspaceId);
    if (cached) return cached;
    const rules = await super.listRatingRules(workspaceId);
    this.cache.stageRules(workspaceId, rules);
    return rules;
  }

  override async insertMeter(meter: MeterRecord): Promise<boolean> {
    const inserted = await super.insertMeter(meter);
    if (inserted) this.cache.stageRules(meter.workspaceId, null);
    return inserted;
  }

  override async insertRate(rate: RateRecord): Promise<boolean> {
    const inserted = await super.insertRate(rate);
    if (inserted) this.cache.stageRules(rate.workspaceId, null);
    return inserted;
  }

  override async insertCustomer(customer: Customer): Promise<boolean> {
    const inserted = await super.insertCustomer(customer);
    if (inserted) this.cache.stageCustomer(customer);
    return inserted;
  }

  override async updateCustomer(customer: Customer): Promise<void> {
    await super.updateCustomer(customer);
    this.cache.stageCustomer(customer);
  }
}

/**
 * `PRAGMA data_version` of one connection, through a statement prepared once (`db.pragma()`
 * prepares a new statement on every call, which cost more than the cached reads it guards).
 */
function dataVersionOf(db: Database): () => number {
  const statement = db.prepare('PRAGMA data_version').pluck();
  return () => statement.get() as number;
}

/** The table a plain INSERT, REPLACE, UPDATE or DELETE writes (a schema prefix such as `main.` skipped). */
const WRITTEN_TABLE =
  /^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(?:"?\w+"?\s*\.\s*)?"?(\w+)"?/i;

/**
 * Whether running a statement may change what the read cache holds: never for a read-only
 * statement (SQLite says which, `readonly`), and for a write only when its table is one the cache
 * reads or cannot be told from its text (a CTE, a comment first, other quoting: then assume it is).
 */
export function mayChangeReadCache(statement: { readonly readonly: boolean }, sql: string): boolean {
  if (statement.readonly) return false;
  const table = WRITTEN_TABLE.exec(sql)?.[1]?.toLowerCase();
  return table === undefined || READ_CACHED_TABLES.has(table);
}

/** Runs the shared SQL on one better-sqlite3 connection, preparing each statement once. */
class SqliteExecutor implements SqlExecutor {
  private readonly statements = new Map<string, { statement: Statement; changesReadCache: boolean }>();
  /** Set when a statement that may change the read cache's tables ran; see {@link takeReadCacheWrites}. */
  private wroteReadCacheTables = false;

  constructor(private readonly db: Database) {}

  private prepare(sql: string): Statement {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      const statement = this.db.prepare(sql);
      prepared = { statement, changesReadCache: mayChangeReadCache(statement, sql) };
      // Dynamic list queries vary by filter; cap the cache so it cannot grow without bound.
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(sql, prepared);
    }
    if (prepared.changesReadCache) this.wroteReadCacheTables = true;
    return prepared.statement;
  }

  /**
   * Whether any statement run since the last call may have changed a table the read cache reads
   * (conservative: a statement that ran inside a transaction later rolled back counts too).
   */
  /** Counts writes made on this connection outside the executor (a migration) as such a statement. */
  noteReadCacheWrites(): void {
    this.wroteReadCacheTables = true;
  }

  takeReadCacheWrites(): boolean {
    const wrote = this.wroteReadCacheTables;
    this.wroteReadCacheTables = false;
    return wrote;
  }

  all<T>(sql: string, params: readonly unknown[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  /** Rows as arrays: better-sqlite3 builds no object per row (half the cost of a large export read). */
  allRaw(sql: string, params: readonly unknown[]): unknown[][] {
    const statement = this.prepare(sql);
    statement.raw(true);
    try {
      return statement.all(...params) as unknown[][];
    } finally {
      statement.raw(false);
    }
  }

  get<T>(sql: string, params: readonly unknown[]): T | undefined {
    return this.prepare(sql).get(...params) as T | undefined;
  }

  run(sql: string, params: readonly unknown[]): number {
    return this.prepare(sql).run(...params).changes;
  }
}

/**
 * The embedded adapter. One writer connection, through which every write goes via group commit
 * (which also serialises writers: SQLite allows one at a time anyway), and one read connection
 * that sees only committed data (WAL snapshot reads), so a GET never observes a write that might
 * still roll back.
 */
export class SqliteStorage implements Storage {
  readonly dialect = 'sqlite' as const;
  /** One process owns a SQLite database: rate-limit buckets live in its memory. */
  readonly rateLimitLeases = null;
  readonly read: ReadOperations;
  private readonly writes: WriteOperations;
  private readonly readerExecutor: SqliteExecutor;
  private readonly writerExecutor: SqliteExecutor;
  /** The read connection's cache (null for an in-memory database, read through the writer). */
  private readonly reads: CachedSqliteReads | null;
  private readonly committer: GroupCommitter;

  private readonly path: string;

  private constructor(
    private readonly writer: Database,
    private readonly reader: Database,
    options: SqliteStorageOptions,
    private readonly checkpoint: BackgroundCheckpoint | null,
    /** The WAL syncs that make commits durable (null: SQLite's own setting does, or nothing must). */
    private readonly walSync: CoalescedSync | null,
  ) {
    this.path = options.path;
    const writerExecutor = new SqliteExecutor(writer);
    this.writerExecutor = writerExecutor;
    const cache = new LedgerCache(dataVersionOf(writer));
    const writes = new CachedSqliteWrites(writerExecutor, cache);
    if (options.checkpointInterval !== undefined) writes.checkpointInterval = options.checkpointInterval;
    this.writes = writes;
    this.readerExecutor = reader === writer ? writerExecutor : new SqliteExecutor(reader);
    const reads =
      reader === writer
        ? null
        : new CachedSqliteReads(this.readerExecutor, dataVersionOf(reader), dataVersionOf(writer));
    this.reads = reads;
    this.read = reads ?? this.writes;
    const onBatch = (size: number) => {
      reads?.noteCommit(writerExecutor.takeReadCacheWrites());
      options.onBatch?.(size);
    };
    const betweenBatches = checkpoint === null ? undefined : walRestarter(checkpoint, options);
    this.committer = new GroupCommitter(
      writer,
      walSync
        ? extend(options, { onBatch, betweenBatches, durableAfter: () => walSync.request() })
        : extend(options, { onBatch, betweenBatches }),
      cache,
    );
  }

  /** Whether the file exists and holds Burndown's schema; never creates or changes anything. */
  static state(path: string): DatabaseState {
    if (path === ':memory:' || !existsSync(path)) return 'missing';
    const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      const found = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        .get();
      return found === undefined ? 'not_migrated' : 'ready';
    } finally {
      db.close();
    }
  }

  /** Opens (creating if needed) the database and applies migrations. */
  static async open(options: SqliteStorageOptions): Promise<SqliteStorage> {
    const inMemory = options.path === ':memory:';
    if (!inMemory) mkdirSync(dirname(options.path), { recursive: true });
    const writer = new BetterSqlite3(options.path);
    writer.pragma('journal_mode = WAL');
    const synchronous = options.synchronous ?? 'FULL';
    // A file's FULL durability comes from the pipelined WAL sync (see the option's comment).
    const walFile = !inMemory && synchronous === 'FULL' ? walFileSync(options.path) : null;
    const walSync = walFile ? new CoalescedSync(walFile.sync, walFile.close) : null;
    writer.pragma(`synchronous = ${walSync ? 'NORMAL' : synchronous}`);
    writer.pragma('busy_timeout = 10000');
    // A page cache large enough for the hot part of the ledger (256 MiB at most, allocated as
    // used); the default 2 MiB turns every write into a re-read of its B-tree pages.
    writer.pragma('cache_size = -262144');
    // Every write runs in a savepoint of a group-committed transaction, and a savepoint keeps the
    // original of each page it changes. Past 64 KiB (an ingest chunk of 100 customers) SQLite
    // spills those copies to a temporary file: a write(2) per page, which made every statement of
    // ingest cost twice its work. In memory they cost a copy. They are never needed after a crash
    // (the WAL is what recovers), so nothing durable depends on them.
    writer.pragma('temp_store = MEMORY');
    migrateSqlite(writer);
    const checkpoint = inMemory
      ? null
      : new BackgroundCheckpoint(options.path, options.walCheckpointIntervalMs ?? 250);
    if (checkpoint) writer.pragma('wal_autocheckpoint = 0');
    const reader = inMemory ? writer : new BetterSqlite3(options.path, { readonly: true });
    if (!inMemory) reader.pragma('busy_timeout = 10000');
    return new SqliteStorage(writer, reader, options, checkpoint, walSync);
  }

  /**
   * The durability settings in force on the writer connection, read from SQLite itself (not from
   * the options), and how many WAL syncs made commits durable: `journalMode` `wal` with either
   * `synchronous` 2 (FULL: SQLite fsyncs inside COMMIT) or `walSyncs` growing with the writes (the
   * pipelined sync answers a write only after one). A crash test cannot see a missing fsync, so
   * this is what tests check.
   */
  durability(): {
    readonly journalMode: string;
    readonly synchronous: number;
    readonly pipelinedWalSync: boolean;
    readonly walSyncs: number;
  } {
    return {
      journalMode: String(this.writer.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.writer.pragma('synchronous', { simple: true })),
      pipelinedWalSync: this.walSync !== null,
      walSyncs: this.walSync?.completed ?? 0,
    };
  }

  /** Hints are not needed: the writer's caches answer the first reads of a write without I/O. */
  write<T>(
    _lockKey: string | readonly string[],
    work: (tx: WriteOperations) => Promise<T>,
    _hints?: WriteHints,
  ): Promise<T> {
    return this.committer.submit(() => work(this.writes));
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.writer);
    // Outside the executor: whatever a migration changed, the read cache must not vouch for it,
    // now and, should a batch's transaction be open around it, once that batch commits too.
    this.writerExecutor.noteReadCacheWrites();
    this.reads?.noteCommit(true);
  }

  operationalGauges(now: Instant): Promise<OperationalGauges> {
    return readOperationalGauges(this.readerExecutor, 'sqlite', now);
  }

  findDueLedgers(now: Instant, limit: number): Promise<LedgerKey[]> {
    return findDueLedgers(this.readerExecutor, now, limit);
  }

  async readSnapshot<T>(work: (source: ReconciliationSource) => Promise<T>): Promise<T> {
    if (this.reader === this.writer) {
      // In memory there is one connection: run between write batches, which is a snapshot too.
      return this.committer.submit(() => work(snapshotSource(this.readerExecutor)));
    }
    // A connection of its own, so other reads do not stay frozen on this snapshot.
    const connection = new BetterSqlite3(this.path, { readonly: true });
    try {
      connection.pragma('busy_timeout = 10000');
      connection.exec('BEGIN');
      // The snapshot starts at the first read inside the transaction.
      connection.prepare('SELECT 1 FROM schema_migrations LIMIT 1').get();
      return await work(snapshotSource(new SqliteExecutor(connection)));
    } finally {
      if (connection.inTransaction) connection.exec('COMMIT');
      connection.close();
    }
  }

  async close(): Promise<void> {
    await this.committer.drain();
    await this.walSync?.close();
    await this.checkpoint?.stop();
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

/**
 * The group committer's `betweenBatches` for a file with a background checkpoint: once the WAL is
 * longer than `walRestartFrames`, writes pause once, between two batches, for a checkpoint of the
 * whole WAL, and the first write after it starts the WAL over. HTTP is served meanwhile; only
 * writes wait.
 *
 * Two stages keep that pause short. The periodic checkpoint runs every 250 ms, so under
 * saturating writes a quarter of a second of frames is still to be copied when the WAL passes the
 * bound: a pause for all of it took 6–14 ms of debits (bench/README.md, "The WAL restart's
 * pause"). So first a checkpoint is asked for while writes go on, and only when it has reported
 * do writes pause, for a second one that copies what was written meanwhile (a few milliseconds
 * of frames) and syncs the database file.
 */
export function walRestarter(
  checkpoint: Pick<BackgroundCheckpoint, 'frames' | 'reports' | 'checkpointNow'>,
  options: Pick<SqliteStorageOptions, 'walRestartFrames'>,
): (() => Promise<void> | undefined) | undefined {
  const limit = options.walRestartFrames ?? WAL_RESTART_FRAMES;
  if (limit <= 0) return undefined;
  let forcedAt = Number.NEGATIVE_INFINITY;
  /** The first stage: a checkpoint asked for while writes go on; `done` once it has reported. */
  let catchingUp: { done: boolean } | null = null;
  return () => {
    if (catchingUp !== null) {
      if (!catchingUp.done) return undefined;
      catchingUp = null;
      forcedAt = checkpoint.reports;
      return checkpoint.checkpointNow();
    }
    // Two periodic reports since the last pause: the length seen is the one after it (a restart
    // that a reader's snapshot prevented is not retried before that).
    if (checkpoint.frames <= limit || checkpoint.reports < forcedAt + 2) return undefined;
    const stage: { done: boolean } = { done: false };
    catchingUp = stage;
    void checkpoint.checkpointNow().then(() => {
      stage.done = true;
    });
    return undefined;
  };
}
