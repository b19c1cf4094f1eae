import type { GrantState } from '../domain/ledger/types.js';
import {
  type BreakagePolicy,
  DEFAULT_BREAKAGE_POLICY,
  formatMinorUnits,
  GrantRecognition,
  movementOfEntry,
  type RevenueGrant,
} from '../domain/revenue/recognition.js';
import {
  type JournalLine,
  journalOf,
  periodBoundaries,
  type RevenueGroupBy,
  RevenueReportBuilder,
  type RevenueRow,
  reportPeriods,
  totalsPerCurrency,
} from '../domain/revenue/report.js';
import type { Instant } from '../domain/time/instant.js';
import type { PageRequest, ReadOperations, RevenuePolicies, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/** Rows read per storage query while a report walks grants and entries (memory stays flat). */
const PAGE = 1000;

/** What the revenue report covers. */
export interface RevenueReportQuery {
  readonly workspaceId: string;
  /** Inclusive start of the range. */
  readonly from: Instant;
  /** Exclusive end of the range. */
  readonly to: Instant;
  /** Only grants whose cost basis is in this currency (null: all currencies). */
  readonly currency: string | null;
  readonly groupBy: RevenueGroupBy;
}

/** The report: rows per currency and group, and totals per currency. */
export interface RevenueReport {
  readonly rows: readonly RevenueRow[];
  readonly totals: readonly RevenueRow[];
}

/** The pack a grant was bought from (purchases record it in the grant's metadata). */
function packOf(grant: Readonly<GrantState>): string | null {
  const pack = grant.metadata['pack_id'];
  return typeof pack === 'string' ? pack : null;
}

/** A paid grant with a cost basis as revenue recognition sees it. */
export function revenueGrantOf(grant: Readonly<GrantState>): RevenueGrant | null {
  if (grant.category !== 'paid' || grant.costBasis === null) return null;
  return {
    id: grant.id,
    customerId: grant.customerId,
    creditType: grant.creditType,
    packId: packOf(grant),
    credits: grant.amount,
    costBasis: grant.costBasis,
    createdAt: grant.createdAt,
  };
}

/**
 * The policy the current settings give a grant: its pack's override, else the workspace default,
 * else `at_expiry`. A sold grant keeps the one recorded at its sale instead (see
 * {@link recordGrantRevenuePolicy}); only grants sold before policies were recorded follow this.
 */
export function policyFor(policies: RevenuePolicies, grant: RevenueGrant): BreakagePolicy {
  const own = grant.packId === null ? undefined : policies.byPack.get(grant.packId);
  return own ?? policies.workspaceDefault ?? DEFAULT_BREAKAGE_POLICY;
}

/**
 * Records on a grant just sold or granted with a cost basis (a paid grant: a pack purchase, a
 * grant with `cost_basis`, an import) the breakage policy in force, in the sale's transaction:
 * changing the workspace's or the pack's policy later changes how later grants are recognised,
 * never this one. Grants that revenue recognition ignores record nothing.
 */
export async function recordGrantRevenuePolicy(
  tx: WriteOperations,
  workspaceId: string,
  grant: GrantState,
  now: Instant,
): Promise<void> {
  const sold = revenueGrantOf(grant);
  if (sold === null) return;
  const policies = await tx.finance.revenuePolicies(workspaceId);
  await tx.finance.insertGrantRevenuePolicy(workspaceId, grant.id, policyFor(policies, sold), now);
}

/**
 * The revenue report over [from, to): every paid grant issued before `to` (in its currency),
 * its ledger's entries dated before `to` read once per ledger in (at, seq) order and folded into
 * the grant's roll-forward at the period boundaries. Memory holds one ledger's paid grants and a
 * page of rows, whatever the history's length. Expiries are recorded by the sweeper at the instant
 * they fell due, so a report of a range ending within the sweeper's lag may still change.
 */
export async function revenueReport(ctx: ServiceContext, query: RevenueReportQuery): Promise<RevenueReport> {
  const reads = ctx.storage.read;
  const policies = await reads.finance.revenuePolicies(query.workspaceId);
  const periods = reportPeriods(query.from, query.to, query.groupBy);
  const boundaries = periodBoundaries(periods);
  const builder = new RevenueReportBuilder(query.groupBy, periods);
  let ledger: RevenueGrant[] = [];
  const flush = async () => {
    if (ledger.length > 0) await foldLedger(reads, query, ledger, policies, boundaries, builder);
    ledger = [];
  };
  let page: PageRequest = { after: null, limit: PAGE };
  for (;;) {
    const got = await reads.finance.paidGrants(
      { workspaceId: query.workspaceId, customerId: null, createdBefore: query.to },
      page,
    );
    for (const state of got.items) {
      const grant = revenueGrantOf(state);
      if (grant === null) continue;
      if (query.currency !== null && grant.costBasis.currency !== query.currency) continue;
      const current = ledger[0];
      if (current && (current.customerId !== grant.customerId || current.creditType !== grant.creditType)) {
        await flush();
      }
      ledger.push(grant);
    }
    if (got.nextAfter === null) break;
    page = { after: got.nextAfter, limit: PAGE };
  }
  await flush();
  const rows = builder.result();
  return { rows, totals: totalsPerCurrency(rows, query.from, query.to) };
}

/** Reads one ledger's entries once and adds each of its paid grants' roll-forwards to the report. */
async function foldLedger(
  reads: ReadOperations,
  query: RevenueReportQuery,
  grants: readonly RevenueGrant[],
  policies: RevenuePolicies,
  boundaries: readonly Instant[],
  builder: RevenueReportBuilder,
): Promise<void> {
  const first = grants[0]!;
  const recorded = await reads.finance.grantRevenuePolicies(
    query.workspaceId,
    grants.map((g) => g.id),
  );
  const trackers = new Map<string, GrantRecognition>();
  for (const g of grants) {
    const policy = recorded.get(g.id) ?? policyFor(policies, g);
    trackers.set(g.id, new GrantRecognition(g, policy, boundaries));
  }
  const key = { workspaceId: query.workspaceId, customerId: first.customerId, creditType: first.creditType };
  let page: PageRequest = { after: null, limit: PAGE };
  for (;;) {
    const got = await reads.listEntries(key, { from: null, to: query.to }, page);
    for (const entry of got.items) {
      if (entry.grantId === null) continue;
      const tracker = trackers.get(entry.grantId);
      if (!tracker) continue;
      const movement = movementOfEntry(entry, entry.grantId);
      if (movement) tracker.add(movement);
    }
    if (got.nextAfter === null) break;
    page = { after: got.nextAfter, limit: PAGE };
  }
  for (const tracker of trackers.values()) builder.add(tracker.grant, tracker.periods());
}

/** The journal of [from, to): the report by month, as balanced double-entry lines per currency. */
export async function revenueJournal(
  ctx: ServiceContext,
  query: Omit<RevenueReportQuery, 'groupBy'>,
): Promise<readonly JournalLine[]> {
  const report = await revenueReport(ctx, { ...query, groupBy: 'month' });
  return journalOf(report.rows);
}

/** Column names of the revenue report's table form (CSV and the CLI). */
export const REVENUE_COLUMNS = [
  'currency',
  'group',
  'period_start',
  'period_end',
  'opening_deferred',
  'additions',
  'recognised',
  'breakage',
  'refunds',
  'closing_deferred',
] as const;

/** A report row as text fields (money in the currency's decimals), in {@link REVENUE_COLUMNS} order. */
export function revenueRowFields(row: RevenueRow): string[] {
  const money = (units: bigint) => formatMinorUnits(units, row.currency);
  return [
    row.currency,
    row.group,
    new Date(row.periodStart).toISOString(),
    new Date(row.periodEnd).toISOString(),
    money(row.opening),
    money(row.additions),
    money(row.recognised),
    money(row.breakage),
    money(row.refunds),
    money(row.closing),
  ];
}

/** Column names of the journal's table form. */
export const JOURNAL_COLUMNS = [
  'journal_id',
  'date',
  'period_end',
  'currency',
  'account',
  'debit',
  'credit',
  'memo',
] as const;

/** A journal line as text fields, in {@link JOURNAL_COLUMNS} order (`date`: the period's first day). */
export function journalLineFields(line: JournalLine): string[] {
  const money = (units: bigint) => formatMinorUnits(units, line.currency);
  return [
    line.journalId,
    new Date(line.periodStart).toISOString().slice(0, 10),
    new Date(line.periodEnd).toISOString(),
    line.currency,
    line.account,
    money(line.debit),
    money(line.credit),
    line.memo,
  ];
}
