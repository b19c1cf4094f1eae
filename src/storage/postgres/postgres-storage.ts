import { hash } from 'node:crypto';
import pg from 'pg';
import type { LedgerChanges } from '../../domain/ledger/changes.js';
import type { CreditLedgerSnapshot } from '../../domain/ledger/credit-ledger.js';
import { extend } from '../../domain/objects.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  Customer,
  CustomerUpkeep,
  DatabaseState,
  EventBurn,
  LedgerKey,
  OperationalGauges,
  RateLimitLeases,
  ReadOperations,
  ReconciliationSource,
  Storage,
  StoredEvent,
  WebhookWriteOperations,
  WriteHints,
  WriteOperations,
} from '../../ports/storage.js';
import { POSTGRES_MIGRATIONS } from '../migrations/postgres.js';
import {
  type AccountsRow,
  accountsFromRow,
  DEBIT_COLUMNS,
  ENTRY_COLUMNS,
  GRANT_COLUMNS,
  type GrantRow,
  grantFromRow,
  HOLD_COLUMNS,
  type HoldRow,
  holdFromRow,
} from '../rows.js';
import { DEFAULT_CHECKPOINT_INTERVAL } from '../sql/checkpoints.js';
import type { SqlExecutor } from '../sql/executor.js';
import { readOperationalGauges } from '../sql/gauges.js';
import {
  CUSTOMER_UPKEEP_COLUMNS,
  type CustomerUpkeepRow,
  customerUpkeepParams,
  upkeepAt,
  upkeepFactsFromRow,
} from '../sql/plan-queries.js';
import {
  burnToParams,
  type CheckpointHead,
  eventToParams,
  findDueLedgers,
  SqlReads,
  type SqlStatement,
  SqlWrites,
  snapshotSource,
} from '../sql/sql-store.js';
import { WebhookWrites } from '../sql/webhook-queries.js';
import { coalescingSocket } from './coalescing-socket.js';
import { type BatchableWrite, WriteBatcher } from './write-batcher.js';

/** Options of the PostgreSQL adapter. */
export interface PostgresStorageOptions {
  /** `postgres://user@host:port/database`. */
  readonly connectionString: string;
  /** Connections in this process's pool (`BURNDOWN_PG_POOL_SIZE`, default 10). */
  readonly poolSize?: number;
  /** Schema to use instead of `public` (tests use one schema each). */
  readonly schema?: string;
  /** Attempts of a transaction that hit a deadlock, serialization failure or lost connection. Default 5. */
  readonly maxAttempts?: number;
  /** Entries between ledger checkpoints (default {@link DEFAULT_CHECKPOINT_INTERVAL}); tests use tiny ones. */
  readonly checkpointInterval?: number;
  /**
   * Group commit of ledger writes (`BURNDOWN_PG_WRITE_BATCHES`, default {@link DEFAULT_WRITE_BATCHES}):
   * the most batches of writes in flight at once in this process, each one transaction. 0 runs
   * every write in its own transaction.
   */
  readonly writeBatches?: number;
}

/** Batches in flight per process by default: enough to keep PostgreSQL busy while one commits. */
const DEFAULT_WRITE_BATCHES = 2;
/** Most writes in one batch. */
const MAX_WRITES_PER_BATCH = 64;
/** Most writes of one customer in one batch (they run one after another inside it). */
const MAX_WRITES_PER_LOCK = 8;

/** Shared SQL is written with `?`; PostgreSQL wants `$1, $2, …`. Converted once per statement text. */
const converted = new Map<string, { name: string; text: string }>();
function toPostgres(sql: string): { name: string; text: string } {
  let statement = converted.get(sql);
  if (!statement) {
    let n = 0;
    statement = { name: `bd_${converted.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
    converted.set(sql, statement);
  }
  return statement;
}

/** A plain read. Anything else (INSERT, UPDATE, DELETE, or WITH, which may hold writes) counts as a write. */
const READ_ONLY = /^\s*SELECT\b/i;

/** Runs shared SQL on a pool or one client, as named prepared statements (parsed once per connection). */
class PgExecutor implements SqlExecutor {
  constructor(private readonly target: pg.Pool | pg.PoolClient) {}

  /** Called before every statement that may write (a write's prefetched read is stale after it). */
  beforeWrite: (() => void) | null = null;

  async all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    // A named statement that is not a plain read (an INSERT … RETURNING) may write too.
    if (this.beforeWrite !== null && !READ_ONLY.test(sql)) this.beforeWrite();
    const { name, text } = toPostgres(sql);
    return (await this.target.query({ name, text, values: params as unknown[] })).rows as T[];
  }

  async get<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async run(sql: string, params: readonly unknown[]): Promise<number> {
    this.beforeWrite?.();
    const { name, text } = toPostgres(sql);
    return (await this.target.query({ name, text, values: params as unknown[] })).rowCount ?? 0;
  }

  /** A query whose text varies with its rows: prepared under a name once its text recurs. */
  async allOnce<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    this.beforeWrite?.();
    return (await this.target.query(extend(varyingStatement(sql), { values: params as unknown[] })))
      .rows as T[];
  }

  /** A statement whose text varies with its rows: prepared under a name once its text recurs. */
  async runOnce(sql: string, params: readonly unknown[]): Promise<void> {
    this.beforeWrite?.();
    await this.target.query(extend(varyingStatement(sql), { values: params as unknown[] }));
  }
}

/** Most texts of varying statements prepared under a name (per process; each connection prepares them once). */
const MAX_NAMED_VARYING = 64;
/** How often each varying text was seen lately (emptied when it grows past this many texts). */
const seenVarying = new Map<string, number>();
const namedVarying = new Map<string, { name: string; text: string }>();

/**
 * A statement whose text depends on its rows (a ledger's save as one CTE, a multi-row INSERT).
 * Sent unnamed, PostgreSQL parses and plans it on every execution; but a few shapes recur all the
 * time (a debit's save is the same text every time), so the second time a text is seen it gets a
 * name and is prepared once per connection, up to {@link MAX_NAMED_VARYING} texts. One-off shapes
 * (a batch's events) stay unnamed and never fill the cache.
 */
function varyingStatement(sql: string): { name?: string; text: string } {
  const named = namedVarying.get(sql);
  if (named !== undefined) return named;
  const seen = (seenVarying.get(sql) ?? 0) + 1;
  if (seen >= 2 && namedVarying.size < MAX_NAMED_VARYING) {
    const statement = { name: `bdv_${namedVarying.size}`, text: numbered(sql) };
    namedVarying.set(sql, statement);
    seenVarying.delete(sql);
    return statement;
  }
  if (seenVarying.size >= 4096) seenVarying.clear();
  seenVarying.set(sql, seen);
  return { text: numbered(sql) };
}

/** `?` placeholders as `$1, $2, …`. */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** JSON of a row, numeric columns as text so no amount passes through a JSON number (a float). */
function jsonRow(columns: readonly string[], numeric: ReadonlySet<string>): string {
  return `json_build_object(${columns.map((c) => `'${c}', ${numeric.has(c) ? `${c}::text` : c}`).join(', ')})`;
}

/** Bind parameters per statement: PostgreSQL's protocol allows 65,535; leave headroom. */
const MAX_PARAMS_PER_STATEMENT = 30_000;
/** Rows per multi-row INSERT of events or burns (10 and 8 parameters each). */
const ROWS_PER_BULK_INSERT = 2_000;
/** Entry rows per multi-row INSERT (13 parameters each). */
const ENTRY_ROWS_PER_INSERT = 1_000;

const NUMERIC_COLUMNS = new Set(['amount', 'available', 'held', 'cost_basis_amount', 'captured_amount']);
const LEDGER_WHERE = 'workspace_id = ? AND customer_id = ? AND credit_type = ?';

/** A customer's ledger in one round trip: balances, open grants and active holds as JSON. */
const LOAD_LEDGER = `SELECT
  (SELECT ${jsonRow(['issued', 'consumed', 'expired', 'voided', 'overage', 'clawed_back'], new Set(['issued', 'consumed', 'expired', 'voided', 'overage', 'clawed_back']))}
     FROM balances WHERE ${LEDGER_WHERE}) AS accounts,
  COALESCE((SELECT json_agg(${jsonRow(GRANT_COLUMNS, NUMERIC_COLUMNS)}) FROM grants WHERE ${LEDGER_WHERE} AND is_open = 1), '[]'::json) AS grants,
  COALESCE((SELECT json_agg(${jsonRow(HOLD_COLUMNS, NUMERIC_COLUMNS)}) FROM holds WHERE ${LEDGER_WHERE} AND status = 'active'), '[]'::json) AS holds`;

/** {@link LOAD_LEDGER} and the customer's upkeep facts, for a write's first round trip. */
const LOAD_CUSTOMER_WRITE = `${LOAD_LEDGER},${CUSTOMER_UPKEEP_COLUMNS}`;

/** The columns {@link LOAD_LEDGER} answers. */
type LedgerRow = { accounts: AccountsRow | null; grants: GrantRow[]; holds: HoldRow[] };

function snapshotOfLedgerRow(key: LedgerKey, row: LedgerRow | undefined): CreditLedgerSnapshot {
  return {
    customerId: key.customerId,
    creditType: key.creditType,
    accounts: accountsFromRow(row?.accounts ?? null),
    grants: (row?.grants ?? []).map(grantFromRow),
    holds: (row?.holds ?? []).map(holdFromRow),
  };
}

/** A ledger read by one statement, so it is one consistent snapshot even outside a transaction. */
async function loadLedgerAtOnce(pg: PgExecutor, key: LedgerKey): Promise<CreditLedgerSnapshot> {
  const params = [key.workspaceId, key.customerId, key.creditType];
  const row = await pg.get<LedgerRow>(LOAD_LEDGER, [...params, ...params, ...params]);
  return snapshotOfLedgerRow(key, row);
}

/** Reads; a balance must never mix two commits, so the ledger is read by a single statement. */
class PgReads extends SqlReads {
  constructor(private readonly pg: PgExecutor) {
    super(pg);
  }

  override loadLedger(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    return loadLedgerAtOnce(this.pg, key);
  }
}

/** The parameters of {@link LOAD_CUSTOMER_WRITE}, in order, for one key's three columns. */
const loadCustomerWriteParams = (workspaceId: string, customerId: string, creditType: string): string[] => [
  workspaceId,
  customerId,
  creditType,
  workspaceId,
  customerId,
  creditType,
  workspaceId,
  customerId,
  creditType,
  ...customerUpkeepParams(workspaceId, customerId),
];

/**
 * {@link LOAD_CUSTOMER_WRITE} for many keys in one statement: each `?` of the one-key statement
 * becomes the matching column of a row of the keys (passed as three arrays), so the two read the
 * same columns the same way; `i` is the key's 1-based position.
 */
const LOAD_CUSTOMER_WRITES = (() => {
  const refs = loadCustomerWriteParams('k.ws', 'k.cust', 'k.ct');
  let n = 0;
  const perKey = LOAD_CUSTOMER_WRITE.replace(/\?/g, () => refs[n++] ?? '?');
  if (n !== refs.length) throw new Error('LOAD_CUSTOMER_WRITE and its parameters disagree');
  return `SELECT k.i, l.* FROM unnest(?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS k(ws, cust, ct, i)
    CROSS JOIN LATERAL (${perKey}) AS l`;
})();

/** Keys per {@link LOAD_CUSTOMER_WRITES} statement (a chunk of ingest holds at most 100 customers). */
const KEYS_PER_PREFETCH = 500;

/** The one statement of {@link PgWrites.loadCustomerWrite}: upkeep facts and ledger of a key. */
function readCustomerWrite(
  pg: PgExecutor,
  key: LedgerKey,
): Promise<(LedgerRow & CustomerUpkeepRow) | undefined> {
  return pg.get<LedgerRow & CustomerUpkeepRow>(
    LOAD_CUSTOMER_WRITE,
    loadCustomerWriteParams(key.workspaceId, key.customerId, key.creditType),
  );
}

/** {@link readCustomerWrite} for many keys, in one statement per {@link KEYS_PER_PREFETCH} keys, by {@link ledgerKeyText}. */
async function readCustomerWrites(
  pg: PgExecutor,
  keys: readonly LedgerKey[],
): Promise<Map<string, LedgerRow & CustomerUpkeepRow>> {
  const rows = new Map<string, LedgerRow & CustomerUpkeepRow>();
  for (let start = 0; start < keys.length; start += KEYS_PER_PREFETCH) {
    const part = keys.slice(start, start + KEYS_PER_PREFETCH);
    const found = await pg.all<LedgerRow & CustomerUpkeepRow & { i: string | number }>(LOAD_CUSTOMER_WRITES, [
      part.map((k) => k.workspaceId),
      part.map((k) => k.customerId),
      part.map((k) => k.creditType),
    ]);
    for (const row of found) {
      const key = part[Number(row.i) - 1];
      if (key !== undefined) rows.set(ledgerKeyText(key), row);
    }
  }
  return rows;
}

/** A ledger key as one string (ids never hold a NUL character: inputs with one are refused). */
const ledgerKeyText = (key: LedgerKey) => `${key.workspaceId}\u0000${key.customerId}\u0000${key.creditType}`;

/** Whether two keys name the same ledger (the prefetched read is used only for its own key). */
const sameLedger = (a: LedgerKey, b: LedgerKey) =>
  a.workspaceId === b.workspaceId && a.customerId === b.customerId && a.creditType === b.creditType;

/**
 * Writes with fewer round trips, which is what a PostgreSQL transaction's time (and so a hot
 * customer's lock) is made of: the ledger loads in one query and saves in one statement.
 */
class PgWrites extends SqlWrites {
  /** The pool's connections pipeline (see `open`). */
  override readonly pipelined = true;

  constructor(
    private readonly pg: PgExecutor,
    private readonly customers: Map<string, Customer>,
  ) {
    super(pg);
    // What was read ahead describes the rows before this statement: after a write, loads read again.
    pg.beforeWrite = () => {
      this.prefetched = null;
      this.prefetchedMany = null;
    };
  }

  /**
   * Several processes dispatch webhooks from one database: a claim locks the rows it takes and
   * skips rows another dispatcher's transaction holds, so each is claimed by exactly one.
   */
  protected override makeWebhooks(): WebhookWriteOperations {
    return new WebhookWrites(this.db, {
      events: 'FOR UPDATE SKIP LOCKED',
      deliveries: 'FOR UPDATE OF d SKIP LOCKED',
    });
  }

  /** One multi-row INSERT per 2,000 events; RETURNING tells which were new. */
  override async insertEvents(events: readonly StoredEvent[]): Promise<Set<string>> {
    const inserted = new Set<string>();
    const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    for (let i = 0; i < events.length; i += ROWS_PER_BULK_INSERT) {
      const part = events.slice(i, i + ROWS_PER_BULK_INSERT);
      const rows = await this.pg.allOnce<{ event_key: string }>(
        `INSERT INTO events (workspace_id, event_key, id, source, type, customer_id, time, data, rules_seq, received_at, unmetered)
         VALUES ${part.map(() => row).join(', ')} ON CONFLICT DO NOTHING RETURNING event_key`,
        part.flatMap(eventToParams),
      );
      for (const r of rows) inserted.add(r.event_key);
    }
    return inserted;
  }

  override async insertBurns(burns: readonly EventBurn[]): Promise<void> {
    const row = '(?, ?, ?, ?, ?, ?, ?, ?)';
    for (let i = 0; i < burns.length; i += ROWS_PER_BULK_INSERT) {
      const part = burns.slice(i, i + ROWS_PER_BULK_INSERT);
      await this.pg.runOnce(
        `INSERT INTO event_burns (workspace_id, event_key, rate_id, customer_id, debit_id, quantity, credits, created_at)
         VALUES ${part.map(() => row).join(', ')} ON CONFLICT DO NOTHING`,
        part.flatMap(burnToParams),
      );
    }
  }

  /**
   * Customers never disappear, so one seen is cached for good: write paths rely on it only for
   * existence. Name and metadata may change in another process meanwhile, which is why an update
   * reads the row itself ({@link loadCustomerForUpdate}) rather than this cache.
   */
  override async getCustomer(workspaceId: string, customerId: string): Promise<Customer | null> {
    const key = `${workspaceId}/${customerId}`;
    const cached = this.customers.get(key);
    if (cached) return cached;
    const customer = await super.getCustomer(workspaceId, customerId);
    if (customer) {
      if (this.customers.size > 100_000) this.customers.clear();
      this.customers.set(key, customer);
    }
    return customer;
  }

  override async updateCustomer(customer: Customer): Promise<void> {
    await super.updateCustomer(customer);
    // Forgotten rather than replaced: this transaction may still roll back.
    this.customers.delete(`${customer.workspaceId}/${customer.id}`);
  }

  override async loadLedgerForUpdate(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    const row = this.prefetchedMany?.get(ledgerKeyText(key));
    return row === undefined ? loadLedgerAtOnce(this.pg, key) : snapshotOfLedgerRow(key, row);
  }

  /**
   * Rows of {@link LOAD_CUSTOMER_WRITE} read ahead for many keys ({@link prefetchCustomerWrites}),
   * by {@link ledgerKeyText}; dropped at the work's next write.
   */
  private prefetchedMany: Map<string, LedgerRow & CustomerUpkeepRow> | null = null;

  /** Every key's upkeep and ledger, read ahead in one statement per {@link KEYS_PER_PREFETCH} keys. */
  override async prefetchCustomerWrites(keys: readonly LedgerKey[]): Promise<void> {
    // Set after the reads: a read is not a write, so nothing dropped it meanwhile.
    this.prefetchedMany = await readCustomerWrites(this.pg, keys);
  }

  /**
   * The row {@link loadCustomerWrite} would read for a key, read already with the lock
   * ({@link PostgresStorage.write}'s `prefetch` hint); used once, by the first load of that key.
   */
  prefetched: { readonly key: LedgerKey; readonly row: (LedgerRow & CustomerUpkeepRow) | undefined } | null =
    null;

  /** The upkeep facts and the ledger in one statement: one round trip fewer per write. */
  override async loadCustomerWrite(
    key: LedgerKey,
    now: Instant,
  ): Promise<{ upkeep: CustomerUpkeep; ledger: CreditLedgerSnapshot }> {
    const prefetched = this.prefetched;
    this.prefetched = null;
    const row =
      prefetched !== null && sameLedger(prefetched.key, key)
        ? prefetched.row
        : (this.prefetchedMany?.get(ledgerKeyText(key)) ?? (await readCustomerWrite(this.pg, key)));
    return {
      upkeep: upkeepAt(upkeepFactsFromRow(key.workspaceId, key.customerId, row), now),
      ledger: snapshotOfLedgerRow(key, row),
    };
  }

  /**
   * A ledger's writes in as few statements as PostgreSQL's limit of 65,535 bind parameters allows
   * (one, for any ordinary request): data-modifying CTEs on distinct rows. Entries go in multi-row
   * INSERTs in recording order, sent one after another: identity values follow the VALUES order,
   * while the order in which sibling CTEs run is unspecified.
   */
  override async saveLedger(workspaceId: string, changes: LedgerChanges, now: Instant): Promise<void> {
    const writes = this.ledgerWrites(workspaceId, changes, now);
    // Each part is a list of statements; entry INSERTs never share a pack with each other, so
    // their order is the sending order.
    const parts: { statement: SqlStatement; entries: boolean }[] = [
      { statement: writes.balances, entries: false },
      ...writes.updates.map((statement) => ({ statement, entries: false })),
      ...multiRowInserts('debits', DEBIT_COLUMNS, writes.debitRows).map((statement) => ({
        statement,
        entries: false,
      })),
      ...multiRowInserts('entries', ENTRY_COLUMNS, writes.entryRows).map((statement) => ({
        statement,
        entries: true,
      })),
    ];
    // Pack consecutive statements into CTEs under the parameter limit; packs run in order.
    let pack: SqlStatement[] = [];
    let packHasEntries = false;
    let packParams = 0;
    // The balances upsert comes first (w0 of the first pack) and answers with the checkpoint head.
    let head: CheckpointHead | undefined;
    let first = true;
    const flush = async () => {
      const withHead = first && pack.length > 0;
      if (pack.length === 1 && withHead) {
        [head] = await this.pg.allOnce<CheckpointHead>(pack[0]!.sql, pack[0]!.params);
      } else if (pack.length === 1) await this.pg.runOnce(pack[0]!.sql, pack[0]!.params);
      else if (pack.length > 1) {
        const tail = withHead ? 'SELECT since_checkpoint, checkpoint_at FROM w0' : 'SELECT 1';
        const sql = `WITH ${pack.map((st, i) => `w${i} AS (${st.sql})`).join(', ')} ${tail}`;
        const rows = await this.pg.allOnce<CheckpointHead>(
          sql,
          pack.flatMap((st) => st.params),
        );
        if (withHead) head = rows[0];
      }
      if (pack.length > 0) first = false;
      pack = [];
      packHasEntries = false;
      packParams = 0;
    };
    for (const { statement, entries } of parts) {
      if (packParams + statement.params.length > MAX_PARAMS_PER_STATEMENT || (entries && packHasEntries)) {
        await flush();
      }
      pack.push(statement);
      packHasEntries ||= entries;
      packParams += statement.params.length;
    }
    await flush();
    await this.maintainCheckpoints(workspaceId, changes, head);
  }
}

/** Multi-row INSERTs of `rows` (in order), at most {@link ENTRY_ROWS_PER_INSERT} rows each. */
function multiRowInserts(
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): SqlStatement[] {
  const row = `(${columns.map(() => '?').join(', ')})`;
  const out: SqlStatement[] = [];
  for (let i = 0; i < rows.length; i += ENTRY_ROWS_PER_INSERT) {
    const part = rows.slice(i, i + ENTRY_ROWS_PER_INSERT);
    out.push({
      sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${part.map(() => row).join(', ')}`,
      params: part.flat(),
    });
  }
  return out;
}

/**
 * Shared token buckets: one statement per lease, outside any transaction (autocommit; the row lock
 * lasts that statement only). The refill for the time since the row was last touched and the take
 * happen in the same UPDATE, whose SET expressions all read the row as it was, so concurrent
 * leases from several processes queue on the row and never take more than it holds.
 */
export const RATE_LIMIT_TAKE_SQL = `INSERT INTO rate_limit_buckets AS b (bucket_key, tokens, last_granted, updated_at)
  VALUES (?, ?::float8, ?::bigint, ?::bigint)
  ON CONFLICT (bucket_key) DO UPDATE SET
    last_granted = LEAST(?::float8, FLOOR(LEAST(?::float8, b.tokens + GREATEST(0, ?::bigint - b.updated_at) * ?::float8))),
    tokens = LEAST(?::float8, b.tokens + GREATEST(0, ?::bigint - b.updated_at) * ?::float8)
      - LEAST(?::float8, FLOOR(LEAST(?::float8, b.tokens + GREATEST(0, ?::bigint - b.updated_at) * ?::float8))),
    updated_at = GREATEST(b.updated_at, ?::bigint)
  RETURNING last_granted`;

class PgRateLimitLeases implements RateLimitLeases {
  constructor(private readonly db: PgExecutor) {}

  async take(input: {
    bucketKey: string;
    want: number;
    capacity: number;
    refillPerMs: number;
    now: number;
  }): Promise<number> {
    const { bucketKey, want, capacity: cap, refillPerMs: rate, now } = input;
    const first = Math.min(want, Math.floor(cap));
    const row = await this.db.get<{ last_granted: number | string }>(RATE_LIMIT_TAKE_SQL, [
      bucketKey,
      cap - first,
      first,
      now,
      want,
      cap,
      now,
      rate,
      cap,
      now,
      rate,
      want,
      cap,
      now,
      rate,
      now,
    ]);
    return Number(row?.last_granted ?? 0);
  }
}

/**
 * A client that is never without an 'error' listener, from its construction on. pg-pool listens
 * only while a client is idle, and hands it to a waiting `pool.connect()` without one: when one
 * socket read carries both the end of a query and PostgreSQL's FATAL for a terminated backend
 * (a busy process reads late), the 'error' fires before the caller could listen, and an 'error'
 * nobody listens to kills the process. The failure is not lost: the client is marked unusable,
 * its query rejects (or the next one does), and {@link PostgresStorage.write} retries.
 */
class ListenedClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/**
 * The advisory lock id of a lock key: the first 64 bits of its SHA-256, as a signed integer. The
 * same in every process; a collision only serialises two unrelated customers.
 */
export function lockIdOf(lockKey: string): bigint {
  return hash('sha256', lockKey, 'buffer').readBigInt64BE(0);
}

/**
 * `BEGIN` and a transaction-scoped advisory lock per id, in one message of the simple protocol.
 * The ids are taken once each, in ascending order, so two transactions can never wait for each
 * other in a cycle. An id is a number computed from a key, so no client text is spliced into SQL.
 */
function beginWithLocks(lockIds: readonly bigint[]): string {
  const ids = [...new Set(lockIds)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `BEGIN; ${ids.map((id) => `SELECT pg_advisory_xact_lock(${id});`).join(' ')}`;
}

/** A ledger write waiting for group commit, and how to answer its caller. */
interface BatchedWrite extends BatchableWrite {
  readonly lockKey: string;
  readonly prefetch: LedgerKey;
  readonly work: (tx: WriteOperations) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** What one write's work settled to inside a batch. */
type BatchSettlement =
  | { readonly write: BatchedWrite; readonly ok: true; readonly value: unknown }
  | { readonly write: BatchedWrite; readonly ok: false; readonly error: unknown };

/** Writes grouped by lock id, each group in arrival order (never empty). */
function chainsOf(writes: readonly BatchedWrite[]): [BatchedWrite, ...BatchedWrite[]][] {
  const chains = new Map<bigint, [BatchedWrite, ...BatchedWrite[]]>();
  for (const write of writes) {
    const chain = chains.get(write.lockId);
    if (chain === undefined) chains.set(write.lockId, [write]);
    else chain.push(write);
  }
  return [...chains.values()];
}

/** A work swallowed the error of a failed statement; the transaction it aborted committed nothing. */
export class TransactionAborted extends Error {
  constructor() {
    super('the transaction was rolled back: one of its statements failed and the error was not propagated');
    this.name = 'TransactionAborted';
  }
}

/**
 * Whether a failed `COMMIT` was refused by the driver before it was sent: its connection had
 * already failed, so PostgreSQL rolls the transaction back and nothing of it committed.
 */
function commitNeverSent(error: unknown): boolean {
  return /is not queryable/.test((error as { message?: string }).message ?? '');
}

/** SQLSTATEs after which the whole transaction can safely run again. */
const RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown (backend terminated)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
]);

function isRetryable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; constraint?: string };
  if (e.code && RETRYABLE.has(e.code)) return true;
  // Two requests with one Idempotency-Key for different customers raced: the rerun sees the winner.
  if (e.code === '23505' && e.constraint === 'idempotency_keys_pkey') return true;
  return /Connection terminated|ECONNRESET|ECONNREFUSED|Client has encountered a connection error/.test(
    e.message ?? '',
  );
}

/**
 * The PostgreSQL adapter: any number of stateless server processes may share one database.
 *
 * Concurrency: every write transaction first takes a transaction-scoped advisory lock on its
 * customer (`pg_advisory_xact_lock(<64-bit hash of the key>)`), so writes to one customer are
 * serialised across all processes while different customers proceed in parallel (no global lock,
 * no hot row). Each transaction takes exactly one such lock, so lock ordering cannot deadlock.
 * READ COMMITTED is then enough: everything a write reads about its customer is read under the
 * lock, after the previous holder committed. A transaction that fails before COMMIT is sent
 * (lost connection, terminated backend, deadlock) is rolled back by PostgreSQL and retried a
 * bounded number of times; a failure during COMMIT is reported, never retried blindly (the
 * client's Idempotency-Key makes its own retry safe).
 */
export class PostgresStorage implements Storage {
  readonly dialect = 'postgres' as const;
  readonly read: ReadOperations;
  readonly rateLimitLeases: RateLimitLeases;
  private readonly reads: PgExecutor;
  private readonly maxAttempts: number;
  /** Customers seen by this process (immutable once created, so safe to share between transactions). */
  private readonly customers = new Map<string, Customer>();

  private constructor(
    private readonly pool: pg.Pool,
    options: PostgresStorageOptions,
  ) {
    this.reads = new PgExecutor(pool);
    this.read = new PgReads(this.reads);
    this.rateLimitLeases = new PgRateLimitLeases(this.reads);
    this.maxAttempts = options.maxAttempts ?? 5;
    this.checkpointInterval = options.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL;
    const slots = options.writeBatches ?? DEFAULT_WRITE_BATCHES;
    this.batcher =
      slots > 0
        ? new WriteBatcher((writes) => this.runBatch(writes), {
            slots,
            maxWrites: MAX_WRITES_PER_BATCH,
            maxPerLock: MAX_WRITES_PER_LOCK,
          })
        : null;
  }

  /** Group commit of ledger writes; null when `writeBatches` is 0. */
  private readonly batcher: WriteBatcher<BatchedWrite> | null;

  private readonly checkpointInterval: number;

  /**
   * Whether the database exists and its schema (the search path's) holds Burndown's tables;
   * changes nothing. A connection refused or denied is an error, not a state.
   */
  static async state(
    options: Pick<PostgresStorageOptions, 'connectionString' | 'schema'>,
  ): Promise<DatabaseState> {
    const client = new pg.Client({
      connectionString: options.connectionString,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      // 3D000: invalid_catalog_name, the database named in the URL does not exist.
      if ((error as { code?: string }).code === '3D000') return 'missing';
      throw error;
    }
    try {
      const { rows } = await client.query<{ found: boolean }>(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS found",
      );
      return rows[0]?.found === true ? 'ready' : 'not_migrated';
    } finally {
      await client.end();
    }
  }

  /** Connects, then applies pending migrations (safe when several processes start at once). */
  static async open(options: PostgresStorageOptions): Promise<PostgresStorage> {
    const pool = new pg.Pool({
      Client: ListenedClient,
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      // Queries are sent without waiting for the previous one's answer. Every caller awaits its
      // queries one by one, which behaves as without it, except where a write sends its first
      // read together with BEGIN (see write).
      pipeline: true,
      // The messages of a query (and of queries sent together) leave in one send, not one each.
      stream: coalescingSocket,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    // An idle client losing its backend must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    const storage = new PostgresStorage(pool, options);
    await storage.migrate();
    return storage;
  }

  /**
   * A write. A ledger write (one customer's lock, with a `prefetch` hint: debits, holds, captures,
   * releases) goes through group commit ({@link WriteBatcher}, {@link runBatch}); any other write,
   * and one that asks for `ownTransaction` (an audited change: grants, manual debits), runs in its
   * own transaction.
   */
  write<T>(
    lockKey: string | readonly string[],
    work: (tx: WriteOperations) => Promise<T>,
    hints: WriteHints = {},
  ): Promise<T> {
    const prefetch = hints.prefetch;
    if (
      this.batcher === null ||
      prefetch === undefined ||
      hints.ownTransaction === true ||
      typeof lockKey !== 'string'
    ) {
      return this.writeAlone(lockKey, work, hints);
    }
    const batcher = this.batcher;
    return new Promise<T>((resolve, reject) => {
      batcher.submit({
        lockKey,
        lockId: lockIdOf(lockKey),
        prefetch,
        work,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
    });
  }

  /** One write in its own transaction, retried on a deadlock or a lost connection before COMMIT. */
  private async writeAlone<T>(
    lockKey: string | readonly string[],
    work: (tx: WriteOperations) => Promise<T>,
    hints: WriteHints,
  ): Promise<T> {
    // Several customers' locks are always taken in ascending id order, so two transactions can
    // never wait for each other in a cycle (one that takes a single lock cannot either).
    const begin = beginWithLocks((typeof lockKey === 'string' ? [lockKey] : lockKey).map(lockIdOf));
    for (let attempt = 1; ; attempt++) {
      const client = await this.checkout();
      let committing = false;
      let broken = false;
      try {
        // The simple protocol carries BEGIN and the locks in one message. The lock id is a number
        // computed here from the key, so no client text is ever spliced into SQL.
        const executor = new PgExecutor(client);
        const writes = new PgWrites(executor, this.customers);
        writes.checkpointInterval = this.checkpointInterval;
        const prefetch = hints.prefetch;
        if (prefetch === undefined) {
          await client.query(begin);
        } else {
          // The connection pipelines (the pool's `pipeline`): the prefetched read goes out right
          // behind BEGIN and the lock, without waiting for their answer, and PostgreSQL runs it
          // once the lock is held. Both are awaited before the work starts: the work reads the
          // clock first, and a write that waited for the lock must stamp its entries later than
          // the holder it waited for (the auto top-up e2e test fails if the work starts early).
          const opened = client.query(begin);
          const read = readCustomerWrite(executor, prefetch);
          const [began, row] = await Promise.allSettled([opened, read]);
          // If the lock failed, the read failed with the aborted transaction: the lock's error is the cause.
          if (began.status === 'rejected') throw began.reason;
          if (row.status === 'rejected') throw row.reason;
          // Only until the work writes (PgWrites drops it then): after that, a load must read again.
          writes.prefetched = { key: prefetch, row: row.value };
        }
        const result = await work(writes);
        committing = true;
        const committed = await client.query('COMMIT');
        // PostgreSQL answers COMMIT of a transaction a failed statement aborted with ROLLBACK, not
        // an error: had a work swallowed that statement's error, its write would be lost unseen.
        if (committed.command === 'ROLLBACK') {
          committing = false;
          throw new TransactionAborted();
        }
        return result;
      } catch (error) {
        if (!committing) {
          try {
            await client.query('ROLLBACK');
          } catch {
            broken = true;
          }
        } else {
          broken = true;
          // A COMMIT the driver refused to send (its connection had failed) never reached
          // PostgreSQL, which rolls the transaction back with the connection: safe to run again.
          if (commitNeverSent(error)) committing = false;
        }
        if (!committing && isRetryable(error) && attempt < this.maxAttempts) {
          await new Promise((resolve) => setTimeout(resolve, 2 ** attempt + Math.random() * 10));
          continue;
        }
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  /**
   * Group commit: a batch of ledger writes in one transaction. Writes of different customers run
   * concurrently, their statements pipelined on the one connection; writes of one customer run one
   * after another, in arrival order. Each write is answered after the COMMIT that made it durable.
   *
   * A write whose work fails without having written anything (a 404, a validation error, a
   * reused Idempotency-Key) fails alone and the others commit. Any other failure (a statement that
   * failed and so aborted the transaction, a work that failed after writing, a lost connection)
   * rolls the batch back and runs each of its writes alone, as if it had never been batched: a
   * work may always run again (as on a retry). If COMMIT fails, every write of the batch reports it,
   * as a single write does (unless the driver never sent it: then they run again alone).
   */
  private async runBatch(writes: BatchedWrite[]): Promise<void> {
    const only = writes.length === 1 ? writes[0] : undefined;
    if (only !== undefined) {
      await this.settleAlone(only);
      return;
    }
    let settled: BatchSettlement[] | null;
    try {
      settled = await this.commitTogether(writes);
    } catch (error) {
      for (const write of writes) write.reject(error);
      return;
    }
    if (settled === null) {
      // Rolled back: each write runs alone, a customer's writes still one after another.
      await Promise.all(
        chainsOf(writes).map(async (chain) => {
          for (const write of chain) await this.settleAlone(write);
        }),
      );
      return;
    }
    for (const outcome of settled) {
      if (outcome.ok) outcome.write.resolve(outcome.value);
      else outcome.write.reject(outcome.error);
    }
  }

  /** Runs a batched write in its own transaction and answers its caller. */
  private settleAlone(write: BatchedWrite): Promise<void> {
    return this.writeAlone(write.lockKey, write.work, { prefetch: write.prefetch }).then(
      write.resolve,
      write.reject,
    );
  }

  /**
   * The transaction of {@link runBatch}: what each write's work settled to, once committed; null
   * when the batch was rolled back (or never began); throws the error of a failed COMMIT.
   */
  private async commitTogether(writes: readonly BatchedWrite[]): Promise<BatchSettlement[] | null> {
    let client: pg.PoolClient;
    try {
      client = await this.checkout();
    } catch {
      return null;
    }
    let broken = false;
    const rollBack = async (): Promise<null> => {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      return null;
    };
    try {
      // BEGIN and every lock, and right behind them (pipelined) one read of every write's ledger.
      const chains = chainsOf(writes);
      const opened = client.query(beginWithLocks(writes.map((write) => write.lockId)));
      // Only the first write of each customer can use what is read with the lock (see below).
      const read = readCustomerWrites(
        new PgExecutor(client),
        chains.map(([head]) => head.prefetch),
      );
      const [began, rows] = await Promise.allSettled([opened, read]);
      if (began.status === 'rejected' || rows.status === 'rejected') return await rollBack();
      const settled: BatchSettlement[] = [];
      let clean = true;
      await Promise.all(
        chains.map(async (chain) => {
          let first = true;
          for (const write of chain) {
            const executor = new PgExecutor(client);
            const tx = new PgWrites(executor, this.customers);
            tx.checkpointInterval = this.checkpointInterval;
            // Only the first write of a customer finds its ledger as read with the lock.
            if (first)
              tx.prefetched = { key: write.prefetch, row: rows.value.get(ledgerKeyText(write.prefetch)) };
            first = false;
            let wrote = false;
            const dropPrefetched = executor.beforeWrite;
            executor.beforeWrite = () => {
              wrote = true;
              dropPrefetched?.();
            };
            try {
              settled.push({ write, ok: true, value: await write.work(tx) });
            } catch (error) {
              if (wrote || error instanceof pg.DatabaseError || isRetryable(error)) clean = false;
              settled.push({ write, ok: false, error });
            }
          }
        }),
      );
      if (!clean) return await rollBack();
      let committed: pg.QueryResult;
      try {
        committed = await client.query('COMMIT');
      } catch (error) {
        broken = true;
        // Never sent: nothing of the batch can commit, so each write runs again alone.
        if (commitNeverSent(error)) return null;
        throw error;
      }
      // A transaction aborted by a failed statement whose error a work swallowed "commits" as a
      // ROLLBACK: nothing of it happened, so each write runs again alone.
      return committed.command === 'ROLLBACK' ? null : settled;
    } catch (error) {
      if (broken) throw error;
      return await rollBack();
    } finally {
      client.release(broken);
    }
  }

  /**
   * A pooled client. Every client listens for 'error' from birth ({@link ListenedClient}): a
   * backend terminated while the client is checked out (or being handed over) emits 'error', which
   * would otherwise crash the process. The failing query rejects too, and that is what the
   * transaction loop acts on.
   */
  private checkout(): Promise<pg.PoolClient> {
    return this.pool.connect();
  }

  async migrate(): Promise<void> {
    const client = await this.checkout();
    try {
      // One process migrates at a time; the others wait, then find nothing left to do.
      await client.query("SELECT pg_advisory_lock(hashtextextended('burndown:migrations', 0))");
      try {
        await client.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
        );
        const applied = new Set(
          (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
            (r) => r.version,
          ),
        );
        for (const migration of POSTGRES_MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(migration.sql);
            await client.query(
              'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
              [migration.version, migration.name, Date.now()],
            );
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
        }
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtextextended('burndown:migrations', 0))");
      }
    } finally {
      client.release();
    }
  }

  operationalGauges(now: Instant): Promise<OperationalGauges> {
    return readOperationalGauges(this.reads, 'postgres', now);
  }

  findDueLedgers(now: Instant, limit: number): Promise<LedgerKey[]> {
    return findDueLedgers(this.reads, now, limit);
  }

  async readSnapshot<T>(work: (source: ReconciliationSource) => Promise<T>): Promise<T> {
    const client = await this.checkout();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await work(snapshotSource(new PgExecutor(client)));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
