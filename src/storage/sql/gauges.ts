import type { Instant } from '../../domain/time/instant.js';
import type { OperationalGauges } from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';

/**
 * The queries behind {@link OperationalGauges}, each answered from a partial index so a scrape
 * costs what is open or owed, not the size of the books:
 *
 * - open holds: `holds_active` (status = 'active'): O(active holds);
 * - overage: `balances_owing` (overage ≠ 0, migration 6): O(ledgers that owe);
 * - oldest due instants: MIN over `grants_due_expiry`, `grants_due_activation`, `holds_due` and
 *   `subscriptions_due`: one index probe each;
 * - the webhook backlog: `outbox_events_to_fan_out` (fanned_out = 0) and `webhook_deliveries_due`
 *   (state = 'pending'): O(backlog) for the counts, one probe for the oldest due delivery.
 *
 * Sums are float64 (metrics only; ~15 significant digits): SQLite casts the exact decimal text,
 * PostgreSQL sums exact NUMERIC and converts once.
 */
function queries(dialect: 'sqlite' | 'postgres') {
  const real = (column: string) =>
    dialect === 'sqlite' ? `TOTAL(CAST(${column} AS REAL))` : `COALESCE(SUM(${column}), 0)::float8`;
  const owing = dialect === 'sqlite' ? `overage <> '0'` : 'overage <> 0';
  return {
    openHolds: `SELECT credit_type, COUNT(*) AS n, ${real('amount')} AS total
      FROM holds WHERE status = 'active' GROUP BY credit_type`,
    overage: `SELECT credit_type, COUNT(*) AS n, ${real('overage')} AS total
      FROM balances WHERE ${owing} GROUP BY credit_type`,
    grantExpiry: `SELECT MIN(expires_at) AS due FROM grants
      WHERE is_open = 1 AND closed_reason IS NULL AND expires_at IS NOT NULL`,
    grantActivation: 'SELECT MIN(effective_at) AS due FROM grants WHERE activated = 0 AND is_open = 1',
    holdExpiry: `SELECT MIN(expires_at) AS due FROM holds WHERE status = 'active'`,
    subscriptionReset: 'SELECT MIN(next_due_at) AS due FROM subscriptions WHERE next_due_at IS NOT NULL',
    unfannedEvents: 'SELECT COUNT(*) AS n FROM outbox_events WHERE fanned_out = 0',
    pendingDeliveries: `SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'`,
    oldestDueDelivery: `SELECT MIN(next_attempt_at) AS due FROM webhook_deliveries WHERE state = 'pending'`,
  };
}

const cached = { sqlite: queries('sqlite'), postgres: queries('postgres') };

type GroupRow = { credit_type: string; n: number | string; total: number | string };
type DueRow = { due: number | string | null };
type CountRow = { n: number | string };

/** Reads the gauges through `db` (a reader: nothing is locked or written). */
export async function readOperationalGauges(
  db: SqlExecutor,
  dialect: 'sqlite' | 'postgres',
  now: Instant,
): Promise<OperationalGauges> {
  const q = cached[dialect];
  const groups = (rows: GroupRow[]) =>
    rows.map((r) => ({ creditType: r.credit_type, count: Number(r.n), amount: Math.abs(Number(r.total)) }));
  const due = async (sql: string): Promise<Instant | null> => {
    const row = await db.get<DueRow>(sql, []);
    if (!row || row.due === null || row.due === undefined) return null;
    const at = Number(row.due);
    return at <= now ? at : null;
  };
  const count = async (sql: string): Promise<number> => Number((await db.get<CountRow>(sql, []))?.n ?? 0);
  return {
    openHolds: groups(await db.all<GroupRow>(q.openHolds, [])),
    overage: groups(await db.all<GroupRow>(q.overage, [])),
    oldestDue: {
      grant_expiry: await due(q.grantExpiry),
      grant_activation: await due(q.grantActivation),
      hold_expiry: await due(q.holdExpiry),
      subscription_reset: await due(q.subscriptionReset),
    },
    webhooks: {
      unfannedEvents: await count(q.unfannedEvents),
      pendingDeliveries: await count(q.pendingDeliveries),
      oldestDueDelivery: await due(q.oldestDueDelivery),
    },
  };
}
