/**
 * A small Prometheus text-format registry: counters and histograms with labels. Hand-rolled to
 * keep the hot path free of allocation-heavy generic machinery.
 */
const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Record<string, string> = {}, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [labels, value] of this.values) lines.push(`${this.name}${labels} ${value}`);
    return lines.join('\n');
  }
}

class Histogram {
  private readonly series = new Map<
    string,
    { counts: number[]; sum: number; count: number; labels: Record<string, string> }
  >();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  observe(value: number, labels: Record<string, string> = {}): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0, labels };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((bound, i) => {
        lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(bound) })} ${s.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** One gauge the storage reports (see {@link Metrics.storageGauges}). */
export interface StorageGauge {
  readonly name: string;
  readonly help: string;
  readonly value: number;
}

/** The metrics Burndown exports at /metrics. */
export class Metrics {
  readonly httpRequests = new Counter('burndown_http_requests_total', 'HTTP requests by route and status');
  readonly httpDuration = new Histogram(
    'burndown_http_request_duration_seconds',
    'HTTP request latency by route',
  );
  readonly commitBatch = new Histogram(
    'burndown_commit_batch_size',
    'Writes sharing one transaction and fsync (group commit)',
    [1, 2, 5, 10, 20, 50, 100, 200, 500],
  );
  readonly sweeps = new Counter(
    'burndown_sweeper_ledgers_total',
    'Ledgers whose due expiries the sweeper recorded',
  );

  /**
   * Gauges read from the storage at each scrape (the SQLite durability settings actually in force
   * on the writer connection), so a test or an operator can see them on a running server.
   */
  storageGauges: () => readonly StorageGauge[] = () => [];

  render(): string {
    const memory = process.memoryUsage();
    return [
      ...this.storageGauges().flatMap((g) => [
        `# HELP ${g.name} ${g.help}`,
        `# TYPE ${g.name} gauge`,
        `${g.name} ${g.value}`,
      ]),
      this.httpRequests.render(),
      this.httpDuration.render(),
      this.commitBatch.render(),
      this.sweeps.render(),
      '# HELP burndown_process_resident_memory_bytes Resident set size',
      '# TYPE burndown_process_resident_memory_bytes gauge',
      `burndown_process_resident_memory_bytes ${memory.rss}`,
      '# HELP burndown_process_uptime_seconds Seconds since the process started',
      '# TYPE burndown_process_uptime_seconds gauge',
      `burndown_process_uptime_seconds ${process.uptime()}`,
      '',
    ].join('\n');
  }
}
