// PostgreSQL benchmark: debits/s of Burndown on PostgreSQL (two server processes sharing one
// database), next to pgbench's built-in TPC-B run on the same PostgreSQL in the same run.
//
//   npm run bench:postgres          (builds, then runs this file; about 1.5–2 min)
//   node bench/postgres.mjs         (uses the existing dist/)
//
// Environment knobs (all optional):
//   BENCH_SECONDS=10             measured duration of pgbench and of each Burndown phase
//   BENCH_WARMUP_SECONDS=2       Burndown warm-up before the uniform phase (discarded)
//   BENCH_CONNECTIONS=32         autocannon connections in total, split evenly over the servers
//   BENCH_SERVERS=2              Burndown server processes
//   BENCH_PG_POOL_SIZE=16        BURNDOWN_PG_POOL_SIZE of each server
//   BENCH_CUSTOMERS=10000        customers seeded (over HTTP)
//   BENCH_GRANTS=3               active grants per customer
//   BENCH_HOT_SHARE=0.5          share of the hot phase's requests that go to the one hot customer
//   BENCH_PROBE_SECONDS=2        one connection debiting the hot customer alone (unloaded latency)
//   BENCH_PGBENCH_SCALE=16       pgbench -i -s
//   BENCH_PGBENCH_CLIENTS=16     pgbench -c (threads: -j 2)
//   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres   admin connection (creates/drops databases)
//   BENCH_QUIET_WAIT_SECONDS=5   how long to wait for other processes to stop using the CPU
//   BENCH_PROFILE=1              server 1 runs under `node --cpu-prof`; prints its hotspots in the
//                                uniform window (profiling slows it down: do not quote those figures)
//   BENCH_KEEP_DB=1              keep the Burndown database (the pgbench one is always dropped)
//
// Writes bench/results/latest-postgres.json (latest-postgres-profile.json with BENCH_PROFILE=1).
// Event ingest on PostgreSQL is measured by bench/events.mjs with BENCH_POSTGRES=1.
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { summariseProfile } from './cpuprofile-top.mjs';
import {
  API_KEY,
  cli,
  createRequester,
  customerId,
  fmt,
  grantBody,
  here,
  histogramDelta,
  log,
  machine,
  num,
  parseHistogram,
  processCpuSnapshot,
  provenance,
  QUIET_CORES,
  runCollecting,
  runReconcile,
  seedCustomers,
  selfCpuSeconds,
  startChild,
  systemBusySeconds,
  table,
  waitForQuiet,
} from './lib.mjs';

const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const SERVERS = num('BENCH_SERVERS', 2);
const CONNECTIONS = Math.max(num('BENCH_CONNECTIONS', 32), SERVERS);
const POOL_SIZE = num('BENCH_PG_POOL_SIZE', 16);
const CUSTOMERS = num('BENCH_CUSTOMERS', 10_000);
const GRANTS = num('BENCH_GRANTS', 3);
const HOT_SHARE = Math.min(num('BENCH_HOT_SHARE', 0.5), 1);
const PROBE_SECONDS = num('BENCH_PROBE_SECONDS', 2);
const PGBENCH_SCALE = num('BENCH_PGBENCH_SCALE', 16);
const PGBENCH_CLIENTS = num('BENCH_PGBENCH_CLIENTS', 16);
const PGBENCH_THREADS = 2;
const SEED_CONCURRENCY = num('BENCH_SEED_CONCURRENCY', 64);
const QUIET_WAIT = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 5);
const ADMIN_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const PROFILE = process.env.BENCH_PROFILE === '1';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const DEBIT_AMOUNT = '1.5';
const GRANT_AMOUNT = '1000000';
const HOT_GRANT_AMOUNT = '1000000000000'; // 10^12: the hot customer can never run out
const HOT_CUSTOMER = 'bench-hot';
const TARGET_RATIO = 0.8; // Burndown uniform debits/s ÷ pgbench TPC-B tps
const DEBIT_ROUTE = '/v1/customers/:id/debits';
const counterModule = join(here, 'pg-query-counter.mjs');

const { agent, request } = createRequester(API_KEY, { maxSockets: 2 * SEED_CONCURRENCY });

// ---------------------------------------------------------------------------------------------
// databases

const dbUrl = (name) => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
};

async function sql(connectionString, text, params = []) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

const createDatabase = (name) => sql(ADMIN_URL, `CREATE DATABASE ${name}`);
const dropDatabase = (name) => sql(ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);

/** `pgbench` with the connection of BENCH_PG_URL. Resolves with its exit code and output. */
function pgbench(args, onSpawn = () => {}) {
  const u = new URL(ADMIN_URL);
  const conn = ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
  const env = { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) };
  return runCollecting('pgbench', [...conn, ...args], { env }, onSpawn);
}

// ---------------------------------------------------------------------------------------------
// CPU: who used it during a window (servers, PostgreSQL, load generator, everything else)

/**
 * What a process is to this benchmark. PostgreSQL backends are named after their database in
 * `ps` ("postgres: 15/main: postgres <db> 127.0.0.1(…) idle"): those of our databases, the
 * postmaster and its auxiliary processes (WAL writer, checkpointer…) count as the database under
 * test; backends of other databases belong to someone else.
 */
function classify(pid, cmd, ctx) {
  if (ctx.serverPids.has(pid)) return 'servers';
  if (ctx.pgbenchPids.has(pid)) return 'pgbench';
  if (cmd.startsWith('postgres: ')) {
    const rest = cmd.replace(/^postgres: (?:\S+: )?/, '');
    const backend = /^(\S+) (\S+) (?:\S+\(\d+\)|\[local\])/.exec(rest);
    const worker = /^autovacuum worker (\S+)/.exec(rest);
    const db = backend?.[2] ?? worker?.[1] ?? null;
    if (db === null) return 'postgres';
    return ctx.dbs.has(db) ? 'postgres' : 'other';
  }
  if (/\/postgres(\s|$)/.test(cmd.split(' -D ')[0] ?? '') && cmd.includes(' -D ')) return 'postgres';
  return 'other';
}

/** CPU seconds used so far by everything under test (for waitForQuiet). */
function oursCpuSeconds(ctx) {
  let sum = 0;
  for (const [pid, p] of processCpuSnapshot()) {
    if (pid === String(process.pid)) continue;
    if (classify(pid, p.cmd, ctx) !== 'other') sum += p.cpu;
  }
  return sum;
}

/** Context switches of a process's main thread (the event loop), from /proc. */
function contextSwitchesOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const v = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]);
    const nv = Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]);
    return { voluntary: v, involuntary: nv };
  } catch {
    return { voluntary: Number.NaN, involuntary: Number.NaN };
  }
}

/** Context switches of the whole machine so far, from /proc/stat. */
function machineContextSwitches() {
  try {
    return Number(/^ctxt (\d+)/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
  } catch {
    return Number.NaN;
  }
}

/**
 * Starts accounting CPU: a snapshot now, one every second (so processes that exit during the
 * window, like pgbench's backends, are still counted up to their last second), and one at stop.
 */
function startCpuWindow(ctx) {
  const t0 = process.hrtime.bigint();
  const busy0 = systemBusySeconds();
  const self0 = selfCpuSeconds();
  const first = processCpuSnapshot();
  const last = new Map(first);
  const ctxt0 = machineContextSwitches();
  const servers0 = [...ctx.serverPids].map((pid) => [pid, contextSwitchesOf(pid)]);
  const sample = () => {
    for (const [pid, p] of processCpuSnapshot()) {
      // an exiting process has no cmdline any more ("[postgres]"): keep the name seen earlier
      const known = last.get(pid);
      last.set(
        pid,
        known && p.cmd.startsWith('[') && !known.cmd.startsWith('[') ? { ...p, cmd: known.cmd } : p,
      );
    }
  };
  const timer = setInterval(sample, 1000);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const total = systemBusySeconds() - busy0;
      const machineCtxt = machineContextSwitches() - ctxt0;
      const serverCtxt = { voluntary: 0, involuntary: 0 };
      for (const [pid, c0] of servers0) {
        const c1 = contextSwitchesOf(pid);
        serverCtxt.voluntary += c1.voluntary - c0.voluntary;
        serverCtxt.involuntary += c1.involuntary - c0.involuntary;
      }
      const self = selfCpuSeconds() - self0;
      const by = { servers: 0, postgres: 0, pgbench: 0, other: 0 };
      const others = [];
      for (const [pid, p] of last) {
        if (pid === String(process.pid)) continue;
        const d = p.cpu - (first.get(pid)?.cpu ?? 0);
        if (!(d > 0)) continue;
        const kind = classify(pid, p.cmd, ctx);
        by[kind] += d;
        if (kind === 'other' && d > 0.05)
          others.push({ pid: Number(pid), cores: d / wall, cmd: p.cmd.slice(0, 120) });
      }
      // everything the machine did that is not ours, including processes too short-lived to be seen
      const otherCpu = total - self - by.servers - by.postgres - by.pgbench;
      return {
        wallSec: wall,
        serversCores: by.servers / wall,
        postgresCores: by.postgres / wall,
        pgbenchCores: by.pgbench / wall,
        loadGeneratorCores: self / wall,
        otherProcessesCores: otherCpu / wall,
        machineBusyCores: total / wall,
        machineContextSwitches: machineCtxt,
        serverMainThreadContextSwitches: serverCtxt,
        topOtherProcesses: others.sort((x, y) => y.cores - x.cores).slice(0, 5),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// statistics

function percentiles(values) {
  if (values.length === 0) return { n: 0, mean: null, p50: null, p90: null, p99: null, max: null };
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
    max: sorted[sorted.length - 1],
  };
}

// ---------------------------------------------------------------------------------------------
// load

/**
 * One autocannon instance per server, in parallel, `connections` split evenly. Each request
 * debits a uniformly random seeded customer, or (with probability `hotShare`) the hot customer.
 * Latencies are recorded per response (all statuses) and split hot / cold.
 */
async function runLoad({ urls, connections, seconds, hotShare, customers }) {
  const n = customers.length;
  const paths = customers.map((id) => `/v1/customers/${encodeURIComponent(id)}/debits`);
  const hotPath = `/v1/customers/${HOT_CUSTOMER}/debits`;
  const lat = { hot: [], cold: [] };
  const count = { hot: { ok: 0, non2xx: 0 }, cold: { ok: 0, non2xx: 0 } };
  let lastWasHot = false;
  const per = urls.map(
    (_, i) => Math.floor(connections / urls.length) + (i < connections % urls.length ? 1 : 0),
  );
  const t0 = Date.now();
  const instances = urls.map((url, i) => {
    const instance = autocannon({
      url,
      connections: per[i],
      pipelining: 1,
      duration: seconds,
      timeout: 10,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      requests: [
        {
          method: 'POST',
          body: JSON.stringify({ amount: DEBIT_AMOUNT }),
          setupRequest: (req, context) => {
            const hot = hotShare > 0 && Math.random() < hotShare;
            context.hot = hot;
            return { ...req, path: hot ? hotPath : paths[(Math.random() * n) | 0] };
          },
          // called for each response, just before the instance emits 'response' for it
          onResponse: (_status, _body, context) => {
            lastWasHot = context.hot === true;
          },
        },
      ],
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      const kind = lastWasHot ? 'hot' : 'cold';
      if (status >= 200 && status < 300) {
        count[kind].ok += 1;
        lat[kind].push(ms);
      } else count[kind].non2xx += 1;
    });
    return instance;
  });
  const results = await Promise.all(instances);
  const wall = (Date.now() - t0) / 1000;
  const sum = (f) => results.reduce((s, r) => s + f(r), 0);
  const duration = Math.max(...results.map((r) => r.duration));
  const ok2xx = sum((r) => r['2xx']);
  return {
    connections: connections,
    durationSec: duration,
    wallSec: wall,
    requests: sum((r) => r.requests.total),
    ok2xx,
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    debitsPerSec: ok2xx / duration,
    reqPerSecMeanSum: sum((r) => r.requests.mean),
    latencyMs: percentiles([...lat.hot, ...lat.cold]),
    hot: { ...count.hot, latencyMs: percentiles(lat.hot), perSec: count.hot.ok / duration },
    cold: { ...count.cold, latencyMs: percentiles(lat.cold), perSec: count.cold.ok / duration },
    perInstance: results.map((r, i) => ({
      url: urls[i],
      connections: per[i],
      reqPerSecMean: r.requests.mean,
      ok2xx: r['2xx'],
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      autocannonLatencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// server-side counters: SQL round trips (pg-query-counter.mjs) and /metrics

async function querySnapshot(server) {
  const want = ++server.querySeq;
  server.bd.child.kill('SIGUSR2');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (existsSync(server.queryFile)) {
      try {
        const snap = JSON.parse(readFileSync(server.queryFile, 'utf8'));
        if (snap.seq >= want) return snap;
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${server.bd.name} did not write its query counts`);
}

const snapshotAll = (servers) => Promise.all(servers.map(querySnapshot));

/** Queries and lock holds between two sets of snapshots, summed over the servers. */
function queryDelta(before, after) {
  const queries = new Map();
  const hold = (kind) => {
    const bounds = after[0].lockHold.bounds.map(Number);
    const acc = { n: 0, ms: 0, max: 0, buckets: bounds.map(() => 0) };
    after.forEach((a, i) => {
      const b = before[i].lockHold[kind];
      const x = a.lockHold[kind];
      acc.n += x.n - b.n;
      acc.ms += x.ms - b.ms;
      acc.max = Math.max(acc.max, x.max); // max since start (a good enough bound)
      x.buckets.forEach((c, j) => {
        acc.buckets[j] += c - b.buckets[j];
      });
    });
    const quantile = (q) => {
      let cum = 0;
      for (let j = 0; j < bounds.length; j++) {
        cum += acc.buckets[j];
        if (acc.n > 0 && cum >= q * acc.n) return bounds[j];
      }
      return null;
    };
    return {
      n: acc.n,
      meanMs: acc.n ? acc.ms / acc.n : null,
      p50UpperBoundMs: quantile(0.5),
      p99UpperBoundMs: quantile(0.99),
      maxSinceStartMs: acc.max,
    };
  };
  after.forEach((a, i) => {
    for (const [sqlText, v] of Object.entries(a.queries)) {
      const b = before[i].queries[sqlText] ?? { n: 0, ms: 0 };
      const q = queries.get(sqlText) ?? { n: 0, ms: 0 };
      q.n += v.n - b.n;
      q.ms += v.ms - b.ms;
      queries.set(sqlText, q);
    }
  });
  const rows = [...queries]
    .filter(([, q]) => q.n > 0)
    .map(([sqlText, q]) => ({ sql: sqlText, n: q.n, meanMs: q.ms / q.n }))
    .sort((x, y) => y.n - x.n);
  return {
    total: rows.reduce((s, r) => s + r.n, 0),
    totalWaitMs: rows.reduce((s, r) => s + r.n * r.meanMs, 0),
    statements: rows,
    lockHold: { hot: hold('hot'), other: hold('other') },
  };
}

async function scrapeAll(servers) {
  return Promise.all(
    servers.map(async (s) => {
      const r = await request(s.url, 'GET', '/metrics');
      if (r.status !== 200) throw new Error(`GET /metrics → ${r.status}`);
      return parseHistogram(r.text, 'burndown_http_request_duration_seconds', `route="${DEBIT_ROUTE}"`);
    }),
  );
}

function serverSideMeanMs(before, after) {
  let count = 0;
  let sum = 0;
  after.forEach((a, i) => {
    const d = histogramDelta(before[i], a);
    count += d.count;
    sum += d.sum;
  });
  return count ? (sum / count) * 1000 : null;
}

/** Short label for a SQL statement in the round-trip table. */
const shortSql = (text) => (text.length > 78 ? `${text.slice(0, 75)}…` : text);

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const startedAt = new Date();
  const mach = machine();
  // dist/ is what the servers load at start; someone may rebuild it during the run
  const codeAtStart = provenance();
  const suffix = randomBytes(4).toString('hex');
  const benchDb = `bd_bench_${suffix}`;
  const pgbenchDb = `bd_pgbench_${suffix}`;
  const ctx = { serverPids: new Set(), pgbenchPids: new Set(), dbs: new Set([benchDb, pgbenchDb]) };
  const tmp = mkdtempSync(join(os.tmpdir(), 'burndown-bench-pg-'));
  const profileDir = join(here, 'results', 'profile', 'postgres');
  const children = [];
  const created = new Set();
  let benchDbCreated = false;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    agent.destroy();
    await Promise.allSettled(children.map((c) => c.stop()));
    for (const db of created) {
      if (db === benchDb && KEEP_DB) continue;
      await dropDatabase(db).catch((e) => log(`  could not drop ${db}: ${e.message}`));
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      log(`\n${signal}: stopping servers and dropping the databases …`);
      cleanup().finally(() => process.exit(130));
    });
  }

  log(`Burndown PostgreSQL benchmark — ${startedAt.toISOString()}`);
  log(`machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}, ${mach.platform}`);
  const pgVersion = (await sql(ADMIN_URL, 'SHOW server_version')).rows[0].server_version;
  const pgSettings = Object.fromEntries(
    (
      await sql(
        ADMIN_URL,
        `SELECT name, setting FROM pg_settings WHERE name IN
           ('synchronous_commit','fsync','shared_buffers','max_connections','wal_level','commit_delay','autovacuum')`,
      )
    ).rows.map((r) => [r.name, r.setting]),
  );
  log(
    `PostgreSQL ${pgVersion} at ${new URL(ADMIN_URL).host}: ${Object.entries(pgSettings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );
  log(
    `load: ${CONNECTIONS} connections over ${SERVERS} servers (pool ${POOL_SIZE} each), pipelining 1, ${SECONDS} s per phase`,
  );
  log('note: pgbench/autocannon, the servers and PostgreSQL all share this machine’s CPUs.');
  log('note: event ingest on PostgreSQL is measured by bench/events.mjs (BENCH_POSTGRES=1).');
  if (PROFILE) log('PROFILE MODE: server 1 runs under --cpu-prof; its figures are slowed by the profiler.');
  log();

  try {
    // 1. the reference: pgbench TPC-B on a fresh database
    log(
      `[1/5] pgbench reference (TPC-B, scale ${PGBENCH_SCALE}, ${PGBENCH_CLIENTS} clients) in ${pgbenchDb}`,
    );
    await createDatabase(pgbenchDb);
    created.add(pgbenchDb);
    const ti = Date.now();
    const init = await pgbench(['-i', '-s', String(PGBENCH_SCALE), '-q', pgbenchDb]);
    if (init.code !== 0) throw new Error(`pgbench -i failed (exit ${init.code})\n${init.out}`);
    log(`  pgbench -i -s ${PGBENCH_SCALE}: ${fmt((Date.now() - ti) / 1000, 1)} s`);
    const pgbQuiet = await waitForQuiet('pgbench', () => oursCpuSeconds(ctx), QUIET_WAIT);
    log(`  pgbench -c ${PGBENCH_CLIENTS} -j ${PGBENCH_THREADS} -T ${SECONDS} -M prepared …`);
    const pgbWindow = startCpuWindow(ctx);
    const pgbArgs = ['-c', PGBENCH_CLIENTS, '-j', PGBENCH_THREADS, '-T', SECONDS, '-M', 'prepared'].map(
      String,
    );
    const run = await pgbench([...pgbArgs, pgbenchDb], (child) => ctx.pgbenchPids.add(String(child.pid)));
    const pgbCpu = pgbWindow.stop();
    if (run.code !== 0) throw new Error(`pgbench failed (exit ${run.code})\n${run.out}`);
    const grab = (re) => {
      const m = re.exec(run.out);
      return m ? Number(m[1]) : null;
    };
    const pgb = {
      command: `pgbench ${pgbArgs.join(' ')}`,
      scale: PGBENCH_SCALE,
      clients: PGBENCH_CLIENTS,
      threads: PGBENCH_THREADS,
      durationSec: SECONDS,
      tps: grab(/tps = ([\d.]+) \(without initial connection time\)/),
      latencyAvgMs: grab(/latency average = ([\d.]+) ms/),
      transactions: grab(/number of transactions actually processed: (\d+)/),
      failed: grab(/number of failed transactions: (\d+)/) ?? 0,
      cpu: { ...pgbCpu, quietBeforeStart: pgbQuiet.quiet },
    };
    if (pgb.tps === null) throw new Error(`could not parse pgbench output\n${run.out}`);
    log(`  tps = ${fmt(pgb.tps)}, latency average ${fmt(pgb.latencyAvgMs, 2)} ms, ${fmt(pgb.failed)} failed`);
    await dropDatabase(pgbenchDb);
    created.delete(pgbenchDb);
    log(`  dropped ${pgbenchDb}`);
    log();

    // 2. Burndown: SERVERS processes on one fresh database, seeded over HTTP
    log(`[2/5] Burndown: ${SERVERS} servers on ${dbUrl(benchDb)} (BURNDOWN_PG_POOL_SIZE=${POOL_SIZE})`);
    await createDatabase(benchDb);
    created.add(benchDb);
    benchDbCreated = true;
    if (PROFILE) {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
    }
    const servers = [];
    for (let i = 0; i < SERVERS; i++) {
      const queryFile = join(tmp, `queries-${i + 1}.json`);
      const args = ['--import', counterModule];
      if (PROFILE && i === 0) args.push('--cpu-prof', '--cpu-prof-dir', profileDir);
      const spawnedAt = Date.now();
      const bd = startChild(`burndown-${i + 1}`, [...args, cli, 'serve'], {
        PORT: '0',
        BURNDOWN_API_KEY: API_KEY,
        BURNDOWN_DATABASE_URL: dbUrl(benchDb),
        BURNDOWN_PG_POOL_SIZE: String(POOL_SIZE),
        BURNDOWN_LOG_LEVEL: 'warn',
        BENCH_QUERY_COUNT_FILE: queryFile,
        BENCH_HOT_CUSTOMER: HOT_CUSTOMER,
      });
      children.push(bd);
      ctx.serverPids.add(String(bd.child.pid));
      // one after the other: the first applies the migrations
      servers.push({ bd, url: await bd.url, queryFile, querySeq: 0, spawnedAt });
    }
    const urls = servers.map((s) => s.url);
    log(`  listening: ${urls.join(', ')}`);
    const t0 = Date.now();
    const ids = Array.from({ length: CUSTOMERS }, (_, i) => customerId(i));
    const seeded = await seedCustomers({
      request,
      baseUrls: urls,
      ids,
      grants: GRANTS,
      grantAmount: GRANT_AMOUNT,
      concurrency: SEED_CONCURRENCY,
    });
    // the hot customer: the same kind of grants, the first one huge
    const hot = await request(urls[0], 'POST', '/v1/customers', { id: HOT_CUSTOMER });
    if (hot.status !== 201) throw new Error(`hot customer → ${hot.status} ${hot.text}`);
    for (let g = 0; g < GRANTS; g++) {
      const body = grantBody(CUSTOMERS, g, Date.now(), g === 0 ? HOT_GRANT_AMOUNT : GRANT_AMOUNT);
      const r = await request(urls[0], 'POST', `/v1/customers/${HOT_CUSTOMER}/grants`, body);
      if (r.status !== 201) throw new Error(`hot grant → ${r.status} ${r.text}`);
    }
    const seedSec = (Date.now() - t0) / 1000;
    const seedWrites = seeded.customers.length + seeded.grants + 1 + GRANTS;
    log(
      `  seeded ${fmt(seeded.customers.length)} customers × ${GRANTS} grants = ${fmt(seeded.grants)} grants ` +
        `(+ hot customer "${HOT_CUSTOMER}" with a ${HOT_GRANT_AMOUNT}-credit grant) over HTTP in ${fmt(seedSec, 1)} s ` +
        `(${fmt(seedWrites / seedSec)} writes/s, ${SEED_CONCURRENCY} concurrent customers)`,
    );
    log();

    // 3. load
    log('[3/5] load: POST /v1/customers/{id}/debits {"amount":"1.5"}');
    log(`  warm-up ${WARMUP} s (uniform) …`);
    const warm = await runLoad({
      urls,
      connections: CONNECTIONS,
      seconds: WARMUP,
      hotShare: 0,
      customers: ids,
    });

    const measurePhase = async (label, hotShare, seconds, connections, phaseUrls) => {
      const quiet = await waitForQuiet(label, () => oursCpuSeconds(ctx), QUIET_WAIT);
      const q0 = await snapshotAll(servers);
      const m0 = await scrapeAll(servers);
      log(
        `  ${label}: ${seconds} s, ${connections} connection(s)${hotShare ? `, ${hotShare * 100} % on "${HOT_CUSTOMER}"` : ''} …`,
      );
      const windowStart = Date.now();
      const cpuWindow = startCpuWindow(ctx);
      const load = await runLoad({ urls: phaseUrls, connections, seconds, hotShare, customers: ids });
      const cpu = cpuWindow.stop();
      const windowEnd = Date.now();
      const q1 = await snapshotAll(servers);
      const m1 = await scrapeAll(servers);
      const queries = queryDelta(q0, q1);
      return {
        ...load,
        hotShareRequested: hotShare,
        cpu: { ...cpu, quietBeforeStart: quiet.quiet },
        serverSideDebitMeanMs: serverSideMeanMs(m0, m1),
        queries: {
          ...queries,
          perDebit: queries.total / Math.max(1, load.ok2xx),
          transactionsPerDebit:
            (queries.statements.find((s) => s.sql === 'BEGIN')?.n ?? 0) / Math.max(1, load.ok2xx),
        },
        windowStart,
        windowEnd,
      };
    };

    const uniform = await measurePhase('uniform', 0, SECONDS, CONNECTIONS, urls);
    log(
      `    ${fmt(uniform.debitsPerSec)} debits/s, p50 ${fmt(uniform.latencyMs.p50, 1)} ms, p99 ${fmt(uniform.latencyMs.p99, 1)} ms, ` +
        `${uniform.non2xx} non-2xx, ${fmt(uniform.queries.perDebit, 2)} SQL round trips per debit`,
    );
    const probe = await measurePhase('probe (hot customer alone)', 1, PROBE_SECONDS, 1, [urls[0]]);
    log(
      `    ${fmt(probe.debitsPerSec)} debits/s, mean ${fmt(probe.latencyMs.mean, 2)} ms, lock held ${fmt(probe.queries.lockHold.hot.meanMs, 2)} ms per debit`,
    );
    const hotPhase = await measurePhase('hot', HOT_SHARE, SECONDS, CONNECTIONS, urls);
    log(
      `    ${fmt(hotPhase.debitsPerSec)} debits/s (hot ${fmt(hotPhase.hot.perSec)}/s, others ${fmt(hotPhase.cold.perSec)}/s), ` +
        `p50 ${fmt(hotPhase.latencyMs.p50, 1)} ms, p99 ${fmt(hotPhase.latencyMs.p99, 1)} ms, ${hotPhase.non2xx} non-2xx`,
    );
    for (const s of servers) {
      const exit = await s.bd.stop();
      if (exit.code !== 0)
        log(`  warning: ${s.bd.name} exited with code ${exit.code} signal ${exit.signal}\n${s.bd.stderr()}`);
      else if (s.bd.stderr().trim()) log(`  ${s.bd.name} stderr:\n${s.bd.stderr().trim()}`);
    }
    log();

    // 4. the ledger after the run
    log('[4/5] ledger verification');
    const reconcile = await runReconcile(dbUrl(benchDb));
    log(`  $ burndown reconcile  (exit ${reconcile.exitCode})`);
    for (const line of `${reconcile.stdout}${reconcile.stderr}`.trim().split('\n')) log(`  ${line}`);
    const m = reconcile.match;
    const counts = (
      await sql(
        dbUrl(benchDb),
        `SELECT (SELECT count(*) FROM debits) AS debits,
                (SELECT count(*) FROM debits WHERE customer_id = $1) AS hot_debits,
                (SELECT count(*) FROM entries) AS entries`,
        [HOT_CUSTOMER],
      )
    ).rows[0];
    const debitRows = Number(counts.debits);
    const hotRows = Number(counts.hot_debits);
    const acknowledged = warm.ok2xx + uniform.ok2xx + probe.ok2xx + hotPhase.ok2xx;
    const hotAcknowledged = probe.hot.ok + hotPhase.hot.ok;
    // autocannon stops counting at the deadline: each connection of each run may have had one
    // request in flight that was committed but not counted
    const slack = warm.connections + uniform.connections + probe.connections + hotPhase.connections;
    const hotSlack = probe.connections + hotPhase.connections;
    const debitsConsistent = debitRows >= acknowledged && debitRows <= acknowledged + slack;
    const hotConsistent = hotRows >= hotAcknowledged && hotRows <= hotAcknowledged + hotSlack;
    log(
      `  debits stored: ${fmt(debitRows)}; 2xx counted (warm-up + uniform + probe + hot): ${fmt(acknowledged)}; ` +
        `uncounted in-flight at the deadlines: ${fmt(debitRows - acknowledged)} (allowed 0…${slack}) → ${debitsConsistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    log(
      `  hot customer: ${fmt(hotRows)} debits stored, ${fmt(hotAcknowledged)} acknowledged → ${hotConsistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    log();

    // 5. report
    log('[5/5] results');
    const ratio = uniform.debitsPerSec / pgb.tps;
    const hotRatio = hotPhase.debitsPerSec / pgb.tps;
    const hotShareMeasured = hotPhase.hot.ok / Math.max(1, hotPhase.ok2xx);
    const ms = (x) => fmt(x, 1);
    log(
      table([
        [
          '',
          'pgbench TPC-B',
          'Burndown uniform',
          `Burndown hot (${fmt(HOT_SHARE * 100)} % on 1)`,
          'target',
          'met',
        ],
        [
          'transactions or debits /s',
          fmt(pgb.tps),
          fmt(uniform.debitsPerSec),
          fmt(hotPhase.debitsPerSec),
          '',
          '',
        ],
        [
          '÷ pgbench TPC-B tps',
          '100 %',
          `${fmt(ratio * 100, 1)} %`,
          `${fmt(hotRatio * 100, 1)} %`,
          '≥ 80 % (uniform)',
          ratio >= TARGET_RATIO ? 'yes' : 'NO',
        ],
        [
          'latency mean (ms)',
          fmt(pgb.latencyAvgMs, 2),
          ms(uniform.latencyMs.mean),
          ms(hotPhase.latencyMs.mean),
          '',
          '',
        ],
        ['latency p50 (ms)', '-', ms(uniform.latencyMs.p50), ms(hotPhase.latencyMs.p50), '', ''],
        ['latency p99 (ms)', '-', ms(uniform.latencyMs.p99), ms(hotPhase.latencyMs.p99), '', ''],
        ['latency max (ms)', '-', ms(uniform.latencyMs.max), ms(hotPhase.latencyMs.max), '', ''],
        ['2xx in the window', fmt(pgb.transactions), fmt(uniform.ok2xx), fmt(hotPhase.ok2xx), '', ''],
        [
          'non-2xx / errors / timeouts',
          `${pgb.failed} failed`,
          `${uniform.non2xx} / ${uniform.errors} / ${uniform.timeouts}`,
          `${hotPhase.non2xx} / ${hotPhase.errors} / ${hotPhase.timeouts}`,
          '0',
          pgb.failed +
            uniform.non2xx +
            uniform.errors +
            uniform.timeouts +
            hotPhase.non2xx +
            hotPhase.errors +
            hotPhase.timeouts ===
          0
            ? 'yes'
            : 'NO',
        ],
        ['hot customer’s share of debits', '', '', `${fmt(hotShareMeasured * 100, 1)} %`, '', ''],
        [
          'SQL round trips per debit',
          '',
          fmt(uniform.queries.perDebit, 2),
          fmt(hotPhase.queries.perDebit, 2),
          '',
          '',
        ],
        [
          'Burndown servers CPU (cores)',
          '-',
          fmt(uniform.cpu.serversCores, 2),
          fmt(hotPhase.cpu.serversCores, 2),
          '',
          '',
        ],
        [
          'PostgreSQL CPU (cores)',
          fmt(pgb.cpu.postgresCores, 2),
          fmt(uniform.cpu.postgresCores, 2),
          fmt(hotPhase.cpu.postgresCores, 2),
          '',
          '',
        ],
        [
          'load generator CPU (cores)',
          fmt(pgb.cpu.pgbenchCores, 2),
          fmt(uniform.cpu.loadGeneratorCores, 2),
          fmt(hotPhase.cpu.loadGeneratorCores, 2),
          '',
          '',
        ],
        [
          'other processes CPU (cores)',
          fmt(pgb.cpu.otherProcessesCores, 2),
          fmt(uniform.cpu.otherProcessesCores, 2),
          fmt(hotPhase.cpu.otherProcessesCores, 2),
          `< ${QUIET_CORES}`,
          Math.max(
            pgb.cpu.otherProcessesCores,
            uniform.cpu.otherProcessesCores,
            hotPhase.cpu.otherProcessesCores,
          ) < QUIET_CORES
            ? 'yes'
            : 'NO',
        ],
        [
          'context switches per tx/debit (machine)',
          fmt(pgb.cpu.machineContextSwitches / Math.max(1, pgb.transactions), 1),
          fmt(uniform.cpu.machineContextSwitches / Math.max(1, uniform.ok2xx), 1),
          fmt(hotPhase.cpu.machineContextSwitches / Math.max(1, hotPhase.ok2xx), 1),
          '',
          '',
        ],
        [
          '  of which servers’ event loops, involuntary',
          '-',
          fmt(uniform.cpu.serverMainThreadContextSwitches.involuntary / Math.max(1, uniform.ok2xx), 1),
          fmt(hotPhase.cpu.serverMainThreadContextSwitches.involuntary / Math.max(1, hotPhase.ok2xx), 1),
          '',
          '',
        ],
        [
          'machine busy (cores)',
          fmt(pgb.cpu.machineBusyCores, 2),
          fmt(uniform.cpu.machineBusyCores, 2),
          fmt(hotPhase.cpu.machineBusyCores, 2),
          `of ${mach.nproc}`,
          '',
        ],
      ]),
    );
    const windows = [
      ['pgbench', pgb.cpu],
      ['uniform', uniform.cpu],
      ['probe', probe.cpu],
      ['hot', hotPhase.cpu],
    ];
    const worstOther = Math.max(...windows.map(([, c]) => c.otherProcessesCores));
    const noisy = worstOther >= QUIET_CORES;
    if (noisy) {
      for (const [label, c] of windows) {
        for (const o of c.topOtherProcesses)
          log(`  during ${label}: ${fmt(o.cores, 2)} cores  pid ${o.pid}  ${o.cmd}`);
      }
      log(
        `WARNING: other processes used up to ${fmt(worstOther, 2)} of ${mach.nproc} cores during a measured window; ` +
          'these figures are contaminated.',
      );
    }
    log();

    // the hot customer: one lock, so its debits are serialised
    const holdHot = hotPhase.queries.lockHold.hot;
    const holdProbe = probe.queries.lockHold.hot;
    const ceilingUnderLoad = holdHot.meanMs ? 1000 / holdHot.meanMs : null;
    const ceilingUnloaded = holdProbe.meanMs ? 1000 / holdProbe.meanMs : null;
    log('hot phase, split by customer:');
    log(
      table([
        ['', 'debits/s', 'p50 (ms)', 'p99 (ms)', 'lock held per debit (ms)', 'ceiling 1/hold (/s)'],
        [
          `hot customer "${HOT_CUSTOMER}"`,
          fmt(hotPhase.hot.perSec),
          ms(hotPhase.hot.latencyMs.p50),
          ms(hotPhase.hot.latencyMs.p99),
          `${fmt(holdHot.meanMs, 2)} (p99 ≤ ${holdHot.p99UpperBoundMs ?? '-'})`,
          fmt(ceilingUnderLoad),
        ],
        [
          `the other ${fmt(CUSTOMERS)}`,
          fmt(hotPhase.cold.perSec),
          ms(hotPhase.cold.latencyMs.p50),
          ms(hotPhase.cold.latencyMs.p99),
          fmt(hotPhase.queries.lockHold.other.meanMs, 2),
          '',
        ],
        [
          'hot customer alone (probe, 1 conn.)',
          fmt(probe.debitsPerSec),
          ms(probe.latencyMs.p50),
          ms(probe.latencyMs.p99),
          fmt(holdProbe.meanMs, 2),
          fmt(ceilingUnloaded),
        ],
      ]),
    );
    log(
      `  Every debit of "${HOT_CUSTOMER}" takes the same pg_advisory_xact_lock and holds it from the lock to COMMIT, ` +
        `so its debits run one at a time across both servers: at most 1 / (lock hold) ≈ ${fmt(ceilingUnderLoad)}/s ` +
        `under this load (${fmt(ceilingUnloaded)}/s unloaded). Measured: ${fmt(hotPhase.hot.perSec)}/s. ` +
        `Because ${fmt(HOT_SHARE * 100)} % of requests go to it and each connection waits for its answer, ` +
        `the connections pile up on that lock and the total is bounded by about ` +
        `${fmt(ceilingUnderLoad && ceilingUnderLoad / HOT_SHARE)}/s.`,
    );
    log();

    log(`SQL round trips per debit (uniform phase, both servers; one pg query() = one round trip):`);
    log(
      table([
        ['statement', 'per debit', 'mean wait (ms)'],
        ...uniform.queries.statements
          .filter((s) => s.n / Math.max(1, uniform.ok2xx) >= 0.005)
          .map((s) => [shortSql(s.sql), fmt(s.n / Math.max(1, uniform.ok2xx), 2), fmt(s.meanMs, 3)]),
        [
          'total',
          fmt(uniform.queries.perDebit, 2),
          `${fmt(uniform.queries.totalWaitMs / Math.max(1, uniform.ok2xx), 2)} per debit`,
        ],
      ]),
    );
    log(
      `  lock held per debit (lock → COMMIT answered, incl. the server's own CPU between queries): mean ` +
        `${fmt(uniform.queries.lockHold.other.meanMs, 2)} ms, p99 ≤ ${uniform.queries.lockHold.other.p99UpperBoundMs} ms; ` +
        `server-side handling (Fastify): ${fmt(uniform.serverSideDebitMeanMs, 2)} ms; client-side mean ${fmt(uniform.latencyMs.mean, 2)} ms`,
    );
    log();
    log(
      `reconcile: ${m ? `${m[1]} entries, ${m[2]} accounts, ${m[3]} grants: ${m[4]}` : 'unparsed'} (exit ${reconcile.exitCode})`,
    );
    log(
      `verdict: Burndown uniform ${fmt(uniform.debitsPerSec)} debits/s = ${fmt(ratio * 100, 1)} % of pgbench TPC-B ` +
        `${fmt(pgb.tps)} tps (target ≥ 80 %: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})`,
    );

    let profile = null;
    if (PROFILE) {
      const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
      const newest = files
        .map((f) => join(profileDir, f))
        .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
      if (newest) {
        const onlyAfterMs = uniform.windowStart - servers[0].spawnedAt;
        const untilMs = uniform.windowEnd - servers[0].spawnedAt;
        profile = summariseProfile(JSON.parse(readFileSync(newest, 'utf8')), {
          top: 30,
          onlyAfterMs,
          untilMs,
        });
        profile.file = newest;
        log();
        log(
          `CPU profile of ${servers[0].bd.name}, uniform window only (${onlyAfterMs}–${untilMs} ms after spawn): ${newest}`,
        );
        log(profile.text);
      } else log('no .cpuprofile was written');
    }

    const strip = ({ windowStart, windowEnd, ...rest }) => rest;
    const results = {
      benchmark: 'postgres',
      date: startedAt.toISOString(),
      machine: mach,
      code: { ...codeAtStart, distRebuiltDuringRun: provenance().distBuiltAt !== codeAtStart.distBuiltAt },
      postgres: { version: pgVersion, url: ADMIN_URL.replace(/:[^:@/]*@/, ':***@'), settings: pgSettings },
      contaminatedByOtherProcesses: noisy,
      sharedMachine:
        'pgbench or autocannon, the Burndown servers and PostgreSQL all run on this machine; pgbench runs before Burndown, never at the same time',
      profiled: PROFILE,
      eventIngest: 'measured by bench/events.mjs with BENCH_POSTGRES=1',
      config: {
        servers: SERVERS,
        pgPoolSizePerServer: POOL_SIZE,
        connections: CONNECTIONS,
        pipelining: 1,
        keepAlive: true,
        warmupSec: WARMUP,
        durationSec: SECONDS,
        probeSec: PROBE_SECONDS,
        customers: CUSTOMERS,
        grantsPerCustomer: GRANTS,
        hotCustomer: HOT_CUSTOMER,
        hotShare: HOT_SHARE,
        debitAmount: DEBIT_AMOUNT,
        database: `fresh database ${benchDb}, dropped afterwards${KEEP_DB ? ' (kept: BENCH_KEEP_DB=1)' : ''}`,
        queryCounter: 'bench/pg-query-counter.mjs preloaded with --import into every server',
      },
      pgbench: pgb,
      seeding: {
        customers: seeded.customers.length,
        grants: seeded.grants,
        seconds: seedSec,
        writesPerSec: seedWrites / seedSec,
      },
      warmup: { ok2xx: warm.ok2xx, non2xx: warm.non2xx, errors: warm.errors },
      uniform: strip(uniform),
      probe: strip(probe),
      hot: {
        ...strip(hotPhase),
        hotShareOfDebits: hotShareMeasured,
        ceilingFromLockHoldPerSec: ceilingUnderLoad,
      },
      ratios: { uniformToTpcb: ratio, hotPhaseToTpcb: hotRatio },
      target: { uniformToTpcbMin: TARGET_RATIO, met: ratio >= TARGET_RATIO },
      ledger: {
        reconcileExitCode: reconcile.exitCode,
        reconcileOutput: reconcile.stdout.trim(),
        ok: reconcile.exitCode === 0 && m?.[4] === 'OK',
        entries: m ? Number(m[1]) : null,
        accounts: m ? Number(m[2]) : null,
        grants: m ? Number(m[3]) : null,
        debitRows,
        entryRows: Number(counts.entries),
        acknowledgedDebits: acknowledged,
        uncountedInFlight: debitRows - acknowledged,
        debitsConsistentWithAcknowledged: debitsConsistent,
        hotDebitRows: hotRows,
        hotAcknowledged,
        hotConsistent,
      },
      ...(profile
        ? {
            profile: {
              file: profile.file,
              window: 'uniform phase',
              totalMs: profile.totalMs,
              busyMs: profile.busyMs,
              byArea: profile.byArea,
              top: profile.top,
              topInclusive: profile.topInclusive,
            },
          }
        : {}),
    };
    if (results.code.distRebuiltDuringRun)
      log(
        'note: dist/ was rebuilt during the run (by someone else?); the servers ran the build of the start.',
      );
    const out = join(here, 'results', PROFILE ? 'latest-postgres-profile.json' : 'latest-postgres.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    log();
    log(`wrote ${out}`);
    if (!results.ledger.ok || !debitsConsistent || !hotConsistent) process.exitCode = 1;
  } finally {
    await cleanup();
    if (KEEP_DB && benchDbCreated) log(`database kept: ${dbUrl(benchDb)}`);
    else if (benchDbCreated) log(`dropped ${benchDb}`);
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error?.stack ?? error}\n`);
  process.exit(1);
});
