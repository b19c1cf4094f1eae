import { Amount } from '../domain/amount/amount.js';
import { isGrantOpen, noAccounts } from '../domain/ledger/changes.js';
import type { DebitRecord, DebitReversed, ReversibleDebit } from '../domain/ledger/credit-ledger.js';
import type {
  AccountName,
  CustomerAccounts,
  Drawdown,
  EntryType,
  GrantCategory,
  GrantState,
  HoldState,
  HoldStatus,
} from '../domain/ledger/types.js';
import { extend } from '../domain/objects.js';
import type {
  ApiKeyRecord,
  CreditType,
  Customer,
  EventBurn,
  ListedEvent,
  MeterRecord,
  RateRecord,
  StoredEntry,
  StoredEvent,
  StoredPricing,
  WorkspaceRecord,
} from '../ports/storage.js';

/**
 * Row shapes shared by both SQL adapters, and the mapping between them and domain objects.
 * Amounts travel as canonical decimal strings (SQLite TEXT, PostgreSQL NUMERIC read as text),
 * instants as integer milliseconds, structured fields as JSON text.
 */

export interface GrantRow {
  id: string;
  workspace_id: string;
  customer_id: string;
  credit_type: string;
  category: string;
  amount: string;
  priority: number;
  effective_at: number | string;
  expires_at: number | string | null;
  created_at: number | string;
  cost_basis_amount: string | null;
  cost_basis_currency: string | null;
  applies_to: string | null;
  description: string | null;
  metadata: string;
  available: string;
  held: string;
  closed_reason: string | null;
  closed_at: number | string | null;
  activated: number | boolean;
  is_open: number | boolean;
}

export function grantFromRow(row: GrantRow): GrantState {
  return {
    id: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    category: row.category as GrantCategory,
    amount: Amount.parse(String(row.amount)),
    priority: Number(row.priority),
    effectiveAt: Number(row.effective_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    createdAt: Number(row.created_at),
    costBasis:
      row.cost_basis_amount === null || row.cost_basis_currency === null
        ? null
        : { amount: Amount.parse(String(row.cost_basis_amount)), currency: row.cost_basis_currency },
    appliesTo: row.applies_to === null ? null : (JSON.parse(row.applies_to) as string[]),
    description: row.description,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    available: Amount.parse(String(row.available)),
    held: Amount.parse(String(row.held)),
    closedReason: row.closed_reason as GrantState['closedReason'],
    closedAt: row.closed_at === null ? null : Number(row.closed_at),
    activated: Boolean(row.activated),
  };
}

/** Column values of a grant in the order of {@link GRANT_COLUMNS}. */
export function grantToParams(workspaceId: string, g: GrantState): unknown[] {
  return [
    g.id,
    workspaceId,
    g.customerId,
    g.creditType,
    g.category,
    g.amount.toString(),
    g.priority,
    g.effectiveAt,
    g.expiresAt,
    g.createdAt,
    g.costBasis?.amount.toString() ?? null,
    g.costBasis?.currency ?? null,
    g.appliesTo === null ? null : JSON.stringify(g.appliesTo),
    g.description,
    JSON.stringify(g.metadata),
    g.available.toString(),
    g.held.toString(),
    g.closedReason,
    g.closedAt,
    g.activated ? 1 : 0,
    isGrantOpen(g) ? 1 : 0,
  ];
}

export const GRANT_COLUMNS = [
  'id',
  'workspace_id',
  'customer_id',
  'credit_type',
  'category',
  'amount',
  'priority',
  'effective_at',
  'expires_at',
  'created_at',
  'cost_basis_amount',
  'cost_basis_currency',
  'applies_to',
  'description',
  'metadata',
  'available',
  'held',
  'closed_reason',
  'closed_at',
  'activated',
  'is_open',
] as const;

/** A grant is loaded with its ledger while it still has credits (free or pinned): the domain's rule. */
export { isGrantOpen };

export interface HoldRow {
  id: string;
  workspace_id: string;
  customer_id: string;
  credit_type: string;
  amount: string;
  created_at: number | string;
  expires_at: number | string;
  status: string;
  portions: string;
  drawdowns: string;
  captured_amount: string | null;
  closed_at: number | string | null;
  description: string | null;
  metadata: string;
  feature_id: string | null;
  usage_quantity: string | null;
  usage_period_start: number | string | null;
}

export const HOLD_COLUMNS = [
  'id',
  'workspace_id',
  'customer_id',
  'credit_type',
  'amount',
  'created_at',
  'expires_at',
  'status',
  'portions',
  'drawdowns',
  'captured_amount',
  'closed_at',
  'description',
  'metadata',
  'feature_id',
  'usage_quantity',
  'usage_period_start',
] as const;

export function holdFromRow(row: HoldRow): HoldState {
  return {
    id: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    amount: Amount.parse(String(row.amount)),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    status: row.status as HoldStatus,
    portions: drawdownsFromJson(row.portions).map((d) => ({ grantId: d.grantId, amount: d.amount })),
    drawdowns: drawdownsFromJson(row.drawdowns),
    capturedAmount: row.captured_amount === null ? null : Amount.parse(String(row.captured_amount)),
    closedAt: row.closed_at === null ? null : Number(row.closed_at),
    featureId: row.feature_id ?? null,
    usage:
      row.usage_quantity === null || row.usage_quantity === undefined
        ? null
        : { quantity: Amount.parse(String(row.usage_quantity)), periodStart: Number(row.usage_period_start) },
    description: row.description,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
  };
}

export function holdToParams(workspaceId: string, h: HoldState): unknown[] {
  return [
    h.id,
    workspaceId,
    h.customerId,
    h.creditType,
    h.amount.toString(),
    h.createdAt,
    h.expiresAt,
    h.status,
    drawdownsToJson(h.portions.filter((p) => p.amount.isPositive())),
    drawdownsToJson(h.drawdowns),
    h.capturedAmount?.toString() ?? null,
    h.closedAt,
    h.description,
    JSON.stringify(h.metadata),
    h.featureId,
    h.usage?.quantity.toString() ?? null,
    h.usage?.periodStart ?? null,
  ];
}

export function drawdownsToJson(drawdowns: readonly Drawdown[]): string {
  return JSON.stringify(drawdowns.map((d) => [d.grantId, d.amount.toString()]));
}

export function drawdownsFromJson(text: string): Drawdown[] {
  return (JSON.parse(text) as [string, string][]).map(([grantId, amount]) => ({
    grantId,
    amount: Amount.parse(amount),
  }));
}

export interface DebitRow {
  id: string;
  workspace_id: string;
  customer_id: string;
  credit_type: string;
  amount: string;
  drawdowns: string;
  overage: string;
  hold_id: string | null;
  created_at: number | string;
  description: string | null;
  metadata: string;
  feature_id: string | null;
  quantity: string | null;
  reversed: string | null;
}

/** A stored debit or capture with what has been reversed of it. */
export function debitFromRow(row: DebitRow): ReversibleDebit {
  return {
    debit: {
      id: row.id,
      customerId: row.customer_id,
      creditType: row.credit_type,
      amount: Amount.parse(String(row.amount)),
      drawdowns: drawdownsFromJson(row.drawdowns),
      overage: Amount.parse(String(row.overage)),
      holdId: row.hold_id,
      featureId: row.feature_id,
      quantity: row.quantity === null ? null : Amount.parse(String(row.quantity)),
      createdAt: Number(row.created_at),
      description: row.description,
      metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    },
    reversed: reversedFromJson(row.reversed),
  };
}

/**
 * `{"overage": "…", "grants": [[grantId, "…"], …], "paid": [[grantId, "…"], …], "quantity": "…",
 * "history": [[id, "…", reason, at], …]}`: the reversed parts of a debit (`paid`: overage already
 * paid, refunded per grant; `quantity`: usage given back) and its reversals.
 */
export function reversedToJson(reversed: DebitReversed): string {
  return JSON.stringify({
    overage: reversed.overage.toString(),
    grants: [...reversed.byGrant].map(([grantId, amount]) => [grantId, amount.toString()]),
    paid: [...reversed.paidBack].map(([grantId, amount]) => [grantId, amount.toString()]),
    quantity: reversed.quantity.toString(),
    history: reversed.history.map((r) => [r.id, r.amount.toString(), r.reason, r.at]),
  });
}

export function reversedFromJson(text: string | null): DebitReversed {
  if (text === null)
    return {
      overage: Amount.ZERO,
      byGrant: new Map(),
      paidBack: new Map(),
      quantity: Amount.ZERO,
      history: [],
    };
  const parsed = JSON.parse(text) as {
    overage: string;
    grants: [string, string][];
    paid?: [string, string][];
    quantity?: string;
    history: [string, string, string, number][];
  };
  return {
    overage: Amount.parse(parsed.overage),
    byGrant: new Map(parsed.grants.map(([grantId, amount]) => [grantId, Amount.parse(amount)])),
    paidBack: new Map((parsed.paid ?? []).map(([grantId, amount]) => [grantId, Amount.parse(amount)])),
    quantity: parsed.quantity === undefined ? Amount.ZERO : Amount.parse(parsed.quantity),
    history: parsed.history.map(([id, amount, reason, at]) => ({
      id,
      amount: Amount.parse(amount),
      reason,
      at,
    })),
  };
}

export const DEBIT_COLUMNS = [
  'id',
  'workspace_id',
  'customer_id',
  'credit_type',
  'amount',
  'drawdowns',
  'overage',
  'hold_id',
  'created_at',
  'description',
  'metadata',
  'feature_id',
  'quantity',
] as const;

export function debitToParams(workspaceId: string, d: DebitRecord): unknown[] {
  return [
    d.id,
    workspaceId,
    d.customerId,
    d.creditType,
    d.amount.toString(),
    drawdownsToJson(d.drawdowns),
    d.overage.toString(),
    d.holdId,
    d.createdAt,
    d.description,
    JSON.stringify(d.metadata),
    d.featureId,
    d.quantity === null ? null : d.quantity.toString(),
  ];
}

export interface EntryRow {
  seq: number | string;
  id: string;
  workspace_id: string;
  customer_id: string;
  credit_type: string;
  type: string;
  amount: string;
  from_account: string;
  to_account: string;
  grant_id: string | null;
  ref: string | null;
  at: number | string;
  balance_after: string;
  recorded_at: number | string;
}

export const ENTRY_COLUMNS = [
  'id',
  'workspace_id',
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

export function entryFromRow(row: EntryRow): StoredEntry {
  return {
    seq: String(row.seq),
    id: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    type: row.type as EntryType,
    amount: Amount.parse(String(row.amount)),
    fromAccount: row.from_account as AccountName,
    toAccount: row.to_account as AccountName,
    grantId: row.grant_id,
    ref: row.ref,
    at: Number(row.at),
    balanceAfter: Amount.parse(String(row.balance_after)),
    recordedAt: Number(row.recorded_at),
  };
}

export interface AccountsRow {
  issued: string;
  consumed: string;
  expired: string;
  voided: string;
  overage: string;
  clawed_back: string;
}

export function accountsFromRow(row: AccountsRow | undefined | null): CustomerAccounts {
  if (!row) return noAccounts();
  return {
    issued: Amount.parse(String(row.issued)),
    consumed: Amount.parse(String(row.consumed)),
    expired: Amount.parse(String(row.expired)),
    voided: Amount.parse(String(row.voided)),
    overage: Amount.parse(String(row.overage)),
    clawed_back: Amount.parse(String(row.clawed_back)),
  };
}

export interface CustomerRow {
  workspace_id: string;
  id: string;
  name: string | null;
  metadata: string;
  created_at: number | string;
}

export function customerFromRow(row: CustomerRow): Customer {
  return {
    workspaceId: row.workspace_id,
    id: row.id,
    name: row.name,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    createdAt: Number(row.created_at),
  };
}

export interface CreditTypeRow {
  workspace_id: string;
  id: string;
  name: string | null;
  created_at: number | string;
}

export function creditTypeFromRow(row: CreditTypeRow): CreditType {
  return { workspaceId: row.workspace_id, id: row.id, name: row.name, createdAt: Number(row.created_at) };
}

/**
 * SQL for the grant-status filter at a given instant (parameter `?` = now, used as often as
 * returned in `params`). Mirrors `grantStatusAt` in the domain.
 */
export function grantStatusCondition(status: string, now: number): { sql: string; params: unknown[] } {
  switch (status) {
    case 'voided':
      return { sql: `closed_reason = 'voided'`, params: [] };
    case 'expired':
      return {
        sql: `(closed_reason = 'expired' OR (closed_reason IS NULL AND expires_at IS NOT NULL AND expires_at <= ?))`,
        params: [now],
      };
    case 'pending':
      return {
        sql: `(closed_reason IS NULL AND effective_at > ? AND (expires_at IS NULL OR expires_at > ?))`,
        params: [now, now],
      };
    case 'depleted':
      return {
        sql: `(closed_reason IS NULL AND effective_at <= ? AND (expires_at IS NULL OR expires_at > ?) AND is_open = 0)`,
        params: [now, now],
      };
    default:
      return {
        sql: `(closed_reason IS NULL AND effective_at <= ? AND (expires_at IS NULL OR expires_at > ?) AND is_open = 1)`,
        params: [now, now],
      };
  }
}

export interface ApiKeyRow {
  id: string;
  workspace_id: string;
  scope: string;
  name: string | null;
  created_at: number | string;
  revoked_at: number | string | null;
  permissions: string | null;
  expires_at: number | string | null;
  last_used_at: number | string | null;
  rate_limit: string | null;
}

export function apiKeyFromRow(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    scope: row.scope as ApiKeyRecord['scope'],
    name: row.name,
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    permissions: row.permissions === null ? null : (JSON.parse(row.permissions) as string[]),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    rateLimit: row.rate_limit,
  };
}

export interface WorkspaceRow {
  id: string;
  name: string | null;
  created_at: number | string;
}

export function workspaceFromRow(row: WorkspaceRow): WorkspaceRecord {
  return { id: row.id, name: row.name, createdAt: Number(row.created_at) };
}

export interface MeterRow {
  workspace_id: string;
  id: string;
  event_type: string;
  aggregation: string;
  value_property: string | null;
  group_by: string;
  created_at: number | string;
}

export function meterFromRow(row: MeterRow): MeterRecord {
  return {
    workspaceId: row.workspace_id,
    id: row.id,
    eventType: row.event_type,
    aggregation: row.aggregation as MeterRecord['aggregation'],
    valueProperty: row.value_property,
    groupBy: JSON.parse(row.group_by) as Record<string, string>,
    createdAt: Number(row.created_at),
  };
}

export interface RateRow {
  workspace_id: string;
  id: string;
  meter_id: string;
  filter: string;
  credit_type: string;
  pricing: string;
  seq: number | string;
  created_at: number | string;
}

export function rateFromRow(row: RateRow): RateRecord {
  return {
    workspaceId: row.workspace_id,
    id: row.id,
    meterId: row.meter_id,
    filter: JSON.parse(row.filter) as Record<string, string>,
    creditType: row.credit_type,
    pricing: JSON.parse(row.pricing) as StoredPricing,
    seq: Number(row.seq),
    createdAt: Number(row.created_at),
  };
}

export interface EventRow {
  workspace_id: string;
  event_key: string;
  id: string;
  source: string | null;
  type: string;
  customer_id: string;
  time: number | string;
  data: string;
  rules_seq: number | string;
  received_at: number | string;
  unmetered: number | string;
  duplicates: number | string;
  reversed_at: number | string | null;
}

export function eventFromRow(row: EventRow): StoredEvent {
  return {
    workspaceId: row.workspace_id,
    eventKey: row.event_key,
    id: row.id,
    source: row.source,
    type: row.type,
    customerId: row.customer_id,
    time: Number(row.time),
    data: JSON.parse(row.data) as unknown,
    rulesSeq: Number(row.rules_seq),
    receivedAt: Number(row.received_at),
    unmetered: Number(row.unmetered) === 1,
  };
}

/** A stored event with what happened to it after arrival (for listing). */
export function listedEventFromRow(row: EventRow): ListedEvent {
  return extend(eventFromRow(row), {
    duplicates: Number(row.duplicates),
    reversedAt: row.reversed_at === null ? null : Number(row.reversed_at),
  });
}

export interface BurnRow {
  workspace_id: string;
  event_key: string;
  rate_id: string;
  customer_id: string;
  debit_id: string | null;
  quantity: string;
  credits: string;
  created_at: number | string;
}

export function burnFromRow(row: BurnRow): EventBurn {
  return {
    workspaceId: row.workspace_id,
    eventKey: row.event_key,
    rateId: row.rate_id,
    customerId: row.customer_id,
    debitId: row.debit_id,
    quantity: Amount.parse(String(row.quantity)),
    credits: Amount.parse(String(row.credits)),
    createdAt: Number(row.created_at),
  };
}
