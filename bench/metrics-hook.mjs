// Micro-benchmark of the per-request metrics path (the onResponse hook: one counter increment with
// method/route/status labels and one histogram observation by route), the hand-written registry
// Burndown used before (copied below as it was) against prom-client as src/http/metrics.ts uses
// it now; plus the one-line request log (pino, to a discarding stream) and a /metrics render.
// Run after `npm run build`: node bench/metrics-hook.mjs
import { Writable } from 'node:stream';
import pino from 'pino';
import { Metrics } from '../dist/http/metrics.js';

// ---- The hand-written registry as it was (src/http/metrics.ts before prom-client) ----
const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
function labelText(labels) {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}
class OldCounter {
  values = new Map();
  inc(labels = {}, by = 1) {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
}
class OldHistogram {
  series = new Map();
  constructor(buckets = DEFAULT_BUCKETS) {
    this.buckets = buckets;
  }
  observe(value, labels = {}) {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0, labels };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i] += 1;
    s.sum += value;
    s.count += 1;
  }
}

const ROUTES = ['/v1/customers/:id/debits', '/v1/customers/:id/balance', '/v1/events', '/v1/check'];
const STATUSES = ['200', '201', '402'];
const N = Number(process.env.N ?? 2_000_000);

function time(name, fn) {
  for (let i = 0; i < 200_000; i++) fn(i); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - start) / N;
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/request`);
  return ns;
}

const results = {};
for (let round = 0; round < 3; round++) {
  const oldCounter = new OldCounter();
  const oldHistogram = new OldHistogram();
  results[`old-${round}`] = time(`hand-written (round ${round + 1})`, (i) => {
    const route = ROUTES[i & 3];
    oldCounter.inc({ method: 'POST', route, status: STATUSES[i % 3] });
    oldHistogram.observe((i % 100) / 10_000, { route });
  });
  const metrics = new Metrics();
  results[`prom-${round}`] = time(`prom-client (round ${round + 1})`, (i) => {
    const route = ROUTES[i & 3];
    metrics.httpRequests.inc({ method: 'POST', route, status: STATUSES[i % 3] });
    metrics.httpDuration.observe({ route }, (i % 100) / 10_000);
  });
}
const sink = new Writable({ write: (_c, _e, cb) => cb() });
const logger = pino({ level: 'info' }, sink).child({ reqId: 'req-1' });
time('request log line (pino, discarded)', (i) => {
  logger.info(
    {
      method: 'POST',
      route: ROUTES[i & 3],
      url: '/v1/customers/acme/debits',
      status: 201,
      duration_ms: 1.234,
      key_id: 'key_01',
      workspace: 'default',
    },
    'request',
  );
});
const metrics = new Metrics();
for (let i = 0; i < 10_000; i++) {
  metrics.httpRequests.inc({ method: 'POST', route: ROUTES[i & 3], status: STATUSES[i % 3] });
  metrics.httpDuration.observe({ route: ROUTES[i & 3] }, 0.001);
}
const renders = 2000;
const start = process.hrtime.bigint();
for (let i = 0; i < renders; i++) await metrics.render();
console.log(
  `${'/metrics render (no database gauges)'.padEnd(44)} ${(Number(process.hrtime.bigint() - start) / renders / 1000).toFixed(0).padStart(6)} µs/scrape`,
);

// ---- Whole requests in process (app.inject, GET /healthz): request log on (info) vs off ----
const { buildApp } = await import('../dist/http/app.js');
const { SqliteStorage } = await import('../dist/storage/sqlite/sqlite-storage.js');
const { TimeOrderedIds } = await import('../dist/infra/ids.js');
const { systemClock } = await import('../dist/infra/system-clock.js');
const storage = await SqliteStorage.open({ path: ':memory:' });
const ctx = { storage, clock: systemClock, ids: new TimeOrderedIds(() => Date.now()) };
const apps = {
  'log info (one line per request)': await buildApp(ctx, {
    bodyLimit: 1 << 20,
    logLevel: 'info',
    logStream: { write() {} },
  }),
  'log silent': await buildApp(ctx, { bodyLimit: 1 << 20, logLevel: 'silent' }),
};
const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
for (let round = 0; round < 3; round++) {
  for (const [name, app] of Object.entries(apps)) {
    for (let i = 0; i < 2000; i++) await app.inject({ url: '/healthz' });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < REQUESTS; i++) await app.inject({ url: '/healthz' });
    const us = Number(process.hrtime.bigint() - t0) / REQUESTS / 1000;
    console.log(
      `${`inject /healthz, ${name} (round ${round + 1})`.padEnd(56)} ${us.toFixed(1).padStart(6)} µs/request`,
    );
  }
}
for (const app of Object.values(apps)) await app.close();
await storage.close();
