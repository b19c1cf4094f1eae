/**
 * The revenue report and the journal built from per-grant roll-forwards (pure): groups add up
 * grants' {@link PeriodRecognition}s exactly (minor units are integers), so each group keeps the
 * identity opening + additions − recognised − breakage − refunds = closing to the minor unit.
 */

import { extend } from '../objects.js';
import type { Instant } from '../time/instant.js';
import type { PeriodRecognition, RevenueGrant } from './recognition.js';

/** How report rows are grouped (always per currency too). */
export type RevenueGroupBy = 'customer' | 'month' | 'credit_pack';
export const REVENUE_GROUP_BYS: readonly RevenueGroupBy[] = ['customer', 'month', 'credit_pack'];

/** The group of grants made directly, not bought from a pack, when grouping by credit pack. */
export const NO_CREDIT_PACK = '(none)';

/** One period the report covers: [start, end), labelled (`2026-01` for a month). */
export interface ReportPeriod {
  readonly start: Instant;
  readonly end: Instant;
  readonly label: string;
}

/** One row of the revenue report, in minor units of `currency`. */
export interface RevenueRow {
  readonly currency: string;
  readonly group: string;
  /** The period the row covers (the whole range unless grouped by month). */
  readonly periodStart: Instant;
  readonly periodEnd: Instant;
  opening: bigint;
  additions: bigint;
  recognised: bigint;
  breakage: bigint;
  refunds: bigint;
  closing: bigint;
}

/**
 * The periods of a report over [from, to): UTC calendar months (the first and last possibly
 * partial) when grouped by month, else the whole range as one period.
 */
export function reportPeriods(from: Instant, to: Instant, groupBy: RevenueGroupBy): ReportPeriod[] {
  if (groupBy !== 'month') return [{ start: from, end: to, label: '' }];
  const periods: ReportPeriod[] = [];
  let start = from;
  while (start < to) {
    const d = new Date(start);
    const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    const end = Math.min(nextMonth, to);
    periods.push({ start, end, label: d.toISOString().slice(0, 7) });
    start = end;
  }
  return periods;
}

/** The boundaries a grant's roll-forward is sampled at: each period's start, then the last end. */
export function periodBoundaries(periods: readonly ReportPeriod[]): Instant[] {
  if (periods.length === 0) return [];
  return [...periods.map((p) => p.start), periods[periods.length - 1]!.end];
}

/** Sums grants' roll-forwards into rows per currency and group. */
export class RevenueReportBuilder {
  private readonly rows = new Map<string, RevenueRow>();

  constructor(
    readonly groupBy: RevenueGroupBy,
    readonly periods: readonly ReportPeriod[],
  ) {}

  /** Adds one grant's roll-forward (one entry per period, as {@link periodBoundaries} sampled). */
  add(grant: RevenueGrant, perPeriod: readonly PeriodRecognition[]): void {
    const currency = grant.costBasis.currency;
    perPeriod.forEach((p, i) => {
      if (isNothing(p)) return;
      const period = this.periods[i]!;
      const group =
        this.groupBy === 'month'
          ? period.label
          : this.groupBy === 'customer'
            ? grant.customerId
            : (grant.packId ?? NO_CREDIT_PACK);
      const key = `${currency}\u0000${group}`;
      let row = this.rows.get(key);
      if (!row) {
        row = {
          currency,
          group,
          periodStart: period.start,
          periodEnd: period.end,
          opening: 0n,
          additions: 0n,
          recognised: 0n,
          breakage: 0n,
          refunds: 0n,
          closing: 0n,
        };
        this.rows.set(key, row);
      }
      row.opening += p.opening;
      row.additions += p.additions;
      row.recognised += p.recognised;
      row.breakage += p.breakage;
      row.refunds += p.refunds;
      row.closing += p.closing;
    });
  }

  /** The rows, by currency then group. */
  result(): RevenueRow[] {
    return [...this.rows.values()].sort((a, b) =>
      a.currency !== b.currency ? (a.currency < b.currency ? -1 : 1) : a.group < b.group ? -1 : 1,
    );
  }
}

function isNothing(p: PeriodRecognition): boolean {
  return (
    p.opening === 0n &&
    p.additions === 0n &&
    p.recognised === 0n &&
    p.breakage === 0n &&
    p.refunds === 0n &&
    p.closing === 0n
  );
}

/** Whether a row keeps opening + additions − recognised − breakage − refunds = closing. */
export function rowBalances(row: RevenueRow): boolean {
  return row.opening + row.additions - row.recognised - row.breakage - row.refunds === row.closing;
}

/** Totals per currency of some rows (their groups partition the grants, so sums are exact). */
export function totalsPerCurrency(rows: readonly RevenueRow[], from: Instant, to: Instant): RevenueRow[] {
  const out = new Map<string, RevenueRow>();
  for (const r of rows) {
    let t = out.get(r.currency);
    if (!t) {
      t = {
        currency: r.currency,
        group: 'total',
        periodStart: from,
        periodEnd: to,
        opening: 0n,
        additions: 0n,
        recognised: 0n,
        breakage: 0n,
        refunds: 0n,
        closing: 0n,
      };
      out.set(r.currency, t);
    }
    t.additions += r.additions;
    t.recognised += r.recognised;
    t.breakage += r.breakage;
    t.refunds += r.refunds;
    // Month rows follow each other: the opening is the first month's, the closing the last's.
    if (r.periodStart === from) t.opening += r.opening;
    if (r.periodEnd === to) t.closing += r.closing;
  }
  return [...out.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1));
}

/** The ledger accounts of the journal export (names an accounting system maps to its chart). */
export const JOURNAL_ACCOUNTS = {
  cash: 'cash',
  deferredRevenue: 'deferred_revenue',
  revenue: 'revenue',
  breakageRevenue: 'breakage_revenue',
  refunds: 'refunds',
} as const;

/** One line of a journal entry: a debit or a credit (the other is zero), in minor units. */
export interface JournalLine {
  readonly journalId: string;
  readonly currency: string;
  /** The first instant of the period the journal entry closes. */
  readonly periodStart: Instant;
  readonly periodEnd: Instant;
  readonly account: string;
  readonly debit: bigint;
  readonly credit: bigint;
  readonly memo: string;
}

/**
 * The journal of per-currency, per-month rows (a report grouped by month): per period and currency,
 * one balanced entry per fact — sales (Dr cash, Cr deferred revenue), recognition (Dr deferred
 * revenue, Cr revenue), breakage (Dr deferred revenue, Cr breakage revenue) and refunds (Dr deferred
 * revenue, Cr refunds, the refund payable until the payment provider pays it out). A negative
 * amount (more reversed than recognised in the period) swaps the sides. Zero facts have no entry.
 */
export function journalOf(monthRows: readonly RevenueRow[]): JournalLine[] {
  const lines: JournalLine[] = [];
  const A = JOURNAL_ACCOUNTS;
  for (const row of monthRows) {
    const facts: [string, bigint, string, string, string][] = [
      ['sales', row.additions, A.cash, A.deferredRevenue, 'paid credits sold (deferred)'],
      ['recognised', row.recognised, A.deferredRevenue, A.revenue, 'credits consumed'],
      ['breakage', row.breakage, A.deferredRevenue, A.breakageRevenue, 'breakage of unused credits'],
      ['refunds', row.refunds, A.deferredRevenue, A.refunds, 'credits refunded'],
    ];
    for (const [kind, amount, debitAccount, creditAccount, memo] of facts) {
      if (amount === 0n) continue;
      const journalId = `${row.currency}-${row.group}-${kind}`;
      const [dr, cr] = amount > 0n ? [debitAccount, creditAccount] : [creditAccount, debitAccount];
      const value = amount > 0n ? amount : -amount;
      const base = {
        journalId,
        currency: row.currency,
        periodStart: row.periodStart,
        periodEnd: row.periodEnd,
        memo,
      };
      lines.push(extend(base, { account: dr, debit: value, credit: 0n }));
      lines.push(extend(base, { account: cr, debit: 0n, credit: value }));
    }
  }
  return lines;
}
