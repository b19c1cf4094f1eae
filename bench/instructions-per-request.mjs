// Instructions per request over HTTP, counted by valgrind's callgrind: a figure that does not move
// with the machine's speed, so builds compare to within a percent on a VM whose throughput swings by
// a third. Each build seeds its own database with a normal server (BENCH_CUSTOMERS customers with
// BENCH_GRANTS grants, as compare-builds.mjs does), then serves a copy of it under callgrind; a client
// outside valgrind sends BENCH_WARMUP requests (the JIT settles), the counters are zeroed
// (`callgrind_control -z`), BENCH_REQUESTS more are sent with BENCH_CONCURRENCY in flight, and the
// counters are dumped (`callgrind_control -d`) per thread. Printed per request: the main thread's
// instructions (HTTP, the use case, SQL on this thread), the other threads' (the SQLite commit and
// checkpoint workers, V8's compiler and GC helpers), and, where the build's /metrics has it, the
// commit batch size (valgrind runs one thread at a time, so batches differ from a free run: compare
// builds at the same batch size).
//
//   npm run build && node bench/instructions-per-request.mjs <dist> [<dist> …]
//   e.g. node bench/instructions-per-request.mjs /work/old/dist dist
// Knobs: BENCH_TARGET (debits | check | customer), BENCH_REQUESTS (2,000), BENCH_WARMUP (3,000),
// BENCH_CONCURRENCY (50), BENCH_CUSTOMERS (300), BENCH_GRANTS (12), BENCH_CACHE_SIM (1: also the
// main thread's simulated cache misses; BENCH_LL=<bytes>,<ways>,<line> sets the simulated last level,
// e.g. 1048576,8,64 for a 1 MiB L2), BENCH_KEEP_DIR (keep the dumps there). Needs valgrind (Debian package).
// Each build takes a few minutes (valgrind runs the server 30-60 times slower).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  API_KEY,
  commitBatchStats,
  createRequester,
  customerId,
  fmt,
  log,
  machine,
  num,
  pool,
  SERVE_NODE_FLAGS,
  seedCheckPlan,
  seedCustomers,
  startChild,
  table,
} from './lib.mjs';

const TARGET = process.env.BENCH_TARGET || 'debits';
const REQUESTS = num('BENCH_REQUESTS', 2000);
const WARMUP = num('BENCH_WARMUP', 3000);
const CONCURRENCY = num('BENCH_CONCURRENCY', 50);
const CUSTOMERS = num('BENCH_CUSTOMERS', 300);
const GRANTS = num('BENCH_GRANTS', 12);
/** BENCH_CACHE_SIM=1: callgrind also simulates the caches (about twice as slow) and misses are printed. */
const CACHE_SIM = process.env.BENCH_CACHE_SIM === '1';

const dists = process.argv.slice(2).map((d) => resolve(d));
if (dists.length === 0 || !['debits', 'check', 'customer'].includes(TARGET)) {
  process.stderr.write(
    'usage: [BENCH_TARGET=debits|check|customer] node bench/instructions-per-request.mjs <dist> …\n',
  );
  process.exit(2);
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  process.stderr.write('valgrind not found (apt-get install valgrind)\n');
  process.exit(2);
}
for (const dist of dists) {
  if (!existsSync(join(dist, 'cli', 'main.js')))
    throw new Error(`${dist}/cli/main.js not found: build it first`);
}

/** BENCH_KEEP_DIR: callgrind's dump files are kept there (for callgrind_annotate), not deleted. */
const KEEP = process.env.BENCH_KEEP_DIR;
const dir = KEEP ? resolve(KEEP) : mkdtempSync(join(os.tmpdir(), 'burndown-instructions-'));
if (KEEP) mkdirSync(dir, { recursive: true });
const { request } = createRequester(API_KEY, { maxSockets: CONCURRENCY });
const env = (dbPath) => ({
  PORT: '0',
  BURNDOWN_API_KEY: API_KEY,
  BURNDOWN_DATABASE_URL: `sqlite:${dbPath}`,
  BURNDOWN_LOG_LEVEL: 'warn',
  BURNDOWN_METRICS_PUBLIC: '1',
});

/** The request the target sends for customer `i`. */
function send(url, i) {
  const id = customerId(i % CUSTOMERS);
  if (TARGET === 'debits') return request(url, 'POST', `/v1/customers/${id}/debits`, { amount: '1.5' });
  if (TARGET === 'check')
    return request(url, 'POST', '/v1/check', { customer_id: id, feature_id: 'bench-gen', quantity: '3' });
  return request(url, 'GET', `/v1/customers/${id}`);
}

/** `count` requests, `CONCURRENCY` in flight, over customers in a fixed scrambled order. */
async function drive(url, count, offset) {
  const order = Array.from({ length: count }, (_, k) => (offset + k) * 7919);
  let failed = 0;
  await pool(order, CONCURRENCY, async (i) => {
    const r = await send(url, i);
    if (r.status >= 300) failed += 1;
  });
  if (failed > 0) throw new Error(`${failed} of ${count} requests failed`);
}

/** Instructions per thread in callgrind's dump files `<prefix>*` (one file per thread and dump). */
function instructionsByThread(prefix) {
  const dumpDir = resolve(prefix, '..');
  const base = prefix.slice(dumpDir.length + 1);
  const byThread = new Map();
  for (const name of readdirSync(dumpDir)) {
    if (!name.startsWith(base)) continue;
    const text = readFileSync(join(dumpDir, name), 'utf8');
    const thread = Number(/^thread: (\d+)$/m.exec(text)?.[1] ?? 1);
    const part = Number(/^part: (\d+)$/m.exec(text)?.[1] ?? 0);
    if (part === 0) continue; // the counts up to the zeroing (written at exit), not the window
    const events = (/^events: (.+)$/m.exec(text)?.[1] ?? 'Ir').trim().split(/\s+/);
    const totals = (/^(?:summary|totals): (.+)$/m.exec(text)?.[1] ?? '0').trim().split(/\s+/).map(Number);
    const counts = byThread.get(thread) ?? {};
    events.forEach((event, i) => {
      counts[event] = (counts[event] ?? 0) + (totals[i] ?? 0);
    });
    byThread.set(thread, counts);
  }
  return byThread;
}

async function measure(dist, index) {
  const template = join(dir, `template-${index}.db`);
  const seeder = startChild('seed', [join(dist, 'cli', 'main.js'), 'serve'], env(template));
  const seedUrl = await seeder.url;
  await seedCustomers({
    request,
    baseUrls: [seedUrl],
    ids: Array.from({ length: CUSTOMERS }, (_, c) => customerId(c)),
    grants: GRANTS,
    grantAmount: '1000000',
  });
  if (TARGET === 'check')
    await seedCheckPlan(
      request,
      seedUrl,
      Array.from({ length: CUSTOMERS }, (_, c) => customerId(c)),
    );
  await seeder.stop();

  const db = join(dir, `run-${index}.db`);
  copyFileSync(template, db);
  const prefix = join(dir, `callgrind-${index}.out`);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--smc-check=all-non-file',
      '--separate-threads=yes',
      ...(CACHE_SIM
        ? ['--cache-sim=yes', ...(process.env.BENCH_LL ? [`--LL=${process.env.BENCH_LL}`] : [])]
        : []),
      `--callgrind-out-file=${prefix}`,
      process.execPath,
      ...SERVE_NODE_FLAGS,
      join(dist, 'cli', 'main.js'),
      'serve',
    ],
    { env: { ...process.env, ...env(db) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const exited = new Promise((done) => child.once('exit', done));
  const started = Date.now();
  let url = null;
  while (url === null) {
    url = /listening on (http:\/\/[^\s]+)/.exec(out)?.[1] ?? null;
    if (url === null && (child.exitCode !== null || Date.now() - started > 300_000))
      throw new Error(`the server under valgrind did not start\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await drive(url, WARMUP, 0);
  const before = await commitBatchStats(url);
  const control = (flag) => {
    const r = spawnSync('callgrind_control', [flag, String(child.pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${r.stderr}${r.stdout}`);
  };
  control('-z');
  const t0 = Date.now();
  await drive(url, REQUESTS, WARMUP);
  const seconds = (Date.now() - t0) / 1000;
  control('-d');
  const after = await commitBatchStats(url);
  child.kill('SIGTERM');
  await exited;
  const byThread = instructionsByThread(prefix);
  const mainCounts = byThread.get(1) ?? {};
  const main = mainCounts.Ir ?? 0;
  let others = 0;
  for (const [thread, counts] of byThread) if (thread !== 1) others += counts.Ir ?? 0;
  // With the caches simulated: the main thread's first-level misses and last-level misses
  // (instructions and data), per request.
  const misses = CACHE_SIM
    ? {
        l1: ((mainCounts.I1mr ?? 0) + (mainCounts.D1mr ?? 0) + (mainCounts.D1mw ?? 0)) / REQUESTS,
        ll: ((mainCounts.DLmr ?? 0) + (mainCounts.DLmw ?? 0) + (mainCounts.ILmr ?? 0)) / REQUESTS,
      }
    : null;
  const batch =
    before && after && after.count > before.count
      ? (after.sum - before.sum) / (after.count - before.count)
      : null;
  return { dist, main: main / REQUESTS, others: others / REQUESTS, batch, seconds, misses };
}

log(`Instructions per request over HTTP (${TARGET}), counted by callgrind — ${new Date().toISOString()}`);
const mach = machine();
log(
  `machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}; ${WARMUP} warm-up and ${REQUESTS} measured requests, ${CONCURRENCY} in flight, ${CUSTOMERS} customers × ${GRANTS} grants`,
);
const rows = [
  [
    'build',
    'main thread /req',
    'other threads /req',
    'total /req',
    ...(CACHE_SIM ? ['main L1 misses /req', 'main LL misses /req'] : []),
    'commit batch',
    'window s',
  ],
];
try {
  for (const [i, dist] of dists.entries()) {
    const r = await measure(dist, i);
    rows.push([
      dist,
      fmt(r.main),
      fmt(r.others),
      fmt(r.main + r.others),
      ...(r.misses ? [fmt(r.misses.l1), fmt(r.misses.ll)] : []),
      r.batch === null ? '—' : fmt(r.batch, 1),
      fmt(r.seconds, 0),
    ]);
    log(`${dist}: main thread ${fmt(r.main)} instructions per request`);
  }
  log(table(rows));
  if (KEEP) {
    log(
      `dumps kept in ${dir}: callgrind-<build>.out.1-01 is build <build>'s main thread over the window (0 = first); ` +
        `node bench/callgrind-areas.mjs ${join(dir, 'callgrind-0.out.1-01')} ${join(dir, 'callgrind-1.out.1-01')} --requests=${REQUESTS}`,
    );
  }
} finally {
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
}
