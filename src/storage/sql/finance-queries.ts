import { Amount } from '../../domain/amount/amount.js';
import { invalidRequest } from '../../domain/errors.js';
import type { AccountName, EntryType, GrantState } from '../../domain/ledger/types.js';
import { extend } from '../../domain/objects.js';
import type { BreakagePolicy, BreakagePolicyName } from '../../domain/revenue/recognition.js';
import type {
  EventBurn,
  ExportedEntry,
  ExportQuery,
  FinanceReadOperations,
  FinanceWriteOperations,
  ImportRecord,
  ListedEvent,
  Page,
  PageRequest,
  ResumeKey,
  RevenuePolicies,
} from '../../ports/storage.js';
import {
  type BurnRow,
  burnFromRow,
  type EventRow,
  type GrantRow,
  grantFromRow,
  listedEventFromRow,
} from '../rows.js';
import type { SqlExecutor } from './executor.js';

/** SQL of the finance aggregate (both dialects). */
export const FQ = {
  revenuePolicies: `SELECT pack_id, policy, expected_breakage_rate FROM revenue_policies WHERE workspace_id = ?`,
  putRevenuePolicy: `INSERT INTO revenue_policies (workspace_id, pack_id, policy, expected_breakage_rate, updated_at)
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, pack_id) DO UPDATE SET policy = excluded.policy,
     expected_breakage_rate = excluded.expected_breakage_rate, updated_at = excluded.updated_at`,
  deleteRevenuePolicy: 'DELETE FROM revenue_policies WHERE workspace_id = ? AND pack_id = ?',
  importRecord: `SELECT kind, external_id, object_id, created_at FROM import_records
     WHERE workspace_id = ? AND kind = ? AND external_id = ?`,
  grantRevenuePolicy: `SELECT policy, expected_breakage_rate FROM grant_revenue_policies
     WHERE workspace_id = ? AND grant_id = ?`,
  insertGrantRevenuePolicy: `INSERT INTO grant_revenue_policies (workspace_id, grant_id, policy, expected_breakage_rate,
     recorded_at) VALUES (?, ?, ?, ?, ?)`,
  insertImportRecord: `INSERT INTO import_records (workspace_id, kind, external_id, object_id, created_at)
     VALUES (?, ?, ?, ?, ?)`,
} as const;

/** The columns an entries export reads (not the workspace, which the filter fixes). */
const EXPORTED_ENTRY_COLUMNS = [
  'seq',
  'id',
  'customer_id',
  'credit_type',
  'type',
  'amount',
  'from_account',
  'to_account',
  'grant_id',
  'ref',
  'at',
  'balance_after',
  'recorded_at',
] as const;

/** Canonical amount text (what `Amount.toString()` writes): no leading or trailing zeros, no "-0". */
const CANONICAL_AMOUNT = /^(?:0|-?[1-9]\d*(?:\.\d{0,11}[1-9])?|-?0\.\d{0,11}[1-9])$/;

/**
 * A stored amount as its canonical text without parsing it when it already is (SQLite stores
 * `Amount.toString()`); PostgreSQL's NUMERIC(48,12) answers with trailing zeros, which go
 * through {@link Amount.parse}. An export reads two amounts per entry: this keeps it cheap.
 */
export function amountText(stored: string | number): string {
  const text = String(stored);
  return CANONICAL_AMOUNT.test(text) ? text : Amount.parse(text).toString();
}

/** The workspace default's key in `revenue_policies.pack_id`. */
const WORKSPACE_DEFAULT = '';

/** A keyset page's parts, refused as a 400 when a cursor was not made by this export. */
function parts(key: ResumeKey, arity: number): readonly string[] {
  if (key.length !== arity || key.some((p) => p.length > 256)) {
    throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
  }
  return key;
}

function pageOf<T>(rows: readonly T[], limit: number, keyOf: (row: T) => ResumeKey): Page<T> {
  if (rows.length > limit) {
    const items = rows.slice(0, limit);
    return { items, nextAfter: keyOf(items[items.length - 1]!) };
  }
  return { items: rows, nextAfter: null };
}

/**
 * `WHERE` conditions of an export: workspace, optional customer, optional [from, to) on
 * `timeColumn`. With `scanInKeyOrder`, the workspace and customer are compared through an
 * expression (`x || ''`) so no index on them is used: the planner walks the primary key in the
 * export's order and each page costs what it reads, instead of sorting every matching row again
 * for each page (SQLite picks the per-ledger index otherwise, which makes an export quadratic).
 */
function exportConditions(
  query: ExportQuery,
  timeColumn: string,
  scanInKeyOrder = false,
): { where: string[]; params: unknown[] } {
  const column = (name: string) => (scanInKeyOrder ? `(${name} || '')` : name);
  const where = [`${column('workspace_id')} = ?`];
  const params: unknown[] = [query.workspaceId];
  if (query.customerId !== null) {
    where.push(`${column('customer_id')} = ?`);
    params.push(query.customerId);
  }
  if (query.from !== null) {
    where.push(`${timeColumn} >= ?`);
    params.push(query.from);
  }
  if (query.to !== null) {
    where.push(`${timeColumn} < ?`);
    params.push(query.to);
  }
  return { where, params };
}

/** Reads of the finance aggregate over one executor. */
export class FinanceReads implements FinanceReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async paidGrants(
    query: {
      readonly workspaceId: string;
      readonly customerId: string | null;
      readonly createdBefore: number;
    },
    req: PageRequest,
  ): Promise<Page<GrantState>> {
    const where = [
      'workspace_id = ?',
      "category = 'paid'",
      'cost_basis_amount IS NOT NULL',
      'created_at < ?',
    ];
    const params: unknown[] = [query.workspaceId, query.createdBefore];
    if (query.customerId !== null) {
      where.push('customer_id = ?');
      params.push(query.customerId);
    }
    if (req.after !== null) {
      const [customer = '', creditType = '', id = ''] = parts(req.after, 3);
      where.push('(customer_id, credit_type, id) > (?, ?, ?)');
      params.push(customer, creditType, id);
    }
    const rows = await this.db.all<GrantRow>(
      `SELECT * FROM grants WHERE ${where.join(' AND ')} ORDER BY customer_id, credit_type, id LIMIT ?`,
      [...params, req.limit + 1],
    );
    return pageOf(rows.map(grantFromRow), req.limit, (g) => [g.customerId, g.creditType, g.id]);
  }

  async revenuePolicies(workspaceId: string): Promise<RevenuePolicies> {
    const rows = await this.db.all<{ pack_id: string; policy: string; expected_breakage_rate: string }>(
      FQ.revenuePolicies,
      [workspaceId],
    );
    let workspaceDefault: BreakagePolicy | null = null;
    const byPack = new Map<string, BreakagePolicy>();
    for (const row of rows) {
      const policy: BreakagePolicy = {
        policy: row.policy as BreakagePolicyName,
        expectedBreakageRate: Amount.parse(String(row.expected_breakage_rate)),
      };
      if (row.pack_id === WORKSPACE_DEFAULT) workspaceDefault = policy;
      else byPack.set(row.pack_id, policy);
    }
    return { workspaceDefault, byPack };
  }

  async grantRevenuePolicies(
    workspaceId: string,
    grantIds: readonly string[],
  ): Promise<ReadonlyMap<string, BreakagePolicy>> {
    const found = new Map<string, BreakagePolicy>();
    // One point read per grant through one prepared statement (a report asks for one ledger's
    // paid grants at a time: a handful).
    for (const grantId of grantIds) {
      const row = await this.db.get<{ policy: string; expected_breakage_rate: string }>(
        FQ.grantRevenuePolicy,
        [workspaceId, grantId],
      );
      if (row) {
        found.set(grantId, {
          policy: row.policy as BreakagePolicyName,
          expectedBreakageRate: Amount.parse(String(row.expected_breakage_rate)),
        });
      }
    }
    return found;
  }

  async importRecords(
    workspaceId: string,
    kind: string,
    externalIds: readonly string[],
  ): Promise<ImportRecord[]> {
    const found: ImportRecord[] = [];
    for (const externalId of externalIds) {
      const row = await this.db.get<{ object_id: string; created_at: number | string }>(FQ.importRecord, [
        workspaceId,
        kind,
        externalId,
      ]);
      if (row) {
        found.push({
          workspaceId,
          kind,
          externalId,
          objectId: row.object_id,
          createdAt: Number(row.created_at),
        });
      }
    }
    return found;
  }

  async exportEntries(query: ExportQuery, req: PageRequest): Promise<Page<ExportedEntry>> {
    const { where, params } = exportConditions(query, 'at', true);
    if (req.after !== null) {
      const [seq = ''] = parts(req.after, 1);
      if (!/^\d{1,19}$/.test(seq))
        throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
      where.push('seq > ?');
      params.push(seq);
    }
    const sql = `SELECT ${EXPORTED_ENTRY_COLUMNS.join(', ')} FROM entries WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
    const args = [...params, req.limit + 1];
    const rows = this.db.allRaw
      ? await this.db.allRaw(sql, args)
      : (await this.db.all<Record<string, unknown>>(sql, args)).map((r) =>
          EXPORTED_ENTRY_COLUMNS.map((c) => r[c]),
        );
    const items: ExportedEntry[] = new Array(Math.min(rows.length, req.limit));
    for (let i = 0; i < items.length; i += 1) {
      const [seq, id, customerId, creditType, type, amount, from, to, grantId, ref, at, balance, recorded] =
        rows[i] as [
          string | number,
          string,
          string,
          string,
          EntryType,
          string,
          AccountName,
          AccountName,
          string | null,
          string | null,
          number | string,
          string,
          number | string,
        ];
      items[i] = {
        seq: String(seq),
        id,
        customerId,
        creditType,
        type,
        amount: amountText(amount),
        fromAccount: from,
        toAccount: to,
        grantId,
        ref,
        at: Number(at),
        balanceAfter: amountText(balance),
        recordedAt: Number(recorded),
      };
    }
    return {
      items,
      nextAfter: rows.length > req.limit ? [items[items.length - 1]!.seq] : null,
    };
  }

  async exportGrants(
    query: ExportQuery,
    req: PageRequest,
  ): Promise<Page<GrantState & { readonly workspaceId: string }>> {
    const { where, params } = exportConditions(query, 'created_at', true);
    if (req.after !== null) {
      where.push('id > ?');
      params.push(parts(req.after, 1)[0]);
    }
    const rows = await this.db.all<GrantRow>(
      `SELECT * FROM grants WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`,
      [...params, req.limit + 1],
    );
    return pageOf(
      rows.map((r) => extend(grantFromRow(r), { workspaceId: r.workspace_id })),
      req.limit,
      (g) => [g.id],
    );
  }

  async exportEvents(query: ExportQuery, req: PageRequest): Promise<Page<ListedEvent>> {
    const { where, params } = exportConditions(query, 'time');
    if (req.after !== null) {
      where.push('event_key > ?');
      params.push(parts(req.after, 1)[0]);
    }
    const rows = await this.db.all<EventRow>(
      `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY event_key LIMIT ?`,
      [...params, req.limit + 1],
    );
    return pageOf(rows.map(listedEventFromRow), req.limit, (e) => [e.eventKey]);
  }

  async exportUsage(query: ExportQuery, req: PageRequest): Promise<Page<EventBurn>> {
    const { where, params } = exportConditions(query, 'created_at');
    if (req.after !== null) {
      const [eventKey = '', rateId = ''] = parts(req.after, 2);
      where.push('(event_key, rate_id) > (?, ?)');
      params.push(eventKey, rateId);
    }
    const rows = await this.db.all<BurnRow>(
      `SELECT * FROM event_burns WHERE ${where.join(' AND ')} ORDER BY event_key, rate_id LIMIT ?`,
      [...params, req.limit + 1],
    );
    return pageOf(rows.map(burnFromRow), req.limit, (b) => [b.eventKey, b.rateId]);
  }
}

/** Writes of the finance aggregate inside the caller's transaction. */
export class FinanceWrites extends FinanceReads implements FinanceWriteOperations {
  async putRevenuePolicy(
    workspaceId: string,
    packId: string | null,
    policy: BreakagePolicy | null,
    now: number,
  ): Promise<void> {
    const key = packId ?? WORKSPACE_DEFAULT;
    if (policy === null) {
      await this.db.run(FQ.deleteRevenuePolicy, [workspaceId, key]);
      return;
    }
    await this.db.run(FQ.putRevenuePolicy, [
      workspaceId,
      key,
      policy.policy,
      policy.expectedBreakageRate.toString(),
      now,
    ]);
  }

  async insertGrantRevenuePolicy(
    workspaceId: string,
    grantId: string,
    policy: BreakagePolicy,
    now: number,
  ): Promise<void> {
    await this.db.run(FQ.insertGrantRevenuePolicy, [
      workspaceId,
      grantId,
      policy.policy,
      policy.expectedBreakageRate.toString(),
      now,
    ]);
  }

  async insertImportRecord(record: ImportRecord): Promise<void> {
    await this.db.run(FQ.insertImportRecord, [
      record.workspaceId,
      record.kind,
      record.externalId,
      record.objectId,
      record.createdAt,
    ]);
  }
}
