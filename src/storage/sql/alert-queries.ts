import type { BalanceThreshold, ThresholdKind } from '../../domain/alerts/balance-thresholds.js';
import { Amount } from '../../domain/amount/amount.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  AlertReadOperations,
  AlertWriteOperations,
  ExpiringGrant,
  LedgerKey,
  Page,
  PageRequest,
  ThresholdListQuery,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';
import { keyParts, pageOf } from './paging.js';

/**
 * SQL of balance alerts (both dialects). A workspace default is stored with customer_id '' so the
 * scope index covers both kinds in one lookup; a threshold's state row exists only while it has
 * fired for that customer (deleted when it recovers).
 */
export const AQ = {
  get: `SELECT id, workspace_id, customer_id, credit_type, kind, value, created_at FROM balance_thresholds
     WHERE workspace_id = ? AND id = ?`,
  list: `SELECT id, workspace_id, customer_id, credit_type, kind, value, created_at FROM balance_thresholds
     WHERE workspace_id = ? AND customer_id = ? ORDER BY created_at, id`,
  listOfType: `SELECT id, workspace_id, customer_id, credit_type, kind, value, created_at FROM balance_thresholds
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? ORDER BY created_at, id`,
  insert: `INSERT INTO balance_thresholds (workspace_id, id, customer_id, credit_type, kind, value, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  delete: 'DELETE FROM balance_thresholds WHERE workspace_id = ? AND id = ?',
  deleteStates: 'DELETE FROM balance_threshold_states WHERE workspace_id = ? AND threshold_id = ?',
  forLedger: `SELECT t.id, t.workspace_id, t.customer_id, t.credit_type, t.kind, t.value, t.created_at,
       s.fired_at
     FROM balance_thresholds t
     LEFT JOIN balance_threshold_states s
       ON s.workspace_id = t.workspace_id AND s.threshold_id = t.id AND s.customer_id = ?
     WHERE t.workspace_id = ? AND t.credit_type = ? AND t.customer_id IN (?, '')`,
  runway: `SELECT id, workspace_id, customer_id, credit_type, kind, value, created_at FROM balance_thresholds
     WHERE kind = 'runway_hours' AND (workspace_id > ? OR (workspace_id = ? AND id > ?))
     ORDER BY workspace_id, id LIMIT ?`,
  fired: `INSERT INTO balance_threshold_states (workspace_id, threshold_id, customer_id, fired_at)
     VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, threshold_id, customer_id) DO NOTHING`,
  recovered:
    'DELETE FROM balance_threshold_states WHERE workspace_id = ? AND threshold_id = ? AND customer_id = ?',
  grantedInForce: `SELECT amount FROM grants
     WHERE workspace_id = ? AND customer_id = ? AND credit_type = ? AND closed_reason IS NULL
       AND effective_at <= ? AND (expires_at IS NULL OR expires_at > ?)`,
  expiring: `SELECT g.workspace_id, g.id, g.customer_id, g.credit_type, g.expires_at, g.available, g.held
     FROM grants g
     WHERE g.is_open = 1 AND g.closed_reason IS NULL AND g.expires_at IS NOT NULL
       AND g.expires_at > ? AND g.expires_at <= ?
       AND NOT EXISTS (SELECT 1 FROM grant_expiry_notices n
         WHERE n.workspace_id = g.workspace_id AND n.grant_id = g.id AND n.lead_ms = ?)
     ORDER BY g.expires_at, g.id LIMIT ?`,
  notice: `INSERT INTO grant_expiry_notices (workspace_id, grant_id, lead_ms, noticed_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (workspace_id, grant_id, lead_ms) DO NOTHING`,
} as const;

interface ThresholdRow {
  id: string;
  workspace_id: string;
  customer_id: string;
  credit_type: string;
  kind: string;
  value: string;
  created_at: number | string;
}

function thresholdFromRow(row: ThresholdRow): BalanceThreshold {
  return {
    workspaceId: row.workspace_id,
    id: row.id,
    customerId: row.customer_id === '' ? null : row.customer_id,
    creditType: row.credit_type,
    kind: row.kind as ThresholdKind,
    value: Amount.parse(row.value),
    createdAt: Number(row.created_at),
  };
}

/** Reads of balance thresholds over one executor. */
export class AlertReads implements AlertReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async getThreshold(workspaceId: string, id: string): Promise<BalanceThreshold | null> {
    const row = await this.db.get<ThresholdRow>(AQ.get, [workspaceId, id]);
    return row ? thresholdFromRow(row) : null;
  }

  async listThresholds(query: ThresholdListQuery): Promise<readonly BalanceThreshold[]> {
    const scope = query.customerId ?? '';
    const rows =
      query.creditType === null
        ? await this.db.all<ThresholdRow>(AQ.list, [query.workspaceId, scope])
        : await this.db.all<ThresholdRow>(AQ.listOfType, [query.workspaceId, scope, query.creditType]);
    return rows.map(thresholdFromRow);
  }

  async thresholdsForLedger(
    key: LedgerKey,
  ): Promise<readonly { threshold: BalanceThreshold; fired: boolean }[]> {
    const rows = await this.db.all<ThresholdRow & { fired_at: number | string | null }>(AQ.forLedger, [
      key.customerId,
      key.workspaceId,
      key.creditType,
      key.customerId,
    ]);
    return rows.map((r) => ({ threshold: thresholdFromRow(r), fired: r.fired_at !== null }));
  }

  async runwayThresholds(page: PageRequest): Promise<Page<BalanceThreshold>> {
    const [ws = '', id = ''] = keyParts(page, 2) ?? [];
    const rows = await this.db.all<ThresholdRow>(AQ.runway, [ws, ws, id, page.limit + 1]);
    return pageOf(rows.map(thresholdFromRow), page.limit, (t) => [t.workspaceId, t.id]);
  }
}

/** Writes of balance thresholds and their state, inside the caller's transaction. */
export class AlertWrites extends AlertReads implements AlertWriteOperations {
  async insertThreshold(t: BalanceThreshold): Promise<void> {
    await this.db.run(AQ.insert, [
      t.workspaceId,
      t.id,
      t.customerId ?? '',
      t.creditType,
      t.kind,
      t.value.toString(),
      t.createdAt,
    ]);
  }

  async deleteThreshold(workspaceId: string, id: string): Promise<boolean> {
    await this.db.run(AQ.deleteStates, [workspaceId, id]);
    return (await this.db.run(AQ.delete, [workspaceId, id])) > 0;
  }

  async markThresholdFired(
    workspaceId: string,
    thresholdId: string,
    customerId: string,
    at: Instant,
  ): Promise<void> {
    await this.db.run(AQ.fired, [workspaceId, thresholdId, customerId, at]);
  }

  async markThresholdRecovered(workspaceId: string, thresholdId: string, customerId: string): Promise<void> {
    await this.db.run(AQ.recovered, [workspaceId, thresholdId, customerId]);
  }

  async grantedInForce(key: LedgerKey, now: Instant): Promise<Amount> {
    const rows = await this.db.all<{ amount: string }>(AQ.grantedInForce, [
      key.workspaceId,
      key.customerId,
      key.creditType,
      now,
      now,
    ]);
    return Amount.sum(rows.map((r) => Amount.parse(String(r.amount))));
  }

  async expiringWithoutNotice(
    now: Instant,
    leadMs: number,
    limit: number,
  ): Promise<readonly ExpiringGrant[]> {
    const rows = await this.db.all<{
      workspace_id: string;
      id: string;
      customer_id: string;
      credit_type: string;
      expires_at: number | string;
      available: string;
      held: string;
    }>(AQ.expiring, [now, now + leadMs, leadMs, limit]);
    return rows.map((r) => ({
      workspaceId: r.workspace_id,
      grantId: r.id,
      customerId: r.customer_id,
      creditType: r.credit_type,
      expiresAt: Number(r.expires_at),
      remaining: Amount.parse(String(r.available)).plus(Amount.parse(String(r.held))),
    }));
  }

  async recordExpiryNotice(
    workspaceId: string,
    grantId: string,
    leadMs: number,
    at: Instant,
  ): Promise<boolean> {
    return (await this.db.run(AQ.notice, [workspaceId, grantId, leadMs, at])) > 0;
  }
}
