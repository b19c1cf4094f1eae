import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Amount } from '../domain/amount/amount.js';
import type { LedgerEntry } from '../domain/ledger/types.js';
import type { Instant } from '../domain/time/instant.js';
import type { OperationalGauges } from '../ports/storage.js';

/**
 * The metrics Burndown exports at `/metrics` (Prometheus text), on prom-client with a registry
 * per instance (no global state, so tests and several apps in one process stay apart).
 *
 * Semantics across processes: counters (requests, events, credits) count what **this process**
 * did since it started (sum them across processes); gauges under "database" are read from the
 * database at scrape time and are **global** (every process reports the same value; take one, or
 * `max`). Credit amounts are accumulated exactly (`bigint` units of 10^-12) and converted to
 * float64 once per scrape (one rounding, ~15–16 significant digits): metrics only, never fed back
 * into amounts.
 */
const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** One gauge the storage reports (see {@link Metrics.storageGauges}). */
export interface StorageGauge {
  readonly name: string;
  readonly help: string;
  readonly value: number;
}

/** What an answer to `POST /v1/events` counted (unmetered events are a subset of accepted ones). */
export interface EventOutcomeCounts {
  readonly accepted: number;
  readonly duplicates: number;
  readonly unmetered: number;
  readonly rejected: number;
}

/** Which credit counter an entry moves, by the accounts it moves between (see the README's Metrics). */
type CreditFlow = 'granted' | 'burned' | 'reversed' | 'expired' | 'voided';

function flowOf(entry: LedgerEntry): CreditFlow | null {
  if (entry.type === 'grant') return 'granted';
  if (entry.toAccount === 'consumed') return 'burned';
  if (entry.fromAccount === 'consumed') return 'reversed';
  if (entry.toAccount === 'expired') return 'expired';
  if (entry.toAccount === 'voided') return 'voided';
  return null;
}

const FLOW_HELP: Record<CreditFlow, string> = {
  granted: 'Credits granted (grant entries), by credit type; this process, committed writes',
  burned:
    'Credits burned (entries into consumed: debits, captures, event burns, overage), by credit type; this process',
  reversed: 'Credits given back by corrections (entries out of consumed), by credit type; this process',
  expired: 'Credits expired (entries into expired), by credit type; this process',
  voided: 'Credits voided (entries into voided), by credit type; this process',
};

export class Metrics {
  readonly registry = new Registry();
  private readonly httpRequests = new Counter({
    name: 'burndown_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  /** Requests answered, by route, method and status: published into {@link httpRequests} at each scrape. */
  private readonly requestCounts = new Map<string, Map<string, Map<number, number>>>();
  private readonly httpDuration = new RequestLatencyHistogram(
    'burndown_http_request_duration_seconds',
    'HTTP request latency by route template',
    DEFAULT_BUCKETS,
  );
  readonly commitBatch = new Histogram({
    name: 'burndown_commit_batch_size',
    help: 'Writes sharing one transaction and fsync (SQLite group commit)',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [this.registry],
  });
  readonly sweeps = new Counter({
    name: 'burndown_sweeper_ledgers_total',
    help: 'Ledgers whose due expiries the sweeper recorded',
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'burndown_events_total',
    help:
      'Events answered by POST /v1/events, by outcome (accepted, of which unmetered; duplicate; rejected); ' +
      'replays of an Idempotency-Key are not counted again; this process',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly creditCounters = new Map<CreditFlow, Counter<'credit_type'>>();
  /** Exact totals in 10^-12 units per flow and credit type; published as floats at each scrape. */
  private readonly creditTotals = new Map<CreditFlow, Map<string, bigint>>();
  private readonly holdsOpen = new Gauge({
    name: 'burndown_holds_open',
    help: 'Active holds by credit type (database, global)',
    labelNames: ['credit_type'] as const,
    registers: [this.registry],
  });
  private readonly holdsOpenCredits = new Gauge({
    name: 'burndown_holds_open_credits',
    help: 'Credits reserved by active holds, by credit type (database, global)',
    labelNames: ['credit_type'] as const,
    registers: [this.registry],
  });
  private readonly overageCredits = new Gauge({
    name: 'burndown_overage_outstanding_credits',
    help: 'Overage owed (positive), by credit type (database, global)',
    labelNames: ['credit_type'] as const,
    registers: [this.registry],
  });
  private readonly overageLedgers = new Gauge({
    name: 'burndown_overage_ledgers',
    help: 'Customer ledgers that owe overage, by credit type (database, global)',
    labelNames: ['credit_type'] as const,
    registers: [this.registry],
  });
  private readonly sweeperLag = new Gauge({
    name: 'burndown_sweeper_lag_seconds',
    help:
      'Now minus the oldest due grant expiry, grant activation, hold expiry or subscription reset not yet ' +
      'applied, by kind (0 when nothing is overdue; database, global)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly outboxUnfanned = new Gauge({
    name: 'burndown_outbox_events_unfanned',
    help: 'Outbox events not yet fanned out into webhook deliveries (database, global)',
    registers: [this.registry],
  });
  private readonly webhookPending = new Gauge({
    name: 'burndown_webhook_deliveries_pending',
    help: 'Webhook deliveries not yet delivered nor given up: waiting, retrying or being sent (database, global)',
    registers: [this.registry],
  });
  private readonly webhookLag = new Gauge({
    name: 'burndown_webhook_delivery_lag_seconds',
    help: 'Now minus the earliest instant a pending webhook delivery was due (0 when none is overdue; database, global)',
    registers: [this.registry],
  });
  private readonly databaseUp = new Gauge({
    name: 'burndown_metrics_database_read_ok',
    help: '1 when the database gauges of this scrape were read; 0 when the read failed or none are configured (they are then absent)',
    registers: [this.registry],
  });

  /**
   * Gauges read from the storage at each scrape (the SQLite durability settings actually in force
   * on the writer connection), so a test or an operator can see them on a running server.
   */
  storageGauges: () => readonly StorageGauge[] = () => [];
  /** Reads the database gauges (set by the composition root); none when unset. */
  databaseGauges: (() => Promise<{ readonly now: Instant; readonly gauges: OperationalGauges }>) | null =
    null;

  constructor() {
    for (const flow of Object.keys(FLOW_HELP) as CreditFlow[]) {
      this.creditTotals.set(flow, new Map());
      this.creditCounters.set(
        flow,
        new Counter({
          name: `burndown_credits_${flow}_total`,
          help: FLOW_HELP[flow],
          labelNames: ['credit_type'] as const,
          registers: [this.registry],
        }),
      );
    }
    new Gauge({
      name: 'burndown_process_resident_memory_bytes',
      help: 'Resident set size',
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'burndown_process_uptime_seconds',
      help: 'Seconds since the process started',
      registers: [this.registry],
      collect() {
        this.set(process.uptime());
      },
    });
  }

  /**
   * Records one answered request. It runs on every request, so it only bumps numbers in maps keyed
   * by the route template (a bounded set): prom-client's own `inc`/`observe` validate and hash
   * their labels on every call, which cost several microseconds per request; the text is built at
   * scrape time instead.
   */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.requestCounts.get(route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.requestCounts.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    this.httpDuration.observe(route, seconds);
  }

  /** Counts committed ledger entries (see `observeCommittedEntries`): cheap, exact, no I/O. */
  observeEntries(entries: readonly LedgerEntry[]): void {
    for (const entry of entries) {
      const flow = flowOf(entry);
      if (flow === null) continue;
      const totals = this.creditTotals.get(flow)!;
      totals.set(entry.creditType, (totals.get(entry.creditType) ?? 0n) + entry.amount.units);
    }
  }

  /** Counts one answer of `POST /v1/events`. */
  observeEvents(counts: EventOutcomeCounts): void {
    if (counts.accepted > 0) this.events.inc({ outcome: 'accepted' }, counts.accepted);
    if (counts.unmetered > 0) this.events.inc({ outcome: 'unmetered' }, counts.unmetered);
    if (counts.duplicates > 0) this.events.inc({ outcome: 'duplicate' }, counts.duplicates);
    if (counts.rejected > 0) this.events.inc({ outcome: 'rejected' }, counts.rejected);
  }

  /** The Prometheus text: one database read for the global gauges, the rest from memory. */
  async render(): Promise<string> {
    for (const [flow, totals] of this.creditTotals) {
      const counter = this.creditCounters.get(flow)!;
      counter.reset();
      for (const [creditType, units] of totals) {
        counter.inc({ credit_type: creditType }, Number(Amount.fromUnits(units).toString()));
      }
    }
    this.httpRequests.reset();
    for (const [route, byMethod] of this.requestCounts) {
      for (const [method, byStatus] of byMethod) {
        for (const [status, count] of byStatus) {
          this.httpRequests.inc({ method, route, status: String(status) }, count);
        }
      }
    }
    await this.readDatabaseGauges();
    const storage = this.storageGauges()
      .map((g) => `# HELP ${g.name} ${g.help}\n# TYPE ${g.name} gauge\n${g.name} ${g.value}\n`)
      .join('');
    return `${storage}${await this.registry.metrics()}\n${this.httpDuration.render()}`;
  }

  private async readDatabaseGauges(): Promise<void> {
    for (const gauge of [
      this.holdsOpen,
      this.holdsOpenCredits,
      this.overageCredits,
      this.overageLedgers,
      this.sweeperLag,
      this.outboxUnfanned,
      this.webhookPending,
      this.webhookLag,
    ]) {
      gauge.reset();
    }
    if (this.databaseGauges === null) {
      this.databaseUp.set(0);
      return;
    }
    let read: { readonly now: Instant; readonly gauges: OperationalGauges };
    try {
      read = await this.databaseGauges();
    } catch {
      this.databaseUp.set(0);
      return;
    }
    this.databaseUp.set(1);
    const { now, gauges } = read;
    for (const h of gauges.openHolds) {
      this.holdsOpen.set({ credit_type: h.creditType }, h.count);
      this.holdsOpenCredits.set({ credit_type: h.creditType }, h.amount);
    }
    for (const o of gauges.overage) {
      this.overageLedgers.set({ credit_type: o.creditType }, o.count);
      this.overageCredits.set({ credit_type: o.creditType }, o.amount);
    }
    for (const [kind, due] of Object.entries(gauges.oldestDue)) {
      this.sweeperLag.set({ kind }, due === null ? 0 : Math.max(0, now - due) / 1000);
    }
    const { webhooks } = gauges;
    this.outboxUnfanned.set(webhooks.unfannedEvents);
    this.webhookPending.set(webhooks.pendingDeliveries);
    const dueAt = webhooks.oldestDueDelivery;
    this.webhookLag.set(dueAt === null ? 0 : Math.max(0, now - dueAt) / 1000);
  }
}

/**
 * A Prometheus histogram with one label (`route`), kept as plain counts: `observe` runs on every
 * request and costs a map lookup and a bucket search; the text (the same exposition format
 * prom-client writes: cumulative `_bucket` lines with `le` first, then `_sum` and `_count`) is
 * built only at scrape time.
 */
export class RequestLatencyHistogram {
  private readonly byRoute = new Map<string, { readonly counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(route: string, seconds: number): void {
    let series = this.byRoute.get(route);
    if (series === undefined) {
      series = { counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 };
      this.byRoute.set(route, series);
    }
    // The first bound at or above the value; above the last one it counts in +Inf only.
    for (let i = 0; i < this.bounds.length; i++) {
      if (seconds <= this.bounds[i]!) {
        series.counts[i]! += 1;
        break;
      }
    }
    series.sum += seconds;
    series.count += 1;
  }

  /** The family in Prometheus text format (0.0.4), ending with a newline. */
  render(): string {
    const lines = [`# HELP ${this.name} ${escapeText(this.help)}`, `# TYPE ${this.name} histogram`];
    for (const [route, series] of this.byRoute) {
      const label = `route="${escapeLabelValue(route)}"`;
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        lines.push(`${this.name}_bucket{le="${bound}",${label}} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket{le="+Inf",${label}} ${series.count}`);
      lines.push(`${this.name}_sum{${label}} ${series.sum}`);
      lines.push(`${this.name}_count{${label}} ${series.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Escapes HELP text as the exposition format requires (backslash and newline). */
function escapeText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Escapes a label value as the exposition format requires (backslash, newline, double quote). */
function escapeLabelValue(value: string): string {
  return escapeText(value).replace(/"/g, '\\"');
}
