import { DEBIT_COLUMNS, ENTRY_COLUMNS, GRANT_COLUMNS, HOLD_COLUMNS } from '../rows.js';

/**
 * SQL shared by every dialect, written in the subset SQLite and PostgreSQL agree on (`?`
 * parameters, `ON CONFLICT … DO UPDATE SET … = excluded.…`, row-value comparisons).
 */
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
const upsertSet = (columns: readonly string[]) =>
  columns
    .filter((c) => c !== 'id')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');

export const Q = {
  getCustomer: 'SELECT * FROM customers WHERE workspace_id = ? AND id = ?',
  listCustomers: 'SELECT * FROM customers WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  updateCustomer: 'UPDATE customers SET name = ?, metadata = ? WHERE workspace_id = ? AND id = ?',
  insertCustomer:
    'INSERT INTO customers (workspace_id, id, name, metadata, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
  getCreditType: 'SELECT * FROM credit_types WHERE workspace_id = ? AND id = ?',
  listCreditTypes: 'SELECT * FROM credit_types WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  insertCreditType:
    'INSERT INTO credit_types (workspace_id, id, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  getBalances:
    'SELECT issued, consumed, expired, voided, overage, clawed_back FROM balances WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
  /** Also counts the entries recorded since the last checkpoint, and answers with that count (see checkpoints.ts). */
  upsertBalances: `INSERT INTO balances (workspace_id, customer_id, credit_type, issued, consumed, expired, voided, overage, clawed_back, updated_at, since_checkpoint)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, customer_id, credit_type) DO UPDATE SET issued = excluded.issued,
       consumed = excluded.consumed, expired = excluded.expired, voided = excluded.voided,
       overage = excluded.overage, clawed_back = excluded.clawed_back, updated_at = excluded.updated_at,
       since_checkpoint = balances.since_checkpoint + excluded.since_checkpoint
     RETURNING since_checkpoint, checkpoint_at`,
  /**
   * The balances write of a writer that knows the row exists and its checkpoint count (the SQLite
   * writer's ledger cache): no conflict resolution and no RETURNING, about half the upsert's cost.
   */
  updateBalances: `UPDATE balances SET issued = ?, consumed = ?, expired = ?, voided = ?, overage = ?,
       clawed_back = ?, updated_at = ?, since_checkpoint = ?
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?`,
  /** The balances write of a ledger that has no row yet (same writer as {@link updateBalances}). */
  insertBalances: `INSERT INTO balances (workspace_id, customer_id, credit_type, issued, consumed, expired, voided, overage, clawed_back, updated_at, since_checkpoint)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  /** What {@link upsertBalances} answers, read when a ledger is loaded from the database. */
  balancesHead:
    'SELECT since_checkpoint, checkpoint_at FROM balances WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
  /** The greatest (at, seq) of a ledger: where a checkpoint written now cuts. */
  lastEntryOfLedger: `SELECT at, seq FROM entries WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?
     ORDER BY at DESC, seq DESC LIMIT 1`,
  putCheckpoint: `INSERT INTO ledger_checkpoints (workspace_id, customer_id, credit_type, at, seq, balances)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, customer_id, credit_type, at, seq) DO UPDATE SET balances = excluded.balances`,
  checkpointWritten:
    'UPDATE balances SET checkpoint_at = ?, since_checkpoint = 0 WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
  checkpointsAfter: `SELECT at, seq, balances FROM ledger_checkpoints
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at > ?`,
  updateCheckpoint: `UPDATE ledger_checkpoints SET balances = ?
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at = ? AND seq = ?`,
  latestCheckpointUpTo: `SELECT at, seq, balances FROM ledger_checkpoints
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at <= ?
     ORDER BY at DESC, seq DESC LIMIT 1`,
  /** The first checkpoint whose cut is after (at, seq). */
  nextCheckpointAfter: `SELECT at, seq FROM ledger_checkpoints
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at >= ? AND (at > ? OR seq > ?)
     ORDER BY at, seq LIMIT 1`,
  /** Entries after a cut (at, seq), in ledger order. */
  entriesAfterCut: `SELECT from_account, to_account, amount, at, seq FROM entries
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at >= ? AND (at > ? OR seq > ?)
     ORDER BY at, seq LIMIT ?`,
  raiseCheckpointAt: `UPDATE balances SET checkpoint_at = ?
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND (checkpoint_at IS NULL OR checkpoint_at < ?)`,
  /**
   * A point-in-time read in one statement (one snapshot): the latest checkpoint at or before the
   * instant (a row with balances), then the entries after its cut up to the instant.
   */
  checkpointedEntriesUpTo: `WITH c AS (
       SELECT at, seq, balances FROM ledger_checkpoints
       WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at <= ?
       ORDER BY at DESC, seq DESC LIMIT 1)
     SELECT NULL AS from_account, NULL AS to_account, NULL AS amount, NULL AS grant_id, at, seq, balances FROM c
     UNION ALL
     SELECT e.from_account, e.to_account, e.amount, e.grant_id, e.at, e.seq, NULL FROM entries e
     WHERE e.workspace_id = ? AND e.customer_id = ? AND e.credit_type = ? AND e.at <= ?
       AND e.at >= COALESCE((SELECT at FROM c), -9007199254740991)
       AND (e.at > COALESCE((SELECT at FROM c), -9007199254740991) OR e.seq > COALESCE((SELECT seq FROM c), -1))`,
  openGrants:
    'SELECT * FROM grants WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND is_open = 1',
  activeHolds: `SELECT * FROM holds WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND status = 'active'`,
  getGrant: 'SELECT * FROM grants WHERE workspace_id = ? AND id = ?',
  upsertGrant: `INSERT INTO grants (${GRANT_COLUMNS.join(', ')}) VALUES (${placeholders(GRANT_COLUMNS.length)})
     ON CONFLICT (id) DO UPDATE SET ${upsertSet(GRANT_COLUMNS)}`,
  /** The common case: a grant's balances moved, its state did not (touches no index). */
  updateGrantAmounts: 'UPDATE grants SET available = ?, held = ? WHERE id = ?',
  updateGrantState: `UPDATE grants SET available = ?, held = ?, closed_reason = ?, closed_at = ?, activated = ?, is_open = ?
     WHERE id = ?`,
  getHold: 'SELECT * FROM holds WHERE workspace_id = ? AND id = ?',
  upsertHold: `INSERT INTO holds (${HOLD_COLUMNS.join(', ')}) VALUES (${placeholders(HOLD_COLUMNS.length)})
     ON CONFLICT (id) DO UPDATE SET ${upsertSet(HOLD_COLUMNS)}`,
  insertDebit: `INSERT INTO debits (${DEBIT_COLUMNS.join(', ')}) VALUES (${placeholders(DEBIT_COLUMNS.length)})`,
  insertEntry: `INSERT INTO entries (${ENTRY_COLUMNS.join(', ')}) VALUES (${placeholders(ENTRY_COLUMNS.length)})`,
  latestEntryAt:
    'SELECT MAX(at) AS at FROM entries WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
  entriesUpTo:
    'SELECT * FROM entries WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND at <= ? ORDER BY at, seq',
  getIdempotency: 'SELECT * FROM idempotency_keys WHERE workspace_id = ? AND key = ?',
  putIdempotency: `INSERT INTO idempotency_keys (workspace_id, key, fingerprint, status_code, response_body, created_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  deleteIdempotency: 'DELETE FROM idempotency_keys WHERE created_at < ?',
  findApiKey: 'SELECT * FROM api_keys WHERE key_hash = ?',
  listApiKeys: 'SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id',
  insertApiKey: `INSERT INTO api_keys (id, workspace_id, key_hash, scope, name, created_at, revoked_at,
       permissions, expires_at, last_used_at, rate_limit)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING`,
  markApiKeyUsed:
    'UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)',
  setApiKeyPermissions: 'UPDATE api_keys SET permissions = ? WHERE id = ?',
  getWorkspace: 'SELECT id, name, created_at FROM workspaces WHERE id = ?',
  listWorkspaces: 'SELECT id, name, created_at FROM workspaces ORDER BY created_at, id',
  insertWorkspace: 'INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  revokeApiKey: 'UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL',
  countApiKeys: 'SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND revoked_at IS NULL',
  ensureWorkspace: 'INSERT INTO workspaces (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
  // The sweeper's reads, each part a range of its partial index (grants_due_expiry,
  // grants_due_activation, holds_due), oldest due first: one OR over both conditions, or a DISTINCT
  // over the table, made SQLite scan every open grant (or active hold) once a second.
  dueGrants: `SELECT workspace_id, customer_id, credit_type FROM (
       SELECT workspace_id, customer_id, credit_type FROM grants
       WHERE is_open = 1 AND closed_reason IS NULL AND expires_at IS NOT NULL AND expires_at <= ?
       ORDER BY expires_at LIMIT ?) AS expiring
     UNION
     SELECT workspace_id, customer_id, credit_type FROM (
       SELECT workspace_id, customer_id, credit_type FROM grants
       WHERE activated = 0 AND is_open = 1 AND effective_at <= ?
       ORDER BY effective_at LIMIT ?) AS activating`,
  dueHolds: `SELECT DISTINCT workspace_id, customer_id, credit_type FROM (
       SELECT workspace_id, customer_id, credit_type FROM holds
       WHERE status = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?) AS expiring`,
  entriesAfterSeq: 'SELECT * FROM entries WHERE seq > ? ORDER BY seq LIMIT ?',
  grantsAfterId: 'SELECT * FROM grants WHERE id > ? ORDER BY id LIMIT ?',
  balancesAfter: `SELECT * FROM balances WHERE (workspace_id, customer_id, credit_type) > (?, ?, ?)
     ORDER BY workspace_id, customer_id, credit_type LIMIT ?`,
  getMeter: 'SELECT * FROM meters WHERE workspace_id = ? AND id = ?',
  listMeters: 'SELECT * FROM meters WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  allMeters: 'SELECT * FROM meters WHERE workspace_id = ? ORDER BY id',
  insertMeter: `INSERT INTO meters (workspace_id, id, event_type, aggregation, value_property, group_by, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  getRate: 'SELECT * FROM rates WHERE workspace_id = ? AND id = ?',
  listRates: 'SELECT * FROM rates WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  allRates: 'SELECT * FROM rates WHERE workspace_id = ? ORDER BY seq',
  insertRate: `INSERT INTO rates (workspace_id, id, meter_id, filter, credit_type, pricing, created_at, seq)
     VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rates WHERE workspace_id = ?)) ON CONFLICT DO NOTHING`,
  workspacesWithRates: 'SELECT DISTINCT workspace_id FROM rates ORDER BY workspace_id',
  insertEvent: `INSERT INTO events (workspace_id, event_key, id, source, type, customer_id, time, data, rules_seq, received_at, unmetered)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  countDuplicate: 'UPDATE events SET duplicates = duplicates + 1 WHERE workspace_id = ? AND event_key = ?',
  deleteEvent: 'DELETE FROM events WHERE workspace_id = ? AND event_key = ?',
  markEventReversed:
    'UPDATE events SET reversed_at = ? WHERE workspace_id = ? AND event_key = ? AND reversed_at IS NULL',
  getEvent: 'SELECT * FROM events WHERE workspace_id = ? AND event_key = ?',
  getDebit: 'SELECT * FROM debits WHERE workspace_id = ? AND id = ?',
  settlementsOfLedger: `SELECT grant_id, amount FROM entries WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?
     AND type = 'overage_settled' ORDER BY at, seq`,
  reversedDebitsOfLedger:
    'SELECT reversed FROM debits WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND reversed IS NOT NULL',
  updateDebitReversed: 'UPDATE debits SET reversed = ? WHERE id = ?',
  reversedDebitsAfter: 'SELECT * FROM debits WHERE id > ? AND reversed IS NOT NULL ORDER BY id LIMIT ?',
  eventsOfTypeAfter: `SELECT * FROM events WHERE workspace_id = ? AND type = ? AND time >= ? AND time < ?
     AND reversed_at IS NULL AND (time > ? OR (time = ? AND event_key > ?)) ORDER BY time, event_key LIMIT ?`,
  eventsOfCustomerAfter: `SELECT * FROM events WHERE workspace_id = ? AND type = ? AND customer_id = ? AND time >= ? AND time < ?
     AND reversed_at IS NULL AND (time > ? OR (time = ? AND event_key > ?)) ORDER BY time, event_key LIMIT ?`,
  allEventsAfter: `SELECT * FROM events WHERE (workspace_id, event_key) > (?, ?) ORDER BY workspace_id, event_key LIMIT ?`,
  allBurnsAfter: `SELECT * FROM event_burns WHERE (workspace_id, event_key, rate_id) > (?, ?, ?)
     ORDER BY workspace_id, event_key, rate_id LIMIT ?`,
  getRateUsage:
    'SELECT quantity FROM rate_usage WHERE workspace_id = ? AND customer_id = ? AND rate_id = ? AND period_start = ?',
  setRateUsage: `INSERT INTO rate_usage (workspace_id, customer_id, rate_id, period_start, quantity) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, customer_id, rate_id, period_start) DO UPDATE SET quantity = excluded.quantity`,
  getBurn: 'SELECT * FROM event_burns WHERE workspace_id = ? AND event_key = ? AND rate_id = ?',
  insertBurn: `INSERT INTO event_burns (workspace_id, event_key, rate_id, customer_id, debit_id, quantity, credits, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
} as const;

/** A shared query's name. */
export type QueryName = keyof typeof Q;
