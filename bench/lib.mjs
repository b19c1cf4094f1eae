// Helpers shared by the benchmarks (bench/debits.mjs, bench/postgres.mjs, bench/check.mjs): child
// processes, CPU accounting from /proc, waiting for a quiet machine, HTTP seeding, an autocannon
// window with exact latencies, /metrics histograms, statistics, output formatting and provenance.
// Plain ESM; nothing beyond Node is loaded unless `autocannonWindow` is called (it imports autocannon).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..');
/** The CLI the benchmarks start; BENCH_DIST points them at another build's dist/ (to compare builds). */
export const cli = join(process.env.BENCH_DIST ?? join(root, 'dist'), 'cli', 'main.js');

/** A positive number from the environment, or `fallback` when unset. */
export const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};

export const log = (line = '') => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// child processes

/** Starts `node <args>` and resolves once it prints "... listening on http://host:port". */
/**
 * The Node flags `npm start` gives the server (package.json): benchmarks start
 * `… cli/main.js serve` with them, as the service runs when started the documented way.
 * BENCH_SERVE_FLAGS replaces them ('' for none), to measure without.
 */
export const SERVE_NODE_FLAGS = (process.env.BENCH_SERVE_FLAGS ?? '--max-semi-space-size=64')
  .split(' ')
  .filter(Boolean);

export function startChild(name, args, env, serveFlags = SERVE_NODE_FLAGS) {
  const servesBurndown = args.at(-1) === 'serve' && args.some((a) => a.endsWith(join('cli', 'main.js')));
  const child = spawn(process.execPath, servesBurndown ? [...serveFlags, ...args] : args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 20 s\n${out}${err}`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited early (code ${code}, signal ${signal})\n${out}${err}`));
    });
  });
  return {
    name,
    child,
    url,
    exited,
    stderr: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** `node dist/cli/main.js reconcile` on a database; never throws, reports the exit code. */
export async function runReconcile(databaseUrl) {
  const r = await promisify(execFile)(process.execPath, [cli, 'reconcile'], {
    cwd: root,
    env: { ...process.env, BURNDOWN_DATABASE_URL: databaseUrl },
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (ok) => ({ exitCode: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (e) => ({ exitCode: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(e) }),
  );
  // "reconcile: N entries, N accounts, N grants[, more counts]: OK|FAILED"
  const m = /reconcile: (\d+) entries, (\d+) accounts, (\d+) grants[^:\n]*: (\w+)/.exec(r.stdout);
  return { ...r, match: m };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds in user and in system mode that a process (or, with `tid`, one of its threads) has
 * used so far, from /proc; NaN for both when it cannot be read (the thread ended).
 */
export function cpuTimesOf(pid, tid) {
  try {
    const stat = readFileSync(
      tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`,
      'utf8',
    );
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of stat(5)
    return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** CPU seconds (user + system) a process (or, with `tid`, one of its threads) has used so far, from /proc. */
export function cpuSecondsOf(pid, tid) {
  const { user, system } = cpuTimesOf(pid, tid);
  return user + system;
}
export const selfCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Busy CPU seconds of the whole machine (all processes, all CPUs), from /proc/stat. */
export function systemBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds per live process, to name who else used the machine (short-lived ones may be missed). */
export function processCpuSnapshot() {
  const snap = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const own = (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime (all threads)
      let cmd = comm;
      try {
        cmd =
          readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || `[${comm}]`;
      } catch {}
      snap.set(entry, { cpu: own, cmd });
    } catch {}
  }
  return snap;
}

/** The processes (other than `exclude`) that used the most CPU between two snapshots. */
export function topOthers(before, after, seconds, exclude) {
  const rows = [];
  for (const [pid, a] of after) {
    if (exclude.has(pid)) continue;
    const d = a.cpu - (before.get(pid)?.cpu ?? 0);
    if (d > 0.05) rows.push({ pid: Number(pid), cores: d / seconds, cmd: a.cmd.slice(0, 120) });
  }
  return rows.sort((x, y) => y.cores - x.cores).slice(0, 5);
}

export const QUIET_WAIT = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 20);
export const QUIET_CORES = 0.15;

/**
 * Other processes on this machine (test runs, builds…) steal CPU from both the load generator
 * and the server. Wait up to `quietWait` seconds (BENCH_QUIET_WAIT_SECONDS) for a quiet moment
 * (two consecutive seconds with < 0.15 cores used by anything but us); measure anyway
 * afterwards, and report it. `ours` is the pid of the process under test, or a function that
 * returns the CPU seconds used so far by everything under test (servers, database…).
 */
export async function waitForQuiet(label, ours, quietWait = QUIET_WAIT) {
  const oursCpu = typeof ours === 'function' ? ours : () => (ours ? cpuSecondsOf(ours) : 0);
  const deadline = Date.now() + quietWait * 1000;
  let quietSeconds = 0;
  let last = 0;
  while (true) {
    const b0 = systemBusySeconds();
    const s0 = selfCpuSeconds();
    const p0 = oursCpu();
    await new Promise((r) => setTimeout(r, 1000));
    last = systemBusySeconds() - b0 - (selfCpuSeconds() - s0) - (oursCpu() - p0);
    quietSeconds = last < QUIET_CORES ? quietSeconds + 1 : 0;
    if (quietSeconds >= 2) return { waited: true, quiet: true, otherCores: last };
    if (Date.now() > deadline) {
      log(`  ${label}: machine not quiet (other processes use ${fmt(last, 2)} cores); measuring anyway`);
      return { waited: true, quiet: false, otherCores: last };
    }
  }
}

/**
 * Who used the CPU during a window: `ours()` (CPU seconds of everything under test other than
 * this process), this process (the load generator, or the in-process loop) and everything else on
 * the machine.
 */
export function startCpuWindow(ours = () => 0, excludePids = () => []) {
  const t0 = process.hrtime.bigint();
  const busy0 = systemBusySeconds();
  const self0 = selfCpuSeconds();
  const ours0 = ours();
  const procs0 = processCpuSnapshot();
  return {
    stop() {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const total = systemBusySeconds() - busy0;
      const self = selfCpuSeconds() - self0;
      const oursCpu = ours() - ours0;
      const other = total - self - oursCpu;
      const exclude = new Set([String(process.pid), ...excludePids().map(String)]);
      return {
        wallSec: wall,
        underTestCores: oursCpu / wall,
        selfCores: self / wall,
        otherProcessesCores: other / wall,
        machineBusyCores: total / wall,
        topOtherProcesses: topOthers(procs0, processCpuSnapshot(), wall, exclude),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// statistics

/** n, mean, p50, p90, p99, p99.9 and max of a list of numbers (nearest-rank percentiles). */
export function percentiles(values) {
  if (values.length === 0)
    return { n: 0, mean: null, p50: null, p90: null, p99: null, p999: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    mean: sum / sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted[sorted.length - 1],
  };
}

// ---------------------------------------------------------------------------------------------
// load: one autocannon target

/**
 * Loads one target with autocannon: a warm-up (discarded), a wait for a quiet machine, then the
 * measured window. Besides autocannon's own figures (its latency histogram is in whole
 * milliseconds) it records every response time exactly, and the CPU used by the server (`pid`),
 * by this process (the load generator) and by everything else. `requests` is autocannon's option
 * of the same name (use `setupRequest` to vary path or body). `before`/`after` run just outside
 * the measured window (e.g. /metrics scrapes); their results are returned.
 */
export async function autocannonWindow({
  label,
  url,
  pid,
  connections,
  seconds,
  warmupSeconds,
  headers = {},
  requests,
  quietWait = QUIET_WAIT,
  before = async () => null,
  after = async () => null,
}) {
  const { default: autocannon } = await import('autocannon');
  const run = (duration, onResponse) => {
    const instance = autocannon({
      url,
      connections,
      pipelining: 1,
      duration,
      timeout: 10,
      headers,
      requests,
    });
    if (onResponse) instance.on('response', onResponse);
    return instance;
  };
  log(`  ${label}: warm-up ${warmupSeconds} s …`);
  const warm = await run(warmupSeconds);
  const quiet = await waitForQuiet(label, pid, quietWait);
  const beforeResult = await before();
  log(`  ${label}: measuring ${seconds} s with ${connections} connections …`);
  const latencies = [];
  const windowStart = Date.now();
  const cpu = startCpuWindow(
    () => cpuSecondsOf(pid),
    () => [pid],
  );
  const result = await run(seconds, (_client, _status, _bytes, responseTimeMs) => {
    latencies.push(responseTimeMs);
  });
  const usage = cpu.stop();
  const windowEnd = Date.now();
  const afterResult = await after();
  return {
    figures: {
      reqPerSecMean: result.requests.mean,
      reqPerSecStddev: result.requests.stddev,
      latencyMs: {
        mean: result.latency.mean,
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        max: result.latency.max,
      },
      exactLatencyMs: percentiles(latencies),
      requests: result.requests.total,
      ok2xx: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      durationSec: result.duration,
      warmup: { requests: warm.requests.total, ok2xx: warm['2xx'], non2xx: warm.non2xx, errors: warm.errors },
      cpu: {
        wallSec: usage.wallSec,
        serverCores: usage.underTestCores,
        loadGeneratorCores: usage.selfCores,
        otherProcessesCores: usage.otherProcessesCores,
        machineBusyCores: usage.machineBusyCores,
        quietBeforeStart: quiet.quiet,
        topOtherProcesses: usage.topOtherProcesses,
      },
    },
    windowStart,
    windowEnd,
    before: beforeResult,
    after: afterResult,
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (seeding and scraping; the load itself is autocannon's)

/** A keep-alive agent and a `request(baseUrl, method, path, body)` that sends the API key. */
export function createRequester(apiKey, { maxSockets = 64 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  function request(baseUrl, method, path, body) {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        new URL(path, baseUrl),
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${apiKey}`,
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode, text }));
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
  return { agent, request };
}

export async function pool(items, concurrency, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

/** The API key every benchmark's server starts with (`BURNDOWN_API_KEY`) and its load sends. */
export const API_KEY = 'bench_0123456789abcdef0123456789abcdef';

export const customerId = (i) => `bench-cust-${String(i).padStart(5, '0')}`;

const DAY_MS = 86_400_000;
const CATEGORIES = ['paid', 'promotional', 'allowance'];

/**
 * The body of grant `g` of the `c`-th customer: varied priority (0–99), category (paid,
 * promotional, allowance) and expiry (a quarter never expire; the rest 2–~180 days from `now`).
 */
export function grantBody(c, g, now, amount) {
  const k = c * 31 + g * 17;
  return {
    amount,
    priority: (k * 7) % 100,
    category: CATEGORIES[k % CATEGORIES.length],
    // a quarter never expire; the rest expire between 2 and ~180 days from now
    expires_at:
      g % 4 === 0 ? null : new Date(now + (2 + (k % 179)) * DAY_MS + (k % 3600) * 1000).toISOString(),
  };
}

/**
 * Seeds customers over HTTP: each customer is created, then gets `grants` grants one after the
 * other; `concurrency` customers are in progress at once. Customer `c` goes to
 * `baseUrls[c % baseUrls.length]`, so several server processes share the work.
 */
export async function seedCustomers({ request, baseUrls, ids, grants, grantAmount, concurrency = 32 }) {
  const now = Date.now();
  let made = 0;
  const fail = (what, r) => {
    throw new Error(`seeding failed: ${what} → ${r.status} ${r.text.slice(0, 300)}`);
  };
  await pool(ids, concurrency, async (id, c) => {
    const baseUrl = baseUrls[c % baseUrls.length];
    const r = await request(baseUrl, 'POST', '/v1/customers', { id });
    if (r.status !== 201) fail(`customer ${id}`, r);
    for (let g = 0; g < grants; g++) {
      const rg = await request(
        baseUrl,
        'POST',
        `/v1/customers/${id}/grants`,
        grantBody(c, g, now, grantAmount),
      );
      if (rg.status !== 201) fail(`grant ${g} of ${id}`, rg);
      made += 1;
    }
  });
  return { customers: ids, grants: made };
}

/**
 * Seeds what `/v1/check` benchmarks check: a metered feature `bench-gen` (0.5 credits per use), a
 * plan `bench-pro` that includes it, and every customer of `ids` subscribed to the plan.
 */
export async function seedCheckPlan(request, url, ids, concurrency = 32) {
  const feature = await request(url, 'POST', '/v1/features', {
    id: 'bench-gen',
    type: 'metered',
    credits_per_use: '0.5',
  });
  const plan = await request(url, 'POST', '/v1/plans', {
    id: 'bench-pro',
    name: 'Bench Pro',
    entitlements: [{ feature_id: 'bench-gen' }],
    price: { amount: '29.00', currency: 'USD' },
  });
  if (feature.status !== 201 || plan.status !== 201)
    throw new Error(
      `seeding the plan failed: ${feature.status} ${feature.text} / ${plan.status} ${plan.text}`,
    );
  await pool(ids, concurrency, async (id) => {
    const sub = await request(url, 'POST', `/v1/customers/${id}/subscriptions`, { plan_id: 'bench-pro' });
    if (sub.status !== 201) throw new Error(`subscribing ${id} failed: ${sub.status} ${sub.text}`);
  });
}

/** The SQLite commit batch histogram's sum and count from a server's /metrics, or null when it has none. */
export async function commitBatchStats(url) {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const sum = /^burndown_commit_batch_size_sum (\S+)$/m.exec(text);
    const count = /^burndown_commit_batch_size_count (\S+)$/m.exec(text);
    return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : null;
  } catch {
    return null;
  }
}

/**
 * Waits until a server has fanned out its outbox (`burndown_outbox_events_unfanned` at 0 on two
 * reads a second apart, at most `timeoutSeconds`). Seeding writes thousands of outbox events
 * (grant.created, subscription.started, …); a server started on the seeded file fans them out in
 * the background, and each of those commits empties the SQLite read cache, so a window measured
 * during that drain measures the drain. Builds without the gauge (or without public metrics)
 * return at once. Resolves with the seconds waited.
 */
export async function waitForOutboxDrained(url, timeoutSeconds = 120) {
  const started = Date.now();
  let zeros = 0;
  while (Date.now() - started < timeoutSeconds * 1000) {
    let unfanned = null;
    try {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = /^burndown_outbox_events_unfanned (\S+)$/m.exec(text);
      unfanned = m ? Number(m[1]) : null;
    } catch {
      unfanned = null;
    }
    if (unfanned === null) return (Date.now() - started) / 1000;
    zeros = unfanned === 0 ? zeros + 1 : 0;
    if (zeros >= 2) return (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`the outbox of ${url} did not drain in ${timeoutSeconds} s`);
}

// ---------------------------------------------------------------------------------------------
// /metrics

export function parseHistogram(text, name, labelFilter = '') {
  const buckets = [];
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    const [series, value] = [
      line.slice(0, line.lastIndexOf(' ')),
      Number(line.slice(line.lastIndexOf(' ') + 1)),
    ];
    if (series.startsWith(`${name}_bucket`)) {
      const le = /le="([^"]+)"/.exec(series)[1];
      buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), cumulative: value });
    } else if (series.startsWith(`${name}_sum`)) sum = value;
    else if (series.startsWith(`${name}_count`)) count = value;
  }
  return { buckets, sum, count };
}

/** The histogram observed between two scrapes, as non-cumulative buckets. */
export function histogramDelta(before, after) {
  const prevByLe = new Map(before.buckets.map((b) => [b.le, b.cumulative]));
  let prevCum = 0;
  let prevLe = 0;
  const buckets = [];
  for (const b of after.buckets) {
    const cum = b.cumulative - (prevByLe.get(b.le) ?? 0);
    buckets.push({ range: [prevLe, b.le], count: cum - prevCum, cumulative: cum });
    prevCum = cum;
    prevLe = b.le;
  }
  const count = after.count - before.count;
  const sum = after.sum - before.sum;
  const quantile = (q) => {
    const target = q * count;
    for (const b of buckets) if (b.cumulative >= target && b.count > 0) return b.range[1];
    return null;
  };
  return {
    count,
    sum,
    mean: count ? sum / count : null,
    p50UpperBound: quantile(0.5),
    p99UpperBound: quantile(0.99),
    buckets,
  };
}

// ---------------------------------------------------------------------------------------------
// output

export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows
    .map((r, i) => {
      const line = r
        .map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c])))
        .join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

export const fmt = (n, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '-'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Which code was measured: dist/ is built from the working tree, which may differ from HEAD. */
export function provenance() {
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: root }).toString().trim();
    } catch {
      return null;
    }
  };
  const dirty = git('status', '--porcelain', '--', 'src');
  return {
    commit: git('rev-parse', 'HEAD'),
    srcChangesNotCommitted: dirty === null ? null : dirty.split('\n').filter(Boolean).length,
    distBuiltAt: statSync(cli).mtime.toISOString(),
  };
}

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    nproc: Number(execFileSync('nproc').toString().trim()),
    cpuModel: model,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

// ---------------------------------------------------------------------------------------------
// wrk

/** Prints wrk's summary as one JSON line (latencies in µs) so the figures need no text parsing. */
export const WRK_DONE = `
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"meanUs":%f,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

/**
 * Runs wrk (1 thread) against `url` with a Lua `script` that ends with {@link WRK_DONE}; resolves
 * with wrk's summary (latencies in µs) and its pid. `BENCH_WRK` names another wrk binary.
 */
export async function runWrk(url, script, seconds, connections, dir) {
  const run = Math.random().toString(36).slice(2);
  const file = join(dir, `script-${run}.lua`);
  // Each wrk invocation gets its own RUN_TAG: scripts that make event ids from it send fresh ids
  // in the measured window, never the ids of the warm-up before it (those would be duplicates,
  // far cheaper to ingest, and a build that handles duplicates differently would look faster).
  writeFileSync(file, script.replaceAll('__RUN_TAG__', run));
  const { code, out, pid } = await runCollecting(process.env.BENCH_WRK || 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '30s',
    '-s',
    file,
    url,
  ]);
  const m = /WRKJSON (\{.*\})/.exec(out);
  if (code !== 0 || !m) throw new Error(`wrk failed (exit ${code}):\n${out}`);
  return { ...JSON.parse(m[1]), pid };
}

/**
 * Runs a program to its end, its stdout and stderr collected together; resolves with its exit
 * code, that output and its pid (`onSpawn` gets the child at once, e.g. to sample its CPU).
 */
export function runCollecting(command, args, options = {}, onSpawn = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn(child);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, pid: child.pid }));
  });
}
