import { Amount } from '../../domain/amount/amount.js';
import { invalidRequest } from '../../domain/errors.js';
import type { GrantChange, LedgerChanges } from '../../domain/ledger/changes.js';
import type {
  CreditLedgerSnapshot,
  ReversibleDebit,
  SettlementHistory,
} from '../../domain/ledger/credit-ledger.js';
import type { Movement } from '../../domain/ledger/point-in-time.js';
import type { GrantState, GrantStatus, HoldState, LedgerEntry } from '../../domain/ledger/types.js';
import { extend } from '../../domain/objects.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  AlertReadOperations,
  AlertWriteOperations,
  ApiKeyRecord,
  AuditReadOperations,
  AuditWriteOperations,
  CheckpointedMovements,
  CreditType,
  Customer,
  CustomerUpkeep,
  EventBurn,
  EventListQuery,
  EventQuery,
  FinanceReadOperations,
  FinanceWriteOperations,
  IdempotencyRecord,
  LedgerKey,
  LicensingReadOperations,
  LicensingWriteOperations,
  ListedEvent,
  MeterRecord,
  NewApiKey,
  OutboxReadOperations,
  OutboxWriteOperations,
  Page,
  PageRequest,
  PaymentReadOperations,
  PaymentWriteOperations,
  PlanReadOperations,
  PlanWriteOperations,
  PortalReadOperations,
  PortalWriteOperations,
  RateRecord,
  ReadOperations,
  ReconciliationSource,
  StoredEntry,
  StoredEvent,
  WebhookReadOperations,
  WebhookWriteOperations,
  WorkspaceRecord,
  WriteOperations,
} from '../../ports/storage.js';
import {
  type AccountsRow,
  type ApiKeyRow,
  accountsFromRow,
  apiKeyFromRow,
  type BurnRow,
  burnFromRow,
  creditTypeFromRow,
  customerFromRow,
  type DebitRow,
  debitFromRow,
  debitToParams,
  type EntryRow,
  type EventRow,
  entryFromRow,
  eventFromRow,
  type GrantRow,
  grantFromRow,
  grantStatusCondition,
  grantToParams,
  type HoldRow,
  holdFromRow,
  holdToParams,
  isGrantOpen,
  listedEventFromRow,
  type MeterRow,
  meterFromRow,
  type RateRow,
  rateFromRow,
  reversedFromJson,
  reversedToJson,
  type WorkspaceRow,
  workspaceFromRow,
} from '../rows.js';
import { AlertReads, AlertWrites } from './alert-queries.js';
import { AuditReads, AuditWrites } from './audit-queries.js';
import {
  checkpointBalancesOf,
  checkpointIntervalOf,
  DEFAULT_CHECKPOINT_INTERVAL,
  parseCheckpointBalances,
  repairedBalances,
} from './checkpoints.js';
import type { SqlExecutor } from './executor.js';
import { FinanceReads, FinanceWrites } from './finance-queries.js';
import { LicensingReads, LicensingWrites } from './license-queries.js';
import { OutboxReads, OutboxWrites } from './outbox-queries.js';
import { instantPart, naturalPart, pageOf, resumeKeyParts } from './paging.js';
import { PaymentReads, PaymentWrites } from './payment-queries.js';
import { PlanReads, PlanWrites } from './plan-queries.js';
import { PortalReads, PortalWrites } from './portal-queries.js';
import { Q } from './queries.js';
import { WebhookReads, WebhookWrites } from './webhook-queries.js';

/** What the balances upsert answers: entries since the last checkpoint, and that checkpoint's instant. */
export interface CheckpointHead {
  readonly since_checkpoint: number | string;
  readonly checkpoint_at: number | string | null;
}

/**
 * A ledger's balances row as its checkpoint upkeep sees it: whether the row exists, the entries
 * recorded since the last checkpoint, and that checkpoint's instant (null: none yet).
 */
export interface LedgerHead {
  readonly exists: boolean;
  readonly sinceCheckpoint: number;
  readonly checkpointAt: Instant | null;
}

/** The head of a ledger with no balances row yet. */
export const NO_LEDGER_HEAD: LedgerHead = { exists: false, sinceCheckpoint: 0, checkpointAt: null };

function ledgerHeadOf(row: CheckpointHead): LedgerHead {
  return {
    exists: true,
    sinceCheckpoint: Number(row.since_checkpoint),
    checkpointAt: row.checkpoint_at === null ? null : Number(row.checkpoint_at),
  };
}

/** The parameters of the three statements that load a ledger. */
export const ledgerParams = (key: LedgerKey) => [key.workspaceId, key.customerId, key.creditType];

/** A ledger snapshot from its balances row, open grant rows and active hold rows. */
export function snapshotFromRows(
  key: LedgerKey,
  accounts: AccountsRow | undefined,
  grants: readonly GrantRow[],
  holds: readonly HoldRow[],
): CreditLedgerSnapshot {
  return {
    customerId: key.customerId,
    creditType: key.creditType,
    accounts: accountsFromRow(accounts),
    grants: grants.map(grantFromRow),
    holds: holds.map(holdFromRow),
  };
}

/** Reads shared by every SQL dialect. */
export class SqlReads implements ReadOperations {
  readonly plans: PlanReadOperations;
  readonly outbox: OutboxReadOperations;
  readonly webhooks: WebhookReadOperations;
  readonly finance: FinanceReadOperations;
  readonly alerts: AlertReadOperations;
  readonly payments: PaymentReadOperations;
  readonly audit: AuditReadOperations;
  readonly portal: PortalReadOperations;
  readonly licensing: LicensingReadOperations;

  /** `plans` lets an adapter hand out its own plan reads (a cache in front of them). */
  constructor(
    protected readonly db: SqlExecutor,
    plans?: PlanReadOperations,
  ) {
    this.plans = plans ?? this.makePlans();
    this.outbox = this.makeOutbox();
    this.webhooks = this.makeWebhooks();
    this.finance = this.makeFinance();
    this.alerts = this.makeAlerts();
    this.payments = this.makePayments();
    this.audit = this.makeAudit();
    this.portal = this.makePortal();
    this.licensing = this.makeLicensing();
  }

  protected makeFinance(): FinanceReadOperations {
    return new FinanceReads(this.db);
  }

  protected makeAudit(): AuditReadOperations {
    return new AuditReads(this.db);
  }

  protected makeLicensing(): LicensingReadOperations {
    return new LicensingReads(this.db);
  }

  /** Overridden by the writes, which hand out the writable plan store. */
  protected makePlans(): PlanReadOperations {
    return new PlanReads(this.db);
  }

  protected makeOutbox(): OutboxReadOperations {
    return new OutboxReads(this.db);
  }

  /** Overridden by the writes (and by dialects with row locks). */
  protected makeWebhooks(): WebhookReadOperations {
    return new WebhookReads(this.db);
  }

  protected makeAlerts(): AlertReadOperations {
    return new AlertReads(this.db);
  }

  protected makePayments(): PaymentReadOperations {
    return new PaymentReads(this.db);
  }

  protected makePortal(): PortalReadOperations {
    return new PortalReads(this.db);
  }

  /** One row by key, mapped, or null. */
  private async one<R, T>(sql: string, params: readonly unknown[], map: (row: R) => T): Promise<T | null> {
    const row = await this.db.get<R>(sql, params);
    return row ? map(row) : null;
  }

  /** A page of a workspace's rows ordered by id (`sql` takes workspace, after-id, limit). */
  private async pageById<R, T extends { readonly id: string }>(
    sql: string,
    workspaceId: string,
    req: PageRequest,
    map: (row: R) => T,
  ): Promise<Page<T>> {
    const after = req.after === null ? '' : (resumeKeyParts(req.after, 1)[0] ?? '');
    const rows = await this.db.all<R>(sql, [workspaceId, after, req.limit + 1]);
    return pageOf(rows.map(map), req.limit, (item) => [item.id]);
  }

  getCustomer(workspaceId: string, customerId: string): Promise<Customer | null> {
    return this.one(Q.getCustomer, [workspaceId, customerId], customerFromRow);
  }

  listCustomers(workspaceId: string, req: PageRequest): Promise<Page<Customer>> {
    return this.pageById(Q.listCustomers, workspaceId, req, customerFromRow);
  }

  getCreditType(workspaceId: string, id: string): Promise<CreditType | null> {
    return this.one(Q.getCreditType, [workspaceId, id], creditTypeFromRow);
  }

  listCreditTypes(workspaceId: string, req: PageRequest): Promise<Page<CreditType>> {
    return this.pageById(Q.listCreditTypes, workspaceId, req, creditTypeFromRow);
  }

  async getGrant(workspaceId: string, grantId: string): Promise<GrantState | null> {
    const row = await this.db.get<GrantRow>(Q.getGrant, [workspaceId, grantId]);
    return row ? grantFromRow(row) : null;
  }

  async getGrantsByIds(workspaceId: string, ids: readonly string[]): Promise<GrantState[]> {
    const grants: GrantState[] = [];
    for (const id of ids) {
      const grant = await this.getGrant(workspaceId, id);
      if (grant) grants.push(grant);
    }
    return grants;
  }

  async listGrants(
    workspaceId: string,
    customerId: string,
    filter: { status: GrantStatus | null; creditType: string | null; now: Instant },
    req: PageRequest,
  ): Promise<Page<GrantState>> {
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
      const [createdAt = '', id = ''] = resumeKeyParts(req.after, 2);
      const at = naturalPart(createdAt);
      conditions.push('(created_at > ? OR (created_at = ? AND id > ?))');
      params.push(at, at, id);
    }
    const sql = `SELECT * FROM grants WHERE ${conditions.join(' AND ')} ORDER BY created_at, id LIMIT ?`;
    const rows = await this.db.all<GrantRow>(sql, [...params, req.limit + 1]);
    return pageOf(rows.map(grantFromRow), req.limit, (g) => [String(g.createdAt), g.id]);
  }

  async getHold(workspaceId: string, holdId: string): Promise<HoldState | null> {
    const row = await this.db.get<HoldRow>(Q.getHold, [workspaceId, holdId]);
    return row ? holdFromRow(row) : null;
  }

  async loadLedger(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    const params = ledgerParams(key);
    const accounts = await this.db.get<AccountsRow>(Q.getBalances, params);
    const grants = await this.db.all<GrantRow>(Q.openGrants, params);
    const holds = await this.db.all<HoldRow>(Q.activeHolds, params);
    return snapshotFromRows(key, accounts, grants, holds);
  }

  async listEntries(
    key: LedgerKey,
    range: { from: Instant | null; to: Instant | null; order?: 'asc' | 'desc' },
    req: PageRequest,
  ): Promise<Page<StoredEntry>> {
    const desc = range.order === 'desc';
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
      // A newest-first cursor carries its order, so it cannot silently resume the other way.
      const [atText = '', seqText = '', orderText] = resumeKeyParts(req.after, desc ? 3 : 2);
      if (desc && orderText !== 'desc')
        throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
      const at = naturalPart(atText);
      conditions.push(desc ? '(at < ? OR (at = ? AND seq < ?))' : '(at > ? OR (at = ? AND seq > ?))');
      params.push(at, at, naturalPart(seqText));
    }
    const order = desc ? 'ORDER BY at DESC, seq DESC' : 'ORDER BY at, seq';
    const sql = `SELECT * FROM entries WHERE ${conditions.join(' AND ')} ${order} LIMIT ?`;
    const rows = await this.db.all<EntryRow>(sql, [...params, req.limit + 1]);
    return pageOf(rows.map(entryFromRow), req.limit, (e) =>
      desc ? [String(e.at), e.seq, 'desc'] : [String(e.at), e.seq],
    );
  }

  async latestEntryAt(key: LedgerKey): Promise<Instant | null> {
    const row = await this.db.get<{ at: number | string | null }>(Q.latestEntryAt, [
      key.workspaceId,
      key.customerId,
      key.creditType,
    ]);
    return row?.at === null || row?.at === undefined ? null : Number(row.at);
  }

  async checkpointedEntriesUpTo(key: LedgerKey, at: Instant): Promise<CheckpointedMovements> {
    const params = ledgerParams(key);
    const rows = await this.db.all<{
      from_account: string | null;
      to_account: string | null;
      amount: string | null;
      grant_id: string | null;
      at: number | string;
      seq: number | string;
      balances: string | null;
    }>(Q.checkpointedEntriesUpTo, [...params, at, ...params, at]);
    let start: ReadonlyMap<string, bigint> = new Map();
    let checkpointAt: Instant | null = null;
    const movements: CheckpointedMovements['movements'][number][] = [];
    for (const row of rows) {
      if (row.balances !== null) {
        start = parseCheckpointBalances(row.balances);
        checkpointAt = Number(row.at);
      } else {
        movements.push({
          at: Number(row.at),
          fromAccount: row.from_account!,
          toAccount: row.to_account!,
          units: Amount.parse(String(row.amount)).units,
          grantId: row.grant_id,
        });
      }
    }
    return { start, checkpointAt, movements };
  }

  async entriesUpTo(key: LedgerKey, at: Instant): Promise<StoredEntry[]> {
    const rows = await this.db.all<EntryRow>(Q.entriesUpTo, [
      key.workspaceId,
      key.customerId,
      key.creditType,
      at,
    ]);
    return rows.map(entryFromRow);
  }

  getMeter(workspaceId: string, id: string): Promise<MeterRecord | null> {
    return this.one(Q.getMeter, [workspaceId, id], meterFromRow);
  }

  listMeters(workspaceId: string, req: PageRequest): Promise<Page<MeterRecord>> {
    return this.pageById(Q.listMeters, workspaceId, req, meterFromRow);
  }

  getRate(workspaceId: string, id: string): Promise<RateRecord | null> {
    return this.one(Q.getRate, [workspaceId, id], rateFromRow);
  }

  listRates(workspaceId: string, req: PageRequest): Promise<Page<RateRecord>> {
    return this.pageById(Q.listRates, workspaceId, req, rateFromRow);
  }

  async listRatingRules(
    workspaceId: string,
  ): Promise<{ readonly meters: readonly MeterRecord[]; readonly rates: readonly RateRecord[] }> {
    const meters = (await this.db.all<MeterRow>(Q.allMeters, [workspaceId])).map(meterFromRow);
    const rates = (await this.db.all<RateRow>(Q.allRates, [workspaceId])).map(rateFromRow);
    return { meters, rates };
  }

  async *scanEvents(query: EventQuery): AsyncIterable<StoredEvent> {
    const from = query.from ?? Number.MIN_SAFE_INTEGER;
    const to = query.to ?? Number.MAX_SAFE_INTEGER;
    let afterTime = Number.MIN_SAFE_INTEGER;
    let afterKey = '';
    const batch = query.batchSize ?? SCAN_BATCH;
    for (;;) {
      const rows =
        query.customerId === null
          ? await this.db.all<EventRow>(Q.eventsOfTypeAfter, [
              query.workspaceId,
              query.type,
              from,
              to,
              afterTime,
              afterTime,
              afterKey,
              batch,
            ])
          : await this.db.all<EventRow>(Q.eventsOfCustomerAfter, [
              query.workspaceId,
              query.type,
              query.customerId,
              from,
              to,
              afterTime,
              afterTime,
              afterKey,
              batch,
            ]);
      for (const row of rows) yield eventFromRow(row);
      if (rows.length < batch) return;
      const last = rows[rows.length - 1]!;
      afterTime = Number(last.time);
      afterKey = last.event_key;
    }
  }

  async getBurn(workspaceId: string, eventKey: string, rateId: string): Promise<EventBurn | null> {
    const row = await this.db.get<BurnRow>(Q.getBurn, [workspaceId, eventKey, rateId]);
    return row ? burnFromRow(row) : null;
  }

  async listEvents(query: EventListQuery, req: PageRequest): Promise<Page<ListedEvent>> {
    const conditions = ['workspace_id = ?'];
    const params: unknown[] = [query.workspaceId];
    const add = (sql: string, ...values: unknown[]) => {
      conditions.push(sql);
      params.push(...values);
    };
    if (query.customerId !== null) add('customer_id = ?', query.customerId);
    if (query.type !== null) add('type = ?', query.type);
    if (query.from !== null) add('time >= ?', query.from);
    if (query.to !== null) add('time < ?', query.to);
    if (query.status === 'burned') add('unmetered = 0');
    else if (query.status === 'unmetered') add('unmetered = 1');
    else if (query.status === 'duplicate') add('duplicates > 0');
    if (req.after !== null) {
      const [timeText = '', key = ''] = resumeKeyParts(req.after, 2);
      const time = instantPart(timeText);
      add('(time > ? OR (time = ? AND event_key > ?))', time, time, key);
    }
    const sql = `SELECT * FROM events WHERE ${conditions.join(' AND ')} ORDER BY time, event_key LIMIT ?`;
    const rows = await this.db.all<EventRow>(sql, [...params, req.limit + 1]);
    return pageOf(rows.map(listedEventFromRow), req.limit, (e) => [String(e.time), e.eventKey]);
  }

  getEvent(workspaceId: string, eventKey: string): Promise<ListedEvent | null> {
    return this.one(Q.getEvent, [workspaceId, eventKey], listedEventFromRow);
  }

  async burnsOfEvents(workspaceId: string, eventKeys: readonly string[]): Promise<EventBurn[]> {
    const burns: EventBurn[] = [];
    for (let i = 0; i < eventKeys.length; i += 500) {
      const part = eventKeys.slice(i, i + 500);
      const sql = `SELECT * FROM event_burns WHERE workspace_id = ? AND event_key IN (${part.map(() => '?').join(', ')})`;
      for (const row of await this.db.all<BurnRow>(sql, [workspaceId, ...part])) burns.push(burnFromRow(row));
    }
    return burns;
  }

  getDebit(workspaceId: string, debitId: string): Promise<ReversibleDebit | null> {
    return this.one(Q.getDebit, [workspaceId, debitId], debitFromRow);
  }

  async settlementHistoryOf(key: LedgerKey): Promise<SettlementHistory> {
    const params = [key.workspaceId, key.customerId, key.creditType];
    const settled = await this.db.all<{ grant_id: string; amount: string | number }>(
      Q.settlementsOfLedger,
      params,
    );
    const refunded = new Map<string, Amount>();
    for (const row of await this.db.all<{ reversed: string }>(Q.reversedDebitsOfLedger, params)) {
      for (const [grantId, amount] of reversedFromJson(row.reversed).paidBack)
        refunded.set(grantId, (refunded.get(grantId) ?? Amount.ZERO).plus(amount));
    }
    return {
      settlements: settled.map((r) => ({ grantId: r.grant_id, amount: Amount.parse(String(r.amount)) })),
      refunded,
    };
  }

  async getDebits(workspaceId: string, debitIds: readonly string[]): Promise<ReversibleDebit[]> {
    const debits: ReversibleDebit[] = [];
    for (let i = 0; i < debitIds.length; i += 500) {
      const part = debitIds.slice(i, i + 500);
      const sql = `SELECT * FROM debits WHERE workspace_id = ? AND id IN (${part.map(() => '?').join(', ')})`;
      for (const row of await this.db.all<DebitRow>(sql, [workspaceId, ...part]))
        debits.push(debitFromRow(row));
    }
    return debits;
  }

  async getRateUsage(
    workspaceId: string,
    customerId: string,
    rateId: string,
    periodStart: Instant,
  ): Promise<Amount> {
    const row = await this.db.get<{ quantity: string }>(Q.getRateUsage, [
      workspaceId,
      customerId,
      rateId,
      periodStart,
    ]);
    return row ? Amount.parse(String(row.quantity)) : Amount.ZERO;
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await this.db.get<ApiKeyRow>(Q.findApiKey, [keyHash]);
    return row ? apiKeyFromRow(row) : null;
  }

  async listApiKeysOf(workspaceId: string): Promise<ApiKeyRecord[]> {
    return (await this.db.all<ApiKeyRow>(Q.listApiKeys, [workspaceId])).map(apiKeyFromRow);
  }

  async getWorkspace(workspaceId: string): Promise<WorkspaceRecord | null> {
    return this.one(Q.getWorkspace, [workspaceId], workspaceFromRow);
  }

  async listWorkspaces(): Promise<WorkspaceRecord[]> {
    return (await this.db.all<WorkspaceRow>(Q.listWorkspaces, [])).map(workspaceFromRow);
  }
}

/** One statement with its parameters. */
export interface SqlStatement {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** What persisting one ledger writes, by part (see {@link SqlWrites.ledgerWrites}). */
export interface LedgerWrites {
  /** The balances upsert ({@link Q.upsertBalances}; answers the checkpoint head). */
  readonly balances: SqlStatement;
  /** Changed grants and holds, and debits whose reversed parts changed: distinct rows, any order. */
  readonly updates: readonly SqlStatement[];
  /** New debits, as rows of {@link DEBIT_COLUMNS}. */
  readonly debitRows: readonly (readonly unknown[])[];
  /** New entries in recording order, as rows of {@link ENTRY_COLUMNS}. */
  readonly entryRows: readonly (readonly unknown[])[];
}

/** Writes shared by every SQL dialect; the adapter decides how transactions and locks work. */
export class SqlWrites extends SqlReads implements WriteOperations {
  declare readonly plans: PlanWriteOperations;
  declare readonly outbox: OutboxWriteOperations;
  declare readonly webhooks: WebhookWriteOperations;
  declare readonly finance: FinanceWriteOperations;
  declare readonly alerts: AlertWriteOperations;
  declare readonly payments: PaymentWriteOperations;
  declare readonly audit: AuditWriteOperations;
  declare readonly portal: PortalWriteOperations;
  declare readonly licensing: LicensingWriteOperations;

  protected override makeLicensing(): LicensingWriteOperations {
    return new LicensingWrites(this.db);
  }

  protected override makeOutbox(): OutboxWriteOperations {
    return new OutboxWrites(this.db);
  }

  /** SQLite: one writer per database, so claims need no row locks (PostgreSQL overrides this). */
  protected override makeWebhooks(): WebhookWriteOperations {
    return new WebhookWrites(this.db);
  }

  protected override makeFinance(): FinanceWriteOperations {
    return new FinanceWrites(this.db);
  }

  protected override makeAlerts(): AlertWriteOperations {
    return new AlertWrites(this.db);
  }

  protected override makePayments(): PaymentWriteOperations {
    return new PaymentWrites(this.db);
  }

  protected override makeAudit(): AuditWriteOperations {
    return new AuditWrites(this.db);
  }

  protected override makePortal(): PortalWriteOperations {
    return new PortalWrites(this.db);
  }

  protected override makePlans(): PlanWriteOperations {
    return new PlanWrites(this.db);
  }
  /** Adapters serialise per customer before handing out this object, so loading needs no lock here. */
  loadLedgerForUpdate(key: LedgerKey): Promise<CreditLedgerSnapshot> {
    return this.loadLedger(key);
  }

  /** SQLite answers each statement at once (PostgreSQL overrides it). */
  readonly pipelined: boolean = false;

  /** Nothing to do here: SQLite's caches serve the loads (PostgreSQL overrides it). */
  prefetchCustomerWrites(_keys: readonly LedgerKey[]): void {}

  /** Two reads here (served by caches on SQLite); PostgreSQL makes them one statement. */
  async loadCustomerWrite(
    key: LedgerKey,
    now: Instant,
  ): Promise<{ upkeep: CustomerUpkeep; ledger: CreditLedgerSnapshot }> {
    const upkeep = await this.plans.customerUpkeep(key.workspaceId, key.customerId, now);
    return { upkeep, ledger: await this.loadLedgerForUpdate(key) };
  }

  /** Writes only what changed: most debits move a grant's two balances and touch no index. */
  private grantStatement(workspaceId: string, { grant, change }: GrantChange): SqlStatement {
    if (change === 'created') return { sql: Q.upsertGrant, params: grantToParams(workspaceId, grant) };
    const available = grant.available.toString();
    const held = grant.held.toString();
    if (change === 'amounts') return { sql: Q.updateGrantAmounts, params: [available, held, grant.id] };
    return {
      sql: Q.updateGrantState,
      params: [
        available,
        held,
        grant.closedReason,
        grant.closedAt,
        grant.activated ? 1 : 0,
        isGrantOpen(grant) ? 1 : 0,
        grant.id,
      ],
    };
  }

  /**
   * What persisting a ledger's change set writes, grouped by how a dialect may send it: the
   * balances row first (its upsert answers the checkpoint head), then independent row updates (no
   * two touch the same row), then the new debits and entries as parameter rows of
   * {@link Q.insertDebit} and {@link Q.insertEntry} (columns {@link DEBIT_COLUMNS},
   * {@link ENTRY_COLUMNS}), in recording order. A dialect that can insert many rows in one statement batches them; the others insert
   * each row. Named parts, so no adapter has to recognise a statement by its SQL text.
   */
  protected ledgerWrites(workspaceId: string, changes: LedgerChanges, now: Instant): LedgerWrites {
    const a = changes.accounts;
    const updates: SqlStatement[] = [];
    for (const change of changes.grants) updates.push(this.grantStatement(workspaceId, change));
    for (const hold of changes.holds)
      updates.push({ sql: Q.upsertHold, params: holdToParams(workspaceId, hold) });
    for (const { debitId, reversed } of changes.debitsReversed) {
      updates.push({ sql: Q.updateDebitReversed, params: [reversedToJson(reversed), debitId] });
    }
    return {
      balances: {
        sql: Q.upsertBalances,
        params: [
          workspaceId,
          changes.customerId,
          changes.creditType,
          a.issued.toString(),
          a.consumed.toString(),
          a.expired.toString(),
          a.voided.toString(),
          a.overage.toString(),
          a.clawed_back.toString(),
          now,
          changes.entries.length,
        ],
      },
      updates,
      debitRows: changes.debitsCreated.map((debit) => debitToParams(workspaceId, debit)),
      entryRows: changes.entries.map((e) => [
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
      ]),
    };
  }

  async saveLedger(workspaceId: string, changes: LedgerChanges, now: Instant): Promise<void> {
    await this.saveLedgerWithHead(workspaceId, changes, now, null);
  }

  /**
   * Saves a ledger's change set and answers its balances row's checkpoint bookkeeping afterwards.
   * With `known` (the head as of this transaction, which a writer that caches ledgers under their
   * lock can keep), the balances row is written by a plain UPDATE or INSERT; without it, by the
   * upsert that answers the head.
   */
  protected async saveLedgerWithHead(
    workspaceId: string,
    changes: LedgerChanges,
    now: Instant,
    known: LedgerHead | null,
  ): Promise<LedgerHead> {
    const writes = this.ledgerWrites(workspaceId, changes, now);
    const balances = writes.balances;
    let head: CheckpointHead | undefined;
    const statements: { readonly sql: string; readonly params: readonly unknown[] }[] = [];
    if (known === null) {
      head = await this.db.get<CheckpointHead>(balances.sql, balances.params);
    } else {
      const since = known.sinceCheckpoint + changes.entries.length;
      const p = balances.params;
      statements.push(
        known.exists
          ? {
              sql: Q.updateBalances,
              params: [p[3], p[4], p[5], p[6], p[7], p[8], p[9], since, p[0], p[1], p[2]],
            }
          : { sql: Q.insertBalances, params: p },
      );
      head = { since_checkpoint: since, checkpoint_at: known.checkpointAt };
    }
    for (const update of writes.updates) statements.push(update);
    for (const params of writes.debitRows) statements.push({ sql: Q.insertDebit, params });
    for (const params of writes.entryRows) statements.push({ sql: Q.insertEntry, params });
    const pending = runInOrder(this.db, statements);
    if (pending) await pending;
    return this.maintainCheckpoints(workspaceId, changes, head);
  }

  /** A ledger's checkpoint bookkeeping as its balances row holds it (absent row: `exists` false). */
  protected async readLedgerHead(key: LedgerKey): Promise<LedgerHead> {
    const row = await this.db.get<CheckpointHead>(Q.balancesHead, ledgerParams(key));
    return row === undefined ? NO_LEDGER_HEAD : ledgerHeadOf(row);
  }

  /**
   * Fills the checkpoint gap a read at `at` fell into (a ledger older than checkpoints): from the
   * latest checkpoint at or before `at` (or the first entry), walks at most `budget` entries in
   * ledger order, up to the next checkpoint, writing one every interval. Each is the previous
   * checkpoint plus the entries after it, so the invariant holds (the caller holds the ledger's
   * lock, so no entry arrives meanwhile); `checkpoint_at` is raised so later late entries repair
   * them. Returns how many checkpoints were written.
   */
  async fillCheckpointGap(key: LedgerKey, at: Instant, budget: number): Promise<number> {
    const params = ledgerParams(key);
    const from = await this.db.get<{ at: number | string; seq: number | string; balances: string }>(
      Q.latestCheckpointUpTo,
      [...params, at],
    );
    const balances = from ? parseCheckpointBalances(from.balances) : new Map<string, bigint>();
    const cutAt = from ? Number(from.at) : Number.MIN_SAFE_INTEGER;
    const cutSeq = from ? Number(from.seq) : -1;
    const next = await this.db.get<{ at: number | string; seq: number | string }>(Q.nextCheckpointAfter, [
      ...params,
      cutAt,
      cutAt,
      cutSeq,
    ]);
    const rows = await this.db.all<{
      from_account: string;
      to_account: string;
      amount: string;
      at: number | string;
      seq: number | string;
    }>(Q.entriesAfterCut, [...params, cutAt, cutAt, cutSeq, budget]);
    const nextAt = next ? Number(next.at) : null;
    const nextSeq = next ? Number(next.seq) : null;
    let walked = 0;
    let written = 0;
    let highest: number | null = null;
    for (const row of rows) {
      const rowAt = Number(row.at);
      const rowSeq = Number(row.seq);
      if (nextAt !== null && (rowAt > nextAt || (rowAt === nextAt && rowSeq >= nextSeq!))) break;
      const units = Amount.parse(String(row.amount)).units;
      balances.set(row.from_account, (balances.get(row.from_account) ?? 0n) - units);
      balances.set(row.to_account, (balances.get(row.to_account) ?? 0n) + units);
      if (++walked % this.checkpointInterval !== 0) continue;
      const stored: Record<string, string> = {};
      for (const [name, value] of balances) if (value !== 0n) stored[name] = value.toString();
      await this.db.run(Q.putCheckpoint, [...params, row.at, row.seq, JSON.stringify(stored)]);
      written++;
      highest = rowAt;
    }
    if (highest !== null) await this.db.run(Q.raiseCheckpointAt, [highest, ...params, highest]);
    return written;
  }

  /** Entries between checkpoints (see checkpoints.ts); tests set it small to exercise them. */
  checkpointInterval = DEFAULT_CHECKPOINT_INTERVAL;

  /**
   * Keeps the checkpoint invariant after a ledger's entries were inserted, in the same
   * transaction (see checkpoints.ts): repairs the checkpoints a late entry falls below, and writes
   * a new checkpoint once enough entries were recorded since the last one.
   */
  protected async maintainCheckpoints(
    workspaceId: string,
    changes: LedgerChanges,
    head: CheckpointHead | undefined,
  ): Promise<LedgerHead> {
    if (!head) return NO_LEDGER_HEAD;
    const unchanged = ledgerHeadOf(head);
    if (changes.entries.length === 0) return unchanged;
    const params = [workspaceId, changes.customerId, changes.creditType];
    const checkpointAt = head.checkpoint_at === null ? null : Number(head.checkpoint_at);
    if (checkpointAt !== null) {
      const late: Movement[] = [];
      for (const e of changes.entries) {
        if (e.at < checkpointAt)
          late.push({ at: e.at, fromAccount: e.fromAccount, toAccount: e.toAccount, units: e.amount.units });
      }
      if (late.length > 0) {
        const earliest = Math.min(...late.map((m) => m.at));
        const rows = await this.db.all<{ at: number | string; seq: number | string; balances: string }>(
          Q.checkpointsAfter,
          [...params, earliest],
        );
        for (const row of rows) {
          await this.db.run(Q.updateCheckpoint, [
            repairedBalances(row.balances, late, Number(row.at)),
            ...params,
            row.at,
            row.seq,
          ]);
        }
      }
    }
    if (Number(head.since_checkpoint) < checkpointIntervalOf(changes, this.checkpointInterval))
      return unchanged;
    const last = await this.db.get<{ at: number | string; seq: number | string }>(
      Q.lastEntryOfLedger,
      params,
    );
    if (!last) return unchanged;
    await this.db.run(Q.putCheckpoint, [
      ...params,
      last.at,
      last.seq,
      JSON.stringify(checkpointBalancesOf(changes)),
    ]);
    await this.db.run(Q.checkpointWritten, [last.at, ...params]);
    return { exists: true, sinceCheckpoint: 0, checkpointAt: Number(last.at) };
  }

  async insertCustomer(c: Customer): Promise<boolean> {
    return (
      (await this.db.run(Q.insertCustomer, [
        c.workspaceId,
        c.id,
        c.name,
        JSON.stringify(c.metadata),
        c.createdAt,
      ])) === 1
    );
  }

  async loadCustomerForUpdate(workspaceId: string, customerId: string): Promise<Customer | null> {
    const row = await this.db.get<Parameters<typeof customerFromRow>[0]>(Q.getCustomer, [
      workspaceId,
      customerId,
    ]);
    return row ? customerFromRow(row) : null;
  }

  async updateCustomer(c: Customer): Promise<void> {
    await this.db.run(Q.updateCustomer, [c.name, JSON.stringify(c.metadata), c.workspaceId, c.id]);
  }

  async insertCreditType(c: CreditType): Promise<boolean> {
    return (await this.db.run(Q.insertCreditType, [c.workspaceId, c.id, c.name, c.createdAt])) === 1;
  }

  async getIdempotency(workspaceId: string, key: string): Promise<IdempotencyRecord | null> {
    const row = await this.db.get<{
      fingerprint: string;
      status_code: number | string;
      response_body: string;
      created_at: number | string;
    }>(Q.getIdempotency, [workspaceId, key]);
    return row
      ? {
          fingerprint: row.fingerprint,
          statusCode: Number(row.status_code),
          responseBody: row.response_body,
          createdAt: Number(row.created_at),
        }
      : null;
  }

  async putIdempotency(workspaceId: string, key: string, r: IdempotencyRecord): Promise<void> {
    await this.db.run(Q.putIdempotency, [
      workspaceId,
      key,
      r.fingerprint,
      r.statusCode,
      r.responseBody,
      r.createdAt,
    ]);
  }

  async deleteIdempotencyBefore(cutoff: Instant): Promise<number> {
    return this.db.run(Q.deleteIdempotency, [cutoff]);
  }

  async insertApiKey(k: NewApiKey): Promise<void> {
    await this.db.run(Q.insertApiKey, [
      k.id,
      k.workspaceId,
      k.keyHash,
      k.scope,
      k.name,
      k.createdAt,
      k.revokedAt,
      k.permissions == null ? null : JSON.stringify(k.permissions),
      k.expiresAt ?? null,
      k.lastUsedAt ?? null,
      k.rateLimit ?? null,
    ]);
  }

  async insertWorkspace(w: WorkspaceRecord): Promise<boolean> {
    return (await this.db.run(Q.insertWorkspace, [w.id, w.name, w.createdAt])) === 1;
  }

  async markApiKeyUsed(keyId: string, at: Instant): Promise<void> {
    await this.db.run(Q.markApiKeyUsed, [at, keyId, at]);
  }

  async setApiKeyPermissions(keyId: string, permissions: readonly string[] | null): Promise<void> {
    await this.db.run(Q.setApiKeyPermissions, [
      permissions === null ? null : JSON.stringify(permissions),
      keyId,
    ]);
  }

  async countApiKeys(workspaceId: string): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(Q.countApiKeys, [workspaceId]))?.n ?? 0);
  }

  async revokeApiKey(workspaceId: string, keyId: string, at: Instant): Promise<boolean> {
    return (await this.db.run(Q.revokeApiKey, [at, workspaceId, keyId])) === 1;
  }

  async ensureWorkspace(workspaceId: string, now: Instant): Promise<void> {
    await this.db.run(Q.ensureWorkspace, [workspaceId, now]);
  }

  async insertMeter(m: MeterRecord): Promise<boolean> {
    const params = [
      m.workspaceId,
      m.id,
      m.eventType,
      m.aggregation,
      m.valueProperty,
      JSON.stringify(m.groupBy),
      m.createdAt,
    ];
    return (await this.db.run(Q.insertMeter, params)) === 1;
  }

  async insertRate(r: RateRecord): Promise<boolean> {
    const params = [
      r.workspaceId,
      r.id,
      r.meterId,
      JSON.stringify(r.filter),
      r.creditType,
      JSON.stringify(r.pricing),
      r.createdAt,
      r.workspaceId,
    ];
    return (await this.db.run(Q.insertRate, params)) === 1;
  }

  async insertEvent(e: StoredEvent): Promise<boolean> {
    return (await this.db.run(Q.insertEvent, eventToParams(e))) === 1;
  }

  async countDuplicates(workspaceId: string, eventKeys: readonly string[]): Promise<void> {
    for (const key of eventKeys) await this.db.run(Q.countDuplicate, [workspaceId, key]);
  }

  async deleteUncommittedEvents(workspaceId: string, eventKeys: readonly string[]): Promise<void> {
    for (const key of eventKeys) await this.db.run(Q.deleteEvent, [workspaceId, key]);
  }

  async markEventReversed(workspaceId: string, eventKey: string, at: Instant): Promise<boolean> {
    return (await this.db.run(Q.markEventReversed, [at, workspaceId, eventKey])) === 1;
  }

  async insertEvents(events: readonly StoredEvent[]): Promise<Set<string>> {
    const inserted = new Set<string>();
    for (const event of events) {
      const changed = this.db.run(Q.insertEvent, eventToParams(event));
      // Awaited only when the driver answers with a promise (see runInOrder).
      if ((typeof changed === 'number' ? changed : await changed) === 1) inserted.add(event.eventKey);
    }
    return inserted;
  }

  async insertBurns(burns: readonly EventBurn[]): Promise<void> {
    const pending = runInOrder(
      this.db,
      burns.map((burn) => ({ sql: Q.insertBurn, params: burnToParams(burn) })),
    );
    if (pending) await pending;
  }

  async setRateUsage(
    workspaceId: string,
    customerId: string,
    rateId: string,
    periodStart: Instant,
    quantity: Amount,
  ): Promise<void> {
    await this.db.run(Q.setRateUsage, [workspaceId, customerId, rateId, periodStart, quantity.toString()]);
  }

  async insertBurn(b: EventBurn): Promise<boolean> {
    return (await this.db.run(Q.insertBurn, burnToParams(b))) === 1;
  }
}

/** A stored event as the parameters of {@link Q.insertEvent}, in its column order (every dialect's insert). */
export function eventToParams(e: StoredEvent): unknown[] {
  return [
    e.workspaceId,
    e.eventKey,
    e.id,
    e.source,
    e.type,
    e.customerId,
    e.time,
    JSON.stringify(e.data),
    e.rulesSeq,
    e.receivedAt,
    e.unmetered ? 1 : 0,
  ];
}

/** A burn as the parameters of {@link Q.insertBurn}, in its column order (every dialect's insert). */
export function burnToParams(b: EventBurn): unknown[] {
  return [
    b.workspaceId,
    b.eventKey,
    b.rateId,
    b.customerId,
    b.debitId,
    b.quantity.toString(),
    b.credits.toString(),
    b.createdAt,
  ];
}

/**
 * Runs one statement per parameter row, in order. Answers undefined when every statement ran at
 * once (SQLite), and a promise only when the driver answered with one: callers write
 * `const pending = runInOrder(…); if (pending) await pending;`, because an `await` always yields,
 * and a promise and a microtask per statement were a measurable share of the write path.
 */
function runInOrder(
  db: SqlExecutor,
  statements: readonly { readonly sql: string; readonly params: readonly unknown[] }[],
): Promise<void> | undefined {
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i]!;
    const changed = db.run(statement.sql, statement.params);
    if (typeof changed !== 'number') return finishInOrder(db, changed, statements.slice(i + 1));
  }
  return undefined;
}

async function finishInOrder(
  db: SqlExecutor,
  first: PromiseLike<number>,
  rest: readonly { readonly sql: string; readonly params: readonly unknown[] }[],
): Promise<void> {
  await first;
  for (const { sql, params } of rest) await db.run(sql, params);
}

const SCAN_BATCH = 2000;

/** Ledgers with something due, deduplicated; shared by the adapters' sweepers. */
export async function findDueLedgers(db: SqlExecutor, now: Instant, limit: number): Promise<LedgerKey[]> {
  type Row = { workspace_id: string; customer_id: string; credit_type: string };
  const rows = [
    ...(await db.all<Row>(Q.dueGrants, [now, limit, now, limit])),
    ...(await db.all<Row>(Q.dueHolds, [now, limit])),
  ];
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

/** Every entry, streamed in keyset batches so memory stays flat however long the ledger is. */
export async function* scanEntries(db: SqlExecutor): AsyncIterable<LedgerEntry & { workspaceId: string }> {
  let after = 0;
  for (;;) {
    const rows = await db.all<EntryRow>(Q.entriesAfterSeq, [after, SCAN_BATCH]);
    for (const row of rows) yield extend(entryFromRow(row), { workspaceId: row.workspace_id });
    if (rows.length < SCAN_BATCH) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

/** Every grant, streamed in keyset batches. */
export async function* scanGrants(db: SqlExecutor): AsyncIterable<GrantState & { workspaceId: string }> {
  let after = '';
  for (;;) {
    const rows = await db.all<GrantRow>(Q.grantsAfterId, [after, SCAN_BATCH]);
    for (const row of rows) yield extend(grantFromRow(row), { workspaceId: row.workspace_id });
    if (rows.length < SCAN_BATCH) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** Every customer-level balance row, streamed in keyset batches. */
export async function* scanCustomerAccounts(
  db: SqlExecutor,
): AsyncIterable<LedgerKey & { accounts: CreditLedgerSnapshot['accounts'] }> {
  let after: [string, string, string] = ['', '', ''];
  for (;;) {
    const rows = await db.all<
      AccountsRow & { workspace_id: string; customer_id: string; credit_type: string }
    >(Q.balancesAfter, [...after, SCAN_BATCH]);
    for (const row of rows) {
      yield {
        workspaceId: row.workspace_id,
        customerId: row.customer_id,
        creditType: row.credit_type,
        accounts: accountsFromRow(row),
      };
    }
    if (rows.length < SCAN_BATCH) return;
    const last = rows[rows.length - 1]!;
    after = [last.workspace_id, last.customer_id, last.credit_type];
  }
}

/** Every stored event, streamed in keyset batches. */
async function* scanAllEvents(db: SqlExecutor): AsyncIterable<StoredEvent> {
  let after: [string, string] = ['', ''];
  for (;;) {
    const rows = await db.all<EventRow>(Q.allEventsAfter, [...after, SCAN_BATCH]);
    for (const row of rows) yield eventFromRow(row);
    if (rows.length < SCAN_BATCH) return;
    const last = rows[rows.length - 1]!;
    after = [last.workspace_id, last.event_key];
  }
}

/** Every (partly) reversed debit, streamed in keyset batches of ids. */
async function* scanReversedDebits(
  db: SqlExecutor,
): AsyncIterable<ReversibleDebit & { workspaceId: string }> {
  let after = '';
  for (;;) {
    const rows = await db.all<DebitRow>(Q.reversedDebitsAfter, [after, SCAN_BATCH]);
    for (const row of rows) yield extend(debitFromRow(row), { workspaceId: row.workspace_id });
    if (rows.length < SCAN_BATCH) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** Every event burn, streamed in keyset batches. */
async function* scanAllBurns(db: SqlExecutor): AsyncIterable<EventBurn> {
  let after: [string, string, string] = ['', '', ''];
  for (;;) {
    const rows = await db.all<BurnRow>(Q.allBurnsAfter, [...after, SCAN_BATCH]);
    for (const row of rows) yield burnFromRow(row);
    if (rows.length < SCAN_BATCH) return;
    const last = rows[rows.length - 1]!;
    after = [last.workspace_id, last.event_key, last.rate_id];
  }
}

/** The meters and rates of every workspace that has rates. */
async function* scanRatingRules(
  db: SqlExecutor,
): AsyncIterable<{ readonly meters: readonly MeterRecord[]; readonly rates: readonly RateRecord[] }> {
  const reads = new SqlReads(db);
  for (const { workspace_id } of await db.all<{ workspace_id: string }>(Q.workspacesWithRates, [])) {
    yield reads.listRatingRules(workspace_id);
  }
}

/** The scans of reconciliation over one executor (which the adapter pins to one snapshot). */
export function snapshotSource(db: SqlExecutor): ReconciliationSource {
  return {
    allEntries: () => scanEntries(db),
    allGrants: () => scanGrants(db),
    allCustomerAccounts: () => scanCustomerAccounts(db),
    allEvents: () => scanAllEvents(db),
    allReversedDebits: () => scanReversedDebits(db),
    allBurns: () => scanAllBurns(db),
    allRatingRules: () => scanRatingRules(db),
  };
}
