/**
 * SQLite schema, as an ordered list of migrations. Applied in order at start (and by
 * `burndown migrate`); each runs once, inside the transaction that records it.
 * Amounts are canonical decimal TEXT (64-bit integers cannot hold 15 integer + 12 fractional
 * digits); instants are INTEGER milliseconds.
 */
export const SQLITE_MIGRATIONS: readonly {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}[] = [
  {
    version: 1,
    name: 'ledger',
    sql: `
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL,
  name TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE customers (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE credit_types (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE balances (
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  issued TEXT NOT NULL,
  consumed TEXT NOT NULL,
  expired TEXT NOT NULL,
  voided TEXT NOT NULL,
  overage TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, customer_id, credit_type)
) WITHOUT ROWID;
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  category TEXT NOT NULL,
  amount TEXT NOT NULL,
  priority INTEGER NOT NULL,
  effective_at INTEGER NOT NULL,
  expires_at INTEGER,
  created_at INTEGER NOT NULL,
  cost_basis_amount TEXT,
  cost_basis_currency TEXT,
  applies_to TEXT,
  description TEXT,
  metadata TEXT NOT NULL,
  available TEXT NOT NULL,
  held TEXT NOT NULL,
  closed_reason TEXT,
  closed_at INTEGER,
  activated INTEGER NOT NULL,
  is_open INTEGER NOT NULL
);
CREATE INDEX grants_open ON grants (workspace_id, customer_id, credit_type) WHERE is_open = 1;
CREATE INDEX grants_by_customer ON grants (workspace_id, customer_id, created_at, id);
CREATE INDEX grants_due_expiry ON grants (expires_at) WHERE is_open = 1 AND closed_reason IS NULL AND expires_at IS NOT NULL;
CREATE INDEX grants_due_activation ON grants (effective_at) WHERE activated = 0 AND is_open = 1;
CREATE TABLE holds (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  amount TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  portions TEXT NOT NULL,
  drawdowns TEXT NOT NULL,
  captured_amount TEXT,
  closed_at INTEGER,
  description TEXT,
  metadata TEXT NOT NULL
);
CREATE INDEX holds_active ON holds (workspace_id, customer_id, credit_type) WHERE status = 'active';
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'active';
CREATE TABLE debits (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  amount TEXT NOT NULL,
  drawdowns TEXT NOT NULL,
  overage TEXT NOT NULL,
  hold_id TEXT,
  created_at INTEGER NOT NULL,
  description TEXT,
  metadata TEXT NOT NULL
);
CREATE TABLE entries (
  seq INTEGER PRIMARY KEY, -- entries are never deleted, so rowids are never reused: no AUTOINCREMENT table to update
  id TEXT NOT NULL,
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  type TEXT NOT NULL,
  amount TEXT NOT NULL,
  from_account TEXT NOT NULL,
  to_account TEXT NOT NULL,
  grant_id TEXT,
  ref TEXT,
  at INTEGER NOT NULL,
  balance_after TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX entries_by_ledger ON entries (workspace_id, customer_id, credit_type, at, seq);
CREATE TRIGGER entries_are_append_only_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_are_append_only_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TABLE idempotency_keys (
  workspace_id TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status_code INTEGER NOT NULL,
  response_body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
`,
  },
  {
    version: 2,
    name: 'metering',
    sql: `
CREATE TABLE meters (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  aggregation TEXT NOT NULL,
  value_property TEXT,
  group_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE rates (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  meter_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  pricing TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE events (
  workspace_id TEXT NOT NULL,
  event_key TEXT NOT NULL,
  id TEXT NOT NULL,
  source TEXT,
  type TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  time INTEGER NOT NULL,
  data TEXT NOT NULL,
  rules_seq INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, event_key)
) WITHOUT ROWID;
CREATE INDEX events_by_type_time ON events (workspace_id, type, time);
CREATE INDEX events_by_customer ON events (workspace_id, type, customer_id, time);
CREATE TABLE event_burns (
  workspace_id TEXT NOT NULL,
  event_key TEXT NOT NULL,
  rate_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  debit_id TEXT,
  quantity TEXT NOT NULL,
  credits TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, event_key, rate_id)
) WITHOUT ROWID;
CREATE TABLE rate_usage (
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  rate_id TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  quantity TEXT NOT NULL,
  PRIMARY KEY (workspace_id, customer_id, rate_id, period_start)
) WITHOUT ROWID;
`,
  },
  {
    version: 3,
    name: 'plans',
    sql: `
ALTER TABLE holds ADD COLUMN feature_id TEXT;
ALTER TABLE holds ADD COLUMN usage_quantity TEXT;
ALTER TABLE holds ADD COLUMN usage_period_start INTEGER;
ALTER TABLE debits ADD COLUMN feature_id TEXT;
CREATE TABLE features (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE plan_versions (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id, version)
) WITHOUT ROWID;
CREATE TABLE credit_packs (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE TABLE subscriptions (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  status TEXT NOT NULL,
  next_due_at INTEGER,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, customer_id, id)
) WITHOUT ROWID;
-- Keyed by customer first: every write for a customer asks whether one of its subscriptions is due.
CREATE UNIQUE INDEX subscriptions_by_id ON subscriptions (workspace_id, id);
CREATE INDEX subscriptions_due ON subscriptions (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE TABLE auto_top_ups (
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, customer_id)
) WITHOUT ROWID;
CREATE TABLE feature_usage (
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  feature_id TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  quantity TEXT NOT NULL,
  PRIMARY KEY (workspace_id, customer_id, feature_id, period_start)
) WITHOUT ROWID;
CREATE TABLE purchases (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE INDEX purchases_by_customer ON purchases (workspace_id, customer_id, created_at, id);
`,
  },
  {
    version: 4,
    name: 'event-status-and-corrections',
    sql: `
-- Ingest marks an event no meter could read (1) and counts later deliveries of its id; a
-- reversed event keeps its row (and burns) but leaves meter usage.
ALTER TABLE events ADD COLUMN unmetered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN reversed_at INTEGER;
CREATE INDEX events_by_customer_time ON events (workspace_id, customer_id, time, event_key);
-- What has been reversed of a debit or capture so far, per part (JSON); null: nothing.
ALTER TABLE debits ADD COLUMN reversed TEXT;
-- A corrections-only index: the reversed debits of one ledger (what paid overage was refunded
-- to which grant). Partial, so debits (never reversed when written) do not maintain it.
CREATE INDEX debits_reversed ON debits (workspace_id, customer_id, credit_type) WHERE reversed IS NOT NULL;
-- How much of its feature a debit counted against the usage limit (a reversal gives it back).
ALTER TABLE debits ADD COLUMN quantity TEXT;
`,
  },
  {
    version: 5,
    name: 'ledger checkpoints',
    // Point-in-time reads in bounded time (see src/storage/sql/checkpoints.ts for the invariant).
    // Independent of any other migration: it only adds two columns to balances and one table.
    sql: `
ALTER TABLE balances ADD COLUMN checkpoint_at INTEGER;
ALTER TABLE balances ADD COLUMN since_checkpoint INTEGER NOT NULL DEFAULT 0;
CREATE TABLE ledger_checkpoints (
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  balances TEXT NOT NULL,
  PRIMARY KEY (workspace_id, customer_id, credit_type, at, seq)
) WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: 'owing balances index',
    // /metrics reads the overage outstanding per credit type at each scrape: this partial index
    // holds only the balances that owe something, so that read costs what is owed, not every ledger.
    sql: `
CREATE INDEX balances_owing ON balances (credit_type) WHERE overage <> '0';
`,
  },
  {
    version: 7,
    name: 'outbox',
    // Facts for webhooks, written in the transaction of the change that caused them (docs/design.md).
    sql: `
CREATE TABLE outbox_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  workspace_id TEXT NOT NULL,
  type TEXT NOT NULL,
  customer_id TEXT,
  occurred_at INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX outbox_events_by_time ON outbox_events (workspace_id, occurred_at, seq);
`,
  },
  {
    version: 8,
    name: 'webhook endpoints and deliveries',
    // Outbound webhooks (docs/design.md, "Outbound webhooks"): endpoints, one delivery row per
    // event and endpoint (its retry state and lease), and every attempt for the delivery log.
    sql: `
ALTER TABLE outbox_events ADD COLUMN fanned_out INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_events_to_fan_out ON outbox_events (seq) WHERE fanned_out = 0;
CREATE TABLE webhook_endpoints (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  url TEXT NOT NULL,
  description TEXT,
  event_types TEXT,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_until INTEGER,
  failing_since INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX webhook_endpoints_live ON webhook_endpoints (workspace_id) WHERE deleted_at IS NULL;
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_seq INTEGER NOT NULL,
  customer_id TEXT,
  replay INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, event_id) WHERE replay = 0;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (endpoint_id, customer_id, event_seq)
  WHERE state = 'pending' AND replay = 0;
CREATE TABLE webhook_attempts (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  attempted_at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms INTEGER NOT NULL,
  response_excerpt TEXT,
  error TEXT,
  outcome TEXT NOT NULL
);
CREATE INDEX webhook_attempts_of_endpoint ON webhook_attempts (workspace_id, endpoint_id, id);
CREATE INDEX webhook_attempts_of_event ON webhook_attempts (workspace_id, event_id, id);
`,
  },
  {
    version: 11,
    name: 'finance',
    // Revenue recognition's breakage policies (workspace default: pack_id ''; per credit pack
    // otherwise), what CSV imports created per external id (re-running an import changes nothing),
    // and a partial index of paid grants with a cost basis (the revenue report reads only those).
    sql: `
CREATE TABLE revenue_policies (
  workspace_id TEXT NOT NULL,
  pack_id TEXT NOT NULL,
  policy TEXT NOT NULL,
  expected_breakage_rate TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, pack_id)
) WITHOUT ROWID;
CREATE TABLE import_records (
  workspace_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  external_id TEXT NOT NULL,
  object_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, kind, external_id)
) WITHOUT ROWID;
CREATE INDEX grants_paid ON grants (workspace_id, customer_id, credit_type, id)
  WHERE category = 'paid' AND cost_basis_amount IS NOT NULL;
`,
  },
  {
    version: 10,
    name: 'balance alerts',
    // Balance thresholds (a customer's own, or the workspace default with customer_id ''), the
    // per-customer state of each (a row while it has fired and not recovered), and which
    // grant.expiring_soon notices were written (once per grant and lead time). docs/design.md.
    sql: `
CREATE TABLE balance_thresholds (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
) WITHOUT ROWID;
CREATE INDEX balance_thresholds_scope ON balance_thresholds (workspace_id, credit_type, customer_id);
CREATE INDEX balance_thresholds_by_customer ON balance_thresholds (workspace_id, customer_id, created_at, id);
CREATE TABLE balance_threshold_states (
  workspace_id TEXT NOT NULL,
  threshold_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  fired_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, threshold_id, customer_id)
) WITHOUT ROWID;
CREATE TABLE grant_expiry_notices (
  workspace_id TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  lead_ms INTEGER NOT NULL,
  noticed_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, grant_id, lead_ms)
) WITHOUT ROWID;
`,
  },
  {
    version: 9,
    name: 'stripe payments in',
    // Payments in (docs/design.md, "Payments in"): Stripe events processed once by id, the payments
    // that bought credits (what refunds and disputes find by payment intent or charge), auto
    // top-ups waiting for their charge, and the account of credits taken back.
    sql: `
ALTER TABLE balances ADD COLUMN clawed_back TEXT NOT NULL DEFAULT '0';
CREATE TABLE stripe_events (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  customer_id TEXT,
  object_id TEXT,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX stripe_events_by_time ON stripe_events (workspace_id, received_at, id);
CREATE TABLE stripe_payments (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  payment_intent_id TEXT,
  charge_id TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX stripe_payments_by_intent ON stripe_payments (workspace_id, payment_intent_id);
CREATE INDEX stripe_payments_by_charge ON stripe_payments (workspace_id, charge_id);
CREATE TABLE pending_top_ups (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX pending_top_ups_waiting ON pending_top_ups (created_at, id) WHERE status = 'pending';
`,
  },
  {
    version: 12,
    name: 'governance: workspaces, permissions, audit log, rate limits',
    // Workspaces get a name; keys get `resource:action` permissions (NULL: their scope's preset), an
    // optional expiry, a last-used time (written at most once a minute per key) and an optional rate
    // limit. The audit log is append-only and hash-chained per workspace; `audit_heads` holds each
    // chain's head (its row is locked by every append, so a chain stays linear). `rate_limit_buckets`
    // holds the shared token buckets processes lease tokens from (PostgreSQL; docs/design.md).
    sql: `
ALTER TABLE workspaces ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN permissions TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT;
CREATE TABLE audit_log (
  workspace_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  at INTEGER NOT NULL,
  actor_key_id TEXT,
  request_id TEXT,
  action TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id TEXT NOT NULL,
  before_json TEXT,
  after_json TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX audit_log_by_time ON audit_log (workspace_id, at, seq);
CREATE TABLE audit_heads (
  workspace_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE rate_limit_buckets (
  bucket_key TEXT PRIMARY KEY,
  tokens REAL NOT NULL,
  last_granted INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 13,
    name: 'portal_sessions',
    // Customer portal sessions (docs/design.md): a single-use code, then a short cookie session.
    // Only SHA-256 hashes of the code and of the session token are stored.
    sql: `
CREATE TABLE portal_sessions (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  code_hash TEXT NOT NULL UNIQUE,
  code_expires_at INTEGER NOT NULL,
  code_used_at INTEGER,
  session_hash TEXT UNIQUE,
  session_expires_at INTEGER,
  revoked_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX portal_sessions_by_customer ON portal_sessions (workspace_id, customer_id, created_at);
`,
  },
  {
    version: 14,
    name: 'licensing',
    // Licenses, their machines, floating seats, offline credit leases, accepted usage records and
    // the license-file signing keys (docs/design.md "Licensing").
    sql: `
CREATE TABLE licenses (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  name TEXT,
  plan_id TEXT,
  entitlements TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  key_prefix TEXT NOT NULL,
  machine_limit INTEGER NOT NULL,
  floating_limit INTEGER,
  floating_ttl_ms INTEGER NOT NULL,
  heartbeat_window_ms INTEGER NOT NULL,
  starts_at INTEGER NOT NULL,
  expires_at INTEGER,
  status TEXT NOT NULL,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX licenses_by_customer ON licenses (workspace_id, customer_id, id);
CREATE TABLE license_machines (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  license_id TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  public_key TEXT NOT NULL,
  name TEXT,
  status TEXT NOT NULL,
  activated_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  ended_at INTEGER,
  last_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX license_machines_by_license ON license_machines (workspace_id, license_id, status);
CREATE INDEX license_machines_active ON license_machines (last_seen_at) WHERE status = 'active';
CREATE TABLE license_seats (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  license_id TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  released_at INTEGER,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX license_seats_open ON license_seats (workspace_id, license_id) WHERE released_at IS NULL;
CREATE TABLE license_credit_leases (
  workspace_id TEXT NOT NULL,
  id TEXT NOT NULL,
  license_id TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  credit_type TEXT NOT NULL,
  amount TEXT NOT NULL,
  hold_id TEXT,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  ended_at INTEGER,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX license_credit_leases_open ON license_credit_leases (workspace_id, machine_id) WHERE ended_at IS NULL;
CREATE TABLE license_usage_records (
  workspace_id TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  license_id TEXT NOT NULL,
  hash TEXT NOT NULL,
  event_key TEXT NOT NULL,
  record TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, machine_id, seq)
);
CREATE TABLE licensing_keys (
  kid TEXT NOT NULL PRIMARY KEY,
  public_x TEXT NOT NULL,
  private_key TEXT NOT NULL,
  encrypted INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  retired_at INTEGER
);
`,
  },
  {
    version: 16,
    name: 'grant_revenue_policies',
    // The breakage policy in force when a paid grant with a cost basis was sold or granted
    // (docs/design.md "Revenue recognition of prepaid credits"): later settings changes do not reach it. Grants
    // created before this table have no row and follow the current settings.
    sql: `
CREATE TABLE grant_revenue_policies (
  workspace_id TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  policy TEXT NOT NULL,
  expected_breakage_rate TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, grant_id)
);
`,
  },
  {
    version: 17,
    name: 'events-by-customer-once',
    // The older (workspace_id, type, customer_id, time) index duplicated events_by_customer_time
    // (workspace_id, customer_id, time, event_key), which serves every per-customer read of events
    // (the type is filtered on the customer's rows in the time range). One B-tree fewer per ingested
    // event (bench/README.md).
    sql: `
DROP INDEX IF EXISTS events_by_customer;
`,
  },
];
