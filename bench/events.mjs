// Event ingest benchmark: POST /v1/events (store + dedup + rate + burn, durably) on SQLite, next
// to the raw better-sqlite3 insert rate of the same event rows, then a memory soak, a ledger
// check, and optionally the same ingest on PostgreSQL with two server processes.
//
//   npm run bench:events          (builds, then runs this file)
//   node bench/events.mjs         (uses the existing dist/)
//
// Environment knobs (all optional):
//   BENCH_SECONDS=10          measured ingest window (and the ceiling's duration)
//   BENCH_WARMUP_SECONDS=2    ingest warm-up before the measured window (its events are kept and checked)
//   BENCH_CUSTOMERS=10000     customers seeded over HTTP, one grant each
//   BENCH_BATCH=1000          events per POST /v1/events
//   BENCH_CLIENTS=6           batches in flight at once (closed loop: each client sends its next
//                             batch when the previous one is answered)
//   BENCH_SOAK_EVENTS=…       events the memory soak ingests (see SOAK_DEFAULT below); 0 = no soak
//   BENCH_QUICK=1             short run: soak 300,000 events unless BENCH_SOAK_EVENTS is set
//   BENCH_QUIET_WAIT_SECONDS=5   how long to wait for other processes to leave the CPU before a window
//   BENCH_PROFILE=1           Burndown under `node --cpu-prof`; prints the hotspots of the measured
//                             window; no soak, no PostgreSQL (profiled figures are slowed: do not quote)
//   BENCH_SQL_TIMING=1        time every SQLite statement of the server by SQL text (preloads
//                             bench/sqlite-statement-timer.mjs) and print the split of the measured window
//   BENCH_POSTGRES=1          also ingest on PostgreSQL: BENCH_PG_SERVERS (2) servers on a fresh database
//                             (dropped afterwards), BENCH_PG_URL admin connection, BENCH_PG_POOL_SIZE (16)
//   BENCH_KEEP_DB=1           keep the temporary SQLite database (and the PostgreSQL one)
//
// Writes bench/results/latest-events.json (latest-events-profile.json with BENCH_PROFILE=1,
// latest-events-sql-timing.json with BENCH_SQL_TIMING=1).
import { execFile } from 'node:child_process';
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
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { summariseProfile } from './cpuprofile-top.mjs';
import { batchBody, customerIds, EVENT_TYPE } from './event-gen.mjs';
import {
  API_KEY,
  cli,
  cpuSecondsOf,
  createRequester,
  fmt,
  here,
  histogramDelta,
  log,
  machine,
  num,
  parseHistogram,
  processCpuSnapshot,
  provenance,
  QUIET_CORES,
  root,
  runReconcile,
  seedCustomers,
  selfCpuSeconds,
  startChild,
  systemBusySeconds,
  table,
  topOthers,
  waitForQuiet,
} from './lib.mjs';

const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const CUSTOMERS = num('BENCH_CUSTOMERS', 10_000);
const BATCH = num('BENCH_BATCH', 1000);
const CLIENTS = num('BENCH_CLIENTS', 6);
const QUICK = process.env.BENCH_QUICK === '1';
const PROFILE = process.env.BENCH_PROFILE === '1';
const POSTGRES = process.env.BENCH_POSTGRES === '1' && !PROFILE;
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const SQL_TIMING = process.env.BENCH_SQL_TIMING === '1';
const QUIET_WAIT = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 5);
// 2,000,000 events take longer than the ~4 minutes a run may spend on the soak on the 2-vCPU VM
// this was written on (see bench/README.md, "Event ingest"): the default soak is smaller.
const SOAK_FULL = 2_000_000;
const SOAK_DEFAULT = 1_000_000;
const SOAK_EVENTS = PROFILE
  ? 0
  : process.env.BENCH_SOAK_EVENTS === '0'
    ? 0
    : num('BENCH_SOAK_EVENTS', QUICK ? 300_000 : SOAK_DEFAULT);
const PG_SERVERS = num('BENCH_PG_SERVERS', 2);
const PG_POOL_SIZE = num('BENCH_PG_POOL_SIZE', 16);
const PG_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const GRANT_AMOUNT = '1000000000';
const METER = {
  id: 'bench-tokens',
  event_type: EVENT_TYPE,
  aggregation: 'sum',
  value_property: '$.tokens',
  group_by: { model: '$.model' },
};
const RATE = {
  id: 'bench-tokens-all',
  meter_id: METER.id,
  filter: {},
  credit_type: 'credits',
  credits_per_unit: '0.001',
};
const TARGETS = { sqliteEventsPerSec: 50_000, postgresEventsPerSec: 20_000 };
const SOAK_FLAT_GROWTH = 0.2; // RSS may grow < 20 % from the 25 % point to the end
const EVENTS_ROUTE = '/v1/events';
const memProbe = join(here, 'mem-probe.mjs');
const statementTimer = join(here, 'sqlite-statement-timer.mjs');

const { agent: seedAgent, request } = createRequester(API_KEY, { maxSockets: 64 });

// ---------------------------------------------------------------------------------------------
// statistics and CPU windows

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

/**
 * Who used the CPU during a window: `ours()` (CPU seconds of everything under test other than
 * this process), this process (the load generator) and everything else on the machine.
 */
function startCpuWindow(ours, excludePids = () => []) {
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
        loadGeneratorCores: self / wall,
        otherProcessesCores: other / wall,
        machineBusyCores: total / wall,
        topOtherProcesses: topOthers(procs0, processCpuSnapshot(), wall, exclude),
      };
    },
  };
}

const vmRssKiB = (pid) => {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return Number.NaN;
  }
};
const mib = (kib) => kib / 1024;

// ---------------------------------------------------------------------------------------------
// load: closed-loop clients posting batches of events

function postBatch(agent, baseUrl, body) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(
      new URL(EVENTS_ROUTE, baseUrl),
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${API_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode, text, ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
        );
        res.on('error', (error) => resolve({ status: 0, text: String(error), ms: 0 }));
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 0, text: String(error), ms: 0 }));
    req.end(body);
  });
}

/**
 * Runs `clients` closed loops. Client `k` posts to `urls[k % urls.length]`. A client sends no new
 * batch once `shouldStop(sentEvents)` is true; the phase ends when every batch in flight has been
 * answered, so every stored event of the phase is counted. `onBatch` sees the totals after each
 * answer.
 */
async function runIngest({ urls, clients, shouldStop, customers, tag, phase, onBatch = () => {} }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const stats = {
    phase,
    batches: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    rejectedCodes: {},
    non202: 0,
    errors: 0,
    firstErrors: [],
    latencyMs: [],
    sentEvents: 0,
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async (_, k) => {
      const url = urls[k % urls.length];
      let seq = 0;
      while (!shouldStop(stats.sentEvents)) {
        const body = batchBody(customers, tag, `${phase}${k}`, seq, BATCH, new Date().toISOString());
        seq += BATCH;
        stats.sentEvents += BATCH;
        const r = await postBatch(agent, url, body);
        stats.batches += 1;
        if (r.status === 202) {
          const answer = JSON.parse(r.text);
          stats.accepted += answer.accepted;
          stats.duplicates += answer.duplicates;
          stats.rejected += answer.rejected.length;
          for (const x of answer.rejected)
            stats.rejectedCodes[x.error.code] = (stats.rejectedCodes[x.error.code] ?? 0) + 1;
          stats.latencyMs.push(r.ms);
        } else {
          if (r.status === 0) stats.errors += 1;
          else stats.non202 += 1;
          if (stats.firstErrors.length < 3) stats.firstErrors.push(`${r.status} ${r.text.slice(0, 200)}`);
          // do not spin on a failing server
          await new Promise((res) => setTimeout(res, 100));
        }
        onBatch(stats);
      }
    }),
  );
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  agent.destroy();
  const { latencyMs, ...rest } = stats;
  return {
    ...rest,
    clients,
    batchSize: BATCH,
    wallSec,
    eventsPerSec: stats.accepted / wallSec,
    batchLatencyMs: percentiles(latencyMs),
  };
}

/** A phase that runs for `seconds`: clients stop sending at the deadline. */
const timed = (seconds) => {
  const deadline = Date.now() + seconds * 1000;
  return () => Date.now() >= deadline;
};

// ---------------------------------------------------------------------------------------------
// Burndown set-up over HTTP

async function setUpBurndown(urls, customers) {
  const t0 = Date.now();
  const seeded = await seedCustomers({
    request,
    baseUrls: urls,
    ids: customers,
    grants: 1,
    grantAmount: GRANT_AMOUNT,
    concurrency: 32,
  });
  const meter = await request(urls[0], 'POST', '/v1/meters', METER);
  if (meter.status !== 201) throw new Error(`POST /v1/meters → ${meter.status} ${meter.text}`);
  const rate = await request(urls[0], 'POST', '/v1/rates', RATE);
  if (rate.status !== 201) throw new Error(`POST /v1/rates → ${rate.status} ${rate.text}`);
  return { customers: seeded.customers.length, grants: seeded.grants, seconds: (Date.now() - t0) / 1000 };
}

async function scrape(url) {
  const r = await request(url, 'GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics → ${r.status}`);
  return {
    batch: parseHistogram(r.text, 'burndown_commit_batch_size'),
    route: parseHistogram(r.text, 'burndown_http_request_duration_seconds', `route="${EVENTS_ROUTE}"`),
  };
}

/** The statement timings of the server so far (bench/sqlite-statement-timer.mjs, on SIGUSR2). */
async function signalSnapshot(child, file, want) {
  child.kill('SIGUSR2');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      const snap = JSON.parse(readFileSync(file, 'utf8'));
      if (snap.seq >= want) return snap;
    } catch {}
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the server did not write ${file}`);
}

function sqlTimingDelta(before, after, events, wallSec) {
  const rows = [];
  for (const [sql, a] of Object.entries(after.statements)) {
    const b = before.statements[sql] ?? { n: 0, ns: 0 };
    const n = a.n - b.n;
    const ns = a.ns - b.ns;
    if (n > 0)
      rows.push({
        sql,
        calls: n,
        callsPerEvent: n / events,
        usPerEvent: ns / 1e3 / events,
        meanUs: ns / 1e3 / n,
        shareOfWall: ns / 1e9 / wallSec,
      });
  }
  rows.sort((x, y) => y.usPerEvent - x.usPerEvent);
  return { totalUsPerEvent: rows.reduce((s, r) => s + r.usPerEvent, 0), statements: rows };
}

const describePhase = (s) =>
  `${fmt(s.accepted)} accepted in ${fmt(s.wallSec, 1)} s = ${fmt(s.eventsPerSec)} events/s; ` +
  `batch latency p50 ${fmt(s.batchLatencyMs.p50)} ms, p99 ${fmt(s.batchLatencyMs.p99)} ms; ` +
  `${fmt(s.duplicates)} duplicates, ${fmt(s.rejected)} rejected, ${s.non202} non-202, ${s.errors} errors`;

// ---------------------------------------------------------------------------------------------
// memory soak

/**
 * Ingests until `target` events are accepted, sampling the server's VmRSS (and, from the preloaded
 * mem-probe, its JS heap) every second.
 */
async function soak({ url, pid, customers, tag, target, memFile }) {
  const samples = [];
  let accepted = 0;
  const t0 = Date.now();
  const sample = () => {
    let heap = null;
    try {
      heap = JSON.parse(readFileSync(memFile, 'utf8'));
    } catch {}
    samples.push({
      sec: (Date.now() - t0) / 1000,
      accepted,
      rssKiB: vmRssKiB(pid),
      heapUsedMiB: heap ? heap.heapUsed / 2 ** 20 : null,
      heapTotalMiB: heap ? heap.heapTotal / 2 ** 20 : null,
      externalMiB: heap ? heap.external / 2 ** 20 : null,
      arrayBuffersMiB: heap ? heap.arrayBuffers / 2 ** 20 : null,
    });
  };
  sample();
  const timer = setInterval(sample, 1000);
  let lastLog = Date.now();
  const cpu = startCpuWindow(
    () => cpuSecondsOf(pid),
    () => [pid],
  );
  const result = await runIngest({
    urls: [url],
    clients: CLIENTS,
    // stop sending once what is accepted plus what is in flight reaches the target
    shouldStop: (sent) => sent >= target,
    customers,
    tag,
    phase: 's',
    onBatch: (s) => {
      accepted = s.accepted;
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(
          `    ${fmt(s.accepted)} / ${fmt(target)} accepted, ${fmt(s.accepted / ((Date.now() - t0) / 1000))} events/s, ` +
            `RSS ${fmt(mib(vmRssKiB(pid)))} MiB`,
        );
      }
    },
  });
  clearInterval(timer);
  accepted = result.accepted;
  sample();
  const cpuUse = cpu.stop();
  // the sample taken when the soak had accepted (at least) each share of its events
  const at = (share) => samples.find((s) => s.accepted >= share * result.accepted) ?? samples.at(-1);
  const points = Object.fromEntries(
    [
      ['start', samples[0]],
      ['25%', at(0.25)],
      ['50%', at(0.5)],
      ['75%', at(0.75)],
      ['end', samples.at(-1)],
    ].map(([k, s]) => [k, { ...s, rssMiB: mib(s.rssKiB) }]),
  );
  const maxRssMiB = mib(Math.max(...samples.map((s) => s.rssKiB)));
  const growthAfterWarmup = points.end.rssMiB / points['25%'].rssMiB - 1;
  const heapGrowthAfterWarmup =
    points.end.heapUsedMiB !== null && points['25%'].heapUsedMiB !== null
      ? points.end.heapUsedMiB / points['25%'].heapUsedMiB - 1
      : null;
  // throughput per quarter: does ingest slow down as the database grows?
  const quarters = [0, 0.25, 0.5, 0.75, 1].map(at);
  const rateByQuarter = quarters
    .slice(1)
    .map((s, i) => (s.accepted - quarters[i].accepted) / Math.max(0.001, s.sec - quarters[i].sec));
  return {
    ...result,
    target,
    cpu: cpuUse,
    rss: {
      points,
      maxRssMiB,
      growthAfterWarmup,
      flat: growthAfterWarmup < SOAK_FLAT_GROWTH,
      heapGrowthAfterWarmup,
      samplesEverySec: 1,
    },
    eventsPerSecByQuarter: rateByQuarter,
    samples: samples.map((s) => ({
      sec: Math.round(s.sec * 10) / 10,
      accepted: s.accepted,
      rssMiB: Math.round(mib(s.rssKiB) * 10) / 10,
      heapUsedMiB: s.heapUsedMiB === null ? null : Math.round(s.heapUsedMiB * 10) / 10,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (BENCH_POSTGRES=1)

async function pgSql(connectionString, text, params = []) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

const pgDbUrl = (name) => {
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
};

/**
 * The PostgreSQL processes serving `db`: its backends, the postmaster and the auxiliary processes
 * (WAL writer, checkpointer…). Backends of other databases are someone else's. pid → CPU seconds.
 */
function postgresProcesses(db) {
  const out = new Map();
  for (const [pid, p] of processCpuSnapshot()) {
    if (!/^postgres(:|\s|$)|\/postgres\s/.test(p.cmd)) continue;
    const rest = p.cmd.replace(/^postgres: (?:\S+: )?/, '');
    const backend = /^(\S+) (\S+) (?:\S+\(\d+\)|\[local\])/.exec(rest);
    if (backend && backend[2] !== db) continue; // someone else's backend
    out.set(pid, p.cpu);
  }
  return out;
}
const postgresCpuSeconds = (db) => [...postgresProcesses(db).values()].reduce((s, x) => s + x, 0);

/** SQL round trips between two pg-query-counter snapshots of every server, per accepted event. */
function roundTripsDelta(before, after, events) {
  const by = new Map();
  after.forEach((a, i) => {
    for (const [sql, v] of Object.entries(a.queries)) {
      const b = before[i].queries[sql] ?? { n: 0, ms: 0 };
      // statements with a literal per customer (the advisory lock) count as one statement
      const key = sql.replace(/'[^']*'/g, "'…'");
      const x = by.get(key) ?? { n: 0, ms: 0 };
      x.n += v.n - b.n;
      x.ms += v.ms - b.ms;
      by.set(key, x);
    }
  });
  const statements = [...by]
    .filter(([, x]) => x.n > 0)
    .map(([sql, x]) => ({ sql: sql.slice(0, 160), perEvent: x.n / events, meanWaitMs: x.ms / x.n }))
    .sort((x, y) => y.perEvent - x.perEvent);
  return { perEvent: statements.reduce((s, x) => s + x.perEvent, 0), statements };
}

/** Stops the PostgreSQL servers and drops their database if the run is interrupted (Ctrl-C). */
let interruptPostgres = null;

async function postgresIngest({ customers, tag, tmpDir }) {
  const db = `bd_events_${randomBytes(4).toString('hex')}`;
  const url = pgDbUrl(db);
  const servers = [];
  const queryFiles = [];
  let created = false;
  const out = { database: db, servers: PG_SERVERS, poolSizePerServer: PG_POOL_SIZE };
  try {
    out.version = (await pgSql(PG_URL, 'SHOW server_version')).rows[0].server_version;
    out.settings = Object.fromEntries(
      (
        await pgSql(
          PG_URL,
          `SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit','fsync','shared_buffers','commit_delay')`,
        )
      ).rows.map((r) => [r.name, r.setting]),
    );
    await pgSql(PG_URL, `CREATE DATABASE ${db}`);
    created = true;
    interruptPostgres = async () => {
      await Promise.allSettled(servers.map((s) => s.stop()));
      if (!KEEP_DB) await pgSql(PG_URL, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
    };
    for (let i = 0; i < PG_SERVERS; i++) {
      const queryFile = join(tmpDir, `pg-queries-${i + 1}.json`);
      queryFiles.push(queryFile);
      const s = startChild(
        `burndown-pg-${i + 1}`,
        ['--import', join(here, 'pg-query-counter.mjs'), cli, 'serve'],
        {
          BENCH_QUERY_COUNT_FILE: queryFile,
          PORT: '0',
          BURNDOWN_API_KEY: API_KEY,
          BURNDOWN_DATABASE_URL: url,
          BURNDOWN_PG_POOL_SIZE: String(PG_POOL_SIZE),
          BURNDOWN_LOG_LEVEL: 'warn',
        },
      );
      servers.push(s);
      await s.url; // one after the other: the first applies the migrations
    }
    const urls = await Promise.all(servers.map((s) => s.url));
    log(`  ${PG_SERVERS} servers on ${url.replace(/:[^:@/]*@/, ':***@')}: ${urls.join(', ')}`);
    out.seeding = await setUpBurndown(urls, customers);
    log(
      `  seeded ${fmt(out.seeding.customers)} customers + 1 grant each, meter and rate, in ${fmt(out.seeding.seconds, 1)} s`,
    );
    const warm = await runIngest({
      urls,
      clients: CLIENTS,
      shouldStop: timed(WARMUP),
      customers,
      tag,
      phase: 'pw',
    });
    const serverPids = servers.map((s) => s.child.pid);
    const ours = () => serverPids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0) + postgresCpuSeconds(db);
    const quiet = await waitForQuiet('postgres ingest', ours, QUIET_WAIT);
    log(`  measuring ${SECONDS} s, ${CLIENTS} batches of ${BATCH} in flight over ${PG_SERVERS} servers …`);
    const snap = (want) => Promise.all(servers.map((s, i) => signalSnapshot(s.child, queryFiles[i], want)));
    const q0 = await snap(1);
    const serversCpu = () => serverPids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
    const split0 = { servers: serversCpu(), postgres: postgresCpuSeconds(db) };
    const cpu = startCpuWindow(ours, () => [...serverPids, ...postgresProcesses(db).keys()]);
    const measured = await runIngest({
      urls,
      clients: CLIENTS,
      shouldStop: timed(SECONDS),
      customers,
      tag,
      phase: 'pm',
    });
    const cpuUse = cpu.stop();
    cpuUse.serversCores = (serversCpu() - split0.servers) / cpuUse.wallSec;
    cpuUse.postgresCores = (postgresCpuSeconds(db) - split0.postgres) / cpuUse.wallSec;
    const q1 = await snap(2);
    out.roundTrips = roundTripsDelta(q0, q1, Math.max(1, measured.accepted));
    log(`    ${describePhase(measured)}`);
    log(
      `    CPU: servers ${fmt(cpuUse.serversCores, 2)} cores, PostgreSQL ${fmt(cpuUse.postgresCores, 2)}, load generator ${fmt(cpuUse.loadGeneratorCores, 2)}, ` +
        `other processes ${fmt(cpuUse.otherProcessesCores, 2)}; ${fmt(out.roundTrips.perEvent, 1)} SQL round trips per event`,
    );
    log(
      table([
        ['statement (pg round trips)', 'per event', 'mean wait (ms)'],
        ...out.roundTrips.statements
          .slice(0, 14)
          .map((x) => [
            x.sql.length > 90 ? `${x.sql.slice(0, 87)}…` : x.sql,
            fmt(x.perEvent, 2),
            fmt(x.meanWaitMs, 2),
          ]),
      ]),
    );
    for (const s of servers) {
      const exit = await s.stop();
      if (exit.code !== 0) log(`  warning: ${s.name} exited with code ${exit.code} signal ${exit.signal}`);
    }
    const reconcile = await runReconcile(url);
    const counts = (
      await pgSql(
        url,
        'SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM event_burns) AS burns',
      )
    ).rows[0];
    const acknowledged = warm.accepted + measured.accepted;
    out.warmup = { accepted: warm.accepted, non202: warm.non202, errors: warm.errors };
    out.measured = { ...measured, cpu: { ...cpuUse, quietBeforeStart: quiet.quiet } };
    out.contaminatedByOtherProcesses = cpuUse.otherProcessesCores >= QUIET_CORES;
    out.ledger = {
      reconcileExitCode: reconcile.exitCode,
      reconcileOutput: reconcile.stdout.trim(),
      eventRows: Number(counts.events),
      burnRows: Number(counts.burns),
      acknowledged,
      eventsMatchAcknowledged: Number(counts.events) === acknowledged,
    };
    out.target = {
      eventsPerSec: TARGETS.postgresEventsPerSec,
      met: measured.eventsPerSec >= TARGETS.postgresEventsPerSec,
    };
    log(
      `  reconcile exit ${reconcile.exitCode}: ${reconcile.stdout.trim().split('\n')[0]}; events rows ${fmt(out.ledger.eventRows)} ` +
        `vs Σ accepted ${fmt(acknowledged)} → ${out.ledger.eventsMatchAcknowledged ? 'equal' : 'DIFFERENT'}`,
    );
  } catch (error) {
    out.error = String(error?.stack ?? error).slice(0, 2000);
    log(`  PostgreSQL ingest failed: ${String(error?.message ?? error).split('\n')[0]}`);
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (created && !KEEP_DB) {
      await pgSql(PG_URL, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).then(
        () => log(`  dropped ${db}`),
        (e) => log(`  could not drop ${db}: ${e.message}`),
      );
    } else if (created) log(`  database kept: ${db}`);
    interruptPostgres = null;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const startedAt = new Date();
  const mach = machine();
  const codeAtStart = provenance();
  const tag = `b${randomBytes(3).toString('hex')}`;
  const customers = customerIds(CUSTOMERS);
  const tmp = mkdtempSync(join(os.tmpdir(), 'burndown-bench-events-'));
  const dbPath = join(tmp, 'bench.db');
  const memFile = join(tmp, 'mem.json');
  const profileDir = join(here, 'results', 'profile', 'events');
  const children = [];
  const cleanup = async () => {
    seedAgent.destroy();
    await Promise.allSettled(children.map((c) => c.stop()));
  };
  process.once('SIGINT', () => {
    log('\nSIGINT: stopping the servers …');
    cleanup()
      .then(() => interruptPostgres?.())
      .finally(() => process.exit(130));
  });

  log(`Burndown event-ingest benchmark — ${startedAt.toISOString()}`);
  log(`machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}, ${mach.platform}`);
  log(
    `load: ${CLIENTS} batches of ${fmt(BATCH)} events in flight (closed loop), ${fmt(CUSTOMERS)} customers, ` +
      `${WARMUP} s warm-up + ${SECONDS} s measured; soak ${SOAK_EVENTS ? `${fmt(SOAK_EVENTS)} events` : 'off'}`,
  );
  if (SOAK_EVENTS && SOAK_EVENTS < SOAK_FULL)
    log(
      `note: the soak ingests ${fmt(SOAK_EVENTS)} events, not ${fmt(SOAK_FULL)}: ${
        process.env.BENCH_SOAK_EVENTS
          ? 'BENCH_SOAK_EVENTS is set'
          : QUICK
            ? 'BENCH_QUICK=1'
            : 'the full soak takes longer than ~4 min on this VM'
      } (BENCH_SOAK_EVENTS=${SOAK_FULL} for the full one); the projected time for ${fmt(SOAK_FULL)} is printed below.`,
    );
  log('note: the load generator, the ceiling and the server under test share this machine’s CPUs.');
  if (PROFILE)
    log('PROFILE MODE: Burndown runs under --cpu-prof; no soak; figures are slowed by the profiler.');
  log();

  const results = {
    benchmark: 'events',
    date: startedAt.toISOString(),
    machine: mach,
    code: codeAtStart,
    profiled: PROFILE,
    sharedMachine:
      'the load generator (this process), the ceiling child and the Burndown server all run on this machine; the ceiling runs before Burndown, never at the same time',
    config: {
      durationSec: SECONDS,
      warmupSec: WARMUP,
      customers: CUSTOMERS,
      grantsPerCustomer: 1,
      grantAmount: GRANT_AMOUNT,
      batchSize: BATCH,
      clientsInFlight: CLIENTS,
      soakEvents: SOAK_EVENTS,
      meter: METER,
      rate: RATE,
      event: `{"id":"<tag>-<client>-<n>","type":"${EVENT_TYPE}","customer_id":<uniform among ${CUSTOMERS}>,"time":<now>,"data":{"model":<1 of 4>,"tokens":<1..2000>}}`,
      durability: 'SQLite WAL, synchronous=FULL (defaults), group commit, background checkpoints',
    },
    targets: TARGETS,
  };
  let exitCode = 0;

  try {
    // 1. the ceiling: raw better-sqlite3 inserts of the same rows, in a child process
    log(
      `[1/5] ceiling: raw better-sqlite3 inserts into an events-shaped table, ${fmt(BATCH)} rows per transaction`,
    );
    const quietC = await waitForQuiet('ceiling', null, QUIET_WAIT);
    const cpuC = startCpuWindow(() => 0);
    const ceilingRun = await promisify(execFile)(
      process.execPath,
      [
        join(here, 'events-ceiling.mjs'),
        join(tmp, 'ceiling.db'),
        String(SECONDS),
        String(CUSTOMERS),
        String(BATCH),
      ],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
    );
    const cpuCeiling = cpuC.stop();
    const ceiling = JSON.parse(ceilingRun.stdout.trim().split('\n').at(-1));
    // the child had exited when the window closed, so it reports its own CPU time
    ceiling.cpu = {
      ...cpuCeiling,
      underTestCores: ceiling.cpuSec / cpuCeiling.wallSec,
      otherProcessesCores: cpuCeiling.otherProcessesCores - ceiling.cpuSec / cpuCeiling.wallSec,
      quietBeforeStart: quietC.quiet,
    };
    rmSync(join(tmp, 'ceiling.db'), { force: true });
    rmSync(join(tmp, 'ceiling.db-wal'), { force: true });
    rmSync(join(tmp, 'ceiling.db-shm'), { force: true });
    log(
      `  ${fmt(ceiling.rows)} rows in ${fmt(ceiling.wallSec, 1)} s: ${fmt(ceiling.rowsPerSecInsert)} rows/s ` +
        `(${fmt(ceiling.rowsPerSecWall)} rows/s counting row generation); COMMIT p50 ${fmt(ceiling.commitMs.p50, 1)} ms, ` +
        `p99 ${fmt(ceiling.commitMs.p99, 1)} ms; machine busy ${fmt(cpuCeiling.machineBusyCores, 2)} cores`,
    );
    results.ceiling = ceiling;
    log();

    // 2. Burndown on a fresh database, seeded over HTTP
    log(`[2/5] Burndown (sqlite:${dbPath})`);
    const args = ['--import', memProbe, ...(SQL_TIMING ? ['--import', statementTimer] : [])];
    const sqlTimingFile = join(tmp, 'sql-timing.json');
    if (PROFILE) {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
      args.push('--cpu-prof', '--cpu-prof-dir', profileDir);
    }
    const spawnedAt = Date.now();
    const bd = startChild('burndown', [...args, cli, 'serve'], {
      PORT: '0',
      BURNDOWN_API_KEY: API_KEY,
      BURNDOWN_DATABASE_URL: `sqlite:${dbPath}`,
      BURNDOWN_LOG_LEVEL: 'warn',
      BENCH_MEM_FILE: memFile,
      ...(SQL_TIMING ? { BENCH_SQL_TIMING_FILE: sqlTimingFile } : {}),
    });
    children.push(bd);
    const url = await bd.url;
    const pid = bd.child.pid;
    const seeding = await setUpBurndown([url], customers);
    log(
      `  seeded ${fmt(seeding.customers)} customers × 1 grant of ${GRANT_AMOUNT} credits, meter "${METER.id}" ` +
        `(sum of $.tokens by model) and rate "${RATE.id}" (${RATE.credits_per_unit} credits per token, no filter) in ${fmt(seeding.seconds, 1)} s`,
    );
    results.seeding = seeding;
    seedAgent.destroy();

    // 3. ingest: warm-up, then the measured window
    log(`[3/5] ingest: POST ${EVENTS_ROUTE}, ${CLIENTS} batches of ${fmt(BATCH)} in flight`);
    const warm = await runIngest({
      urls: [url],
      clients: CLIENTS,
      shouldStop: timed(WARMUP),
      customers,
      tag,
      phase: 'w',
    });
    log(`  warm-up: ${describePhase(warm)}`);
    const quiet = await waitForQuiet('burndown', pid, QUIET_WAIT);
    const m0 = await scrape(url);
    const sql0 = SQL_TIMING ? await signalSnapshot(bd.child, sqlTimingFile, 1) : null;
    log(`  measuring ${SECONDS} s …`);
    const windowStart = Date.now();
    const cpu = startCpuWindow(
      () => cpuSecondsOf(pid),
      () => [pid],
    );
    const measured = await runIngest({
      urls: [url],
      clients: CLIENTS,
      shouldStop: timed(SECONDS),
      customers,
      tag,
      phase: 'm',
    });
    const cpuUse = cpu.stop();
    const windowEnd = Date.now();
    const m1 = await scrape(url);
    const sql1 = SQL_TIMING ? await signalSnapshot(bd.child, sqlTimingFile, 2) : null;
    const batch = histogramDelta(m0.batch, m1.batch);
    const route = histogramDelta(m0.route, m1.route);
    log(`  measured: ${describePhase(measured)}`);
    log(
      `  CPU: server ${fmt(cpuUse.underTestCores, 2)} cores, load generator ${fmt(cpuUse.loadGeneratorCores, 2)}, ` +
        `other processes ${fmt(cpuUse.otherProcessesCores, 2)} (machine ${fmt(cpuUse.machineBusyCores, 2)} of ${mach.nproc})`,
    );
    log(
      `  group commit: ${fmt(batch.count)} commits (${fmt(batch.count / measured.wallSec)}/s), mean ${fmt(batch.mean, 1)} ` +
        `customer transactions per commit, ${fmt(measured.accepted / Math.max(1, batch.count))} events per commit; ` +
        `server-side mean ${fmt((route.mean ?? 0) * 1000)} ms per batch`,
    );
    results.warmup = warm;
    results.burndown = {
      ...measured,
      cpu: { ...cpuUse, quietBeforeStart: quiet.quiet },
      serverCpuMicrosecondsPerEvent: ((cpuUse.underTestCores * measured.wallSec) / measured.accepted) * 1e6,
      groupCommit: {
        commits: batch.count,
        commitsPerSec: batch.count / measured.wallSec,
        meanCustomerTransactionsPerCommit: batch.mean,
        eventsPerCommit: measured.accepted / Math.max(1, batch.count),
      },
      serverSideBatchMeanMs: route.mean === null ? null : route.mean * 1000,
    };
    results.ratio = measured.eventsPerSec / ceiling.rowsPerSecInsert;
    if (SQL_TIMING) {
      const t = sqlTimingDelta(sql0, sql1, measured.accepted, measured.wallSec);
      results.sqlTiming = t;
      log(
        `  SQLite statements on the server's main thread, measured window: ${fmt(t.totalUsPerEvent, 1)} µs per accepted event ` +
          `(server CPU ${fmt(results.burndown.serverCpuMicrosecondsPerEvent, 1)} µs per event)`,
      );
      log(
        table([
          ['statement', 'calls/event', 'µs/event', 'mean µs/call', 'share of wall'],
          ...t.statements
            .filter((r) => r.usPerEvent >= 0.2)
            .map((r) => [
              r.sql.length > 90 ? `${r.sql.slice(0, 87)}…` : r.sql,
              fmt(r.callsPerEvent, 3),
              fmt(r.usPerEvent, 1),
              fmt(r.meanUs, 1),
              `${fmt(r.shareOfWall * 100, 1)} %`,
            ]),
        ]),
      );
    }
    log();

    // 4. memory soak
    let soaked = null;
    if (SOAK_EVENTS > 0) {
      log(`[4/5] memory soak: ${fmt(SOAK_EVENTS)} events, RSS (/proc/${pid}/status VmRSS) every second`);
      soaked = await soak({ url, pid, customers, tag, target: SOAK_EVENTS, memFile });
      const p = soaked.rss.points;
      log(`  soak: ${describePhase(soaked)}`);
      log(
        table([
          ['', 'start', '25 %', '50 %', '75 %', 'end', 'max'],
          [
            'events accepted in the soak',
            ...['start', '25%', '50%', '75%', 'end'].map((k) => fmt(p[k].accepted)),
            '',
          ],
          [
            'RSS (MiB)',
            ...['start', '25%', '50%', '75%', 'end'].map((k) => fmt(p[k].rssMiB)),
            fmt(soaked.rss.maxRssMiB),
          ],
          [
            'JS heap used (MiB)',
            ...['start', '25%', '50%', '75%', 'end'].map((k) => fmt(p[k].heapUsedMiB)),
            '',
          ],
        ]),
      );
      log(
        `  RSS growth from the 25 % point to the end: ${fmt(soaked.rss.growthAfterWarmup * 100, 1)} % → ` +
          `${soaked.rss.flat ? 'flat' : 'NOT flat'} (criterion < ${SOAK_FLAT_GROWTH * 100} %); JS heap ${fmt((soaked.rss.heapGrowthAfterWarmup ?? Number.NaN) * 100, 1)} %`,
      );
      log(
        `  events/s by quarter of the soak: ${soaked.eventsPerSecByQuarter.map((x) => fmt(x)).join(', ')}; ` +
          `other processes ${fmt(soaked.cpu.otherProcessesCores, 2)} cores`,
      );
      const projected = SOAK_FULL / soaked.eventsPerSec;
      soaked.projectedSecondsFor2M = projected;
      log(
        `  projected time for a ${fmt(SOAK_FULL)}-event soak at this rate: ${fmt(projected)} s (${fmt(projected / 60, 1)} min)`,
      );
      results.soak = soaked;
    } else log('[4/5] memory soak: off');

    // dedup: the last batch of the measured window again → all duplicates
    const again = await postBatch(
      new http.Agent({ keepAlive: false }),
      url,
      batchBody(customers, tag, 'm0', 0, BATCH, new Date().toISOString()),
    );
    const againAnswer = again.status === 202 ? JSON.parse(again.text) : null;
    results.dedupCheck = {
      resentEvents: BATCH,
      status: again.status,
      accepted: againAnswer?.accepted ?? null,
      duplicates: againAnswer?.duplicates ?? null,
      ok: againAnswer?.accepted === 0 && againAnswer?.duplicates === BATCH,
    };
    log(
      `  dedup: re-sent the ids of the first measured batch → ${againAnswer ? `${againAnswer.accepted} accepted, ${againAnswer.duplicates} duplicates` : `status ${again.status}`}`,
    );

    const exit = await bd.stop();
    if (exit.code !== 0)
      log(`  warning: Burndown exited with code ${exit.code} signal ${exit.signal}\n${bd.stderr()}`);
    else if (bd.stderr().trim()) log(`  Burndown stderr:\n${bd.stderr().trim().slice(0, 2000)}`);
    log();

    // 5. the ledger after the run
    log('[5/5] ledger verification');
    const tr = Date.now();
    const reconcile = await runReconcile(`sqlite:${dbPath}`);
    const reconcileSec = (Date.now() - tr) / 1000;
    log(`  $ burndown reconcile  (exit ${reconcile.exitCode}, ${fmt(reconcileSec, 1)} s)`);
    for (const line of `${reconcile.stdout}${reconcile.stderr}`.trim().split('\n').slice(0, 12))
      log(`  ${line}`);
    const db = new Database(dbPath, { readonly: true });
    const count = (t) => db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get().n;
    const rows = {
      events: count('events'),
      event_burns: count('event_burns'),
      debits: count('debits'),
      entries: count('entries'),
      rate_usage: count('rate_usage'),
    };
    db.close();
    const dbBytes = ['', '-wal'].reduce(
      (s, x) => s + (existsSync(dbPath + x) ? statSync(dbPath + x).size : 0),
      0,
    );
    const phases = [warm, measured, ...(soaked ? [soaked] : [])];
    const acknowledged = phases.reduce((s, x) => s + x.accepted, 0);
    const failedBatches = phases.reduce((s, x) => s + x.errors + x.non202, 0);
    const eventsMatch = rows.events === acknowledged;
    log(
      `  events rows ${fmt(rows.events)}; Σ accepted (warm-up + measured${soaked ? ' + soak' : ''}) ${fmt(acknowledged)} → ` +
        `${eventsMatch ? 'equal' : `DIFFERENT (${failedBatches} failed batches)`}`,
    );
    log(
      `  per accepted event: ${fmt(rows.event_burns / acknowledged, 2)} burns, ${fmt(rows.debits / acknowledged, 2)} debits, ` +
        `${fmt(rows.entries / acknowledged, 2)} ledger entries; database ${fmt(dbBytes / 2 ** 20)} MiB ` +
        `(${fmt(dbBytes / acknowledged)} bytes per event)`,
    );
    const m = /reconcile: (\d+) entries, (\d+) accounts, (\d+) grants, (\d+) events: (\w+)/.exec(
      reconcile.stdout,
    );
    results.ledger = {
      reconcileExitCode: reconcile.exitCode,
      reconcileOutput: reconcile.stdout.trim().slice(0, 4000),
      reconcileSeconds: reconcileSec,
      ok: reconcile.exitCode === 0 && m?.[5] === 'OK',
      eventsCheckedByReconcile: m ? Number(m[4]) : null,
      rows,
      databaseBytes: dbBytes,
      acknowledgedEvents: acknowledged,
      failedBatches,
      eventsMatchAcknowledged: eventsMatch,
    };
    if (!results.ledger.ok || !eventsMatch || !results.dedupCheck.ok) exitCode = 1;
    log();

    // optional: PostgreSQL
    if (POSTGRES) {
      log(`[+] PostgreSQL: ${PG_SERVERS} servers on a fresh database at ${new URL(PG_URL).host}`);
      results.postgres = await postgresIngest({ customers, tag: `${tag}pg`, tmpDir: tmp });
      log();
    }

    // report
    log('results');
    const b = results.burndown;
    const contaminated = {
      ceiling: ceiling.cpu.otherProcessesCores >= QUIET_CORES,
      burndown: b.cpu.otherProcessesCores >= QUIET_CORES,
      soak: soaked ? soaked.cpu.otherProcessesCores >= QUIET_CORES : false,
      postgres: results.postgres?.contaminatedByOtherProcesses ?? false,
    };
    log(
      table([
        ['', 'ceiling: raw inserts', 'Burndown POST /v1/events', 'Burndown ÷ ceiling', 'target', 'met'],
        [
          'events (rows) /s',
          fmt(ceiling.rowsPerSecInsert),
          fmt(b.eventsPerSec),
          `${fmt(results.ratio * 100, 1)} %`,
          `≥ ${fmt(TARGETS.sqliteEventsPerSec)}/s`,
          b.eventsPerSec >= TARGETS.sqliteEventsPerSec ? 'yes' : 'NO',
        ],
        [
          'latency p50 (ms)',
          `${fmt(ceiling.commitMs.p50, 1)} (COMMIT)`,
          `${fmt(b.batchLatencyMs.p50)} (batch)`,
          '',
          '',
          '',
        ],
        [
          'latency p99 (ms)',
          `${fmt(ceiling.commitMs.p99, 1)} (COMMIT)`,
          `${fmt(b.batchLatencyMs.p99)} (batch)`,
          '',
          '',
          '',
        ],
        ['events in the window', fmt(ceiling.rows), fmt(b.accepted), '', '', ''],
        [
          'rejected / non-202 / errors',
          '-',
          `${b.rejected} / ${b.non202} / ${b.errors}`,
          '',
          '0',
          b.rejected + b.non202 + b.errors === 0 ? 'yes' : 'NO',
        ],
        [
          'process under test CPU (cores)',
          fmt(ceiling.cpu.underTestCores, 2),
          fmt(b.cpu.underTestCores, 2),
          '',
          '',
          '',
        ],
        ['load generator CPU (cores)', '-', fmt(b.cpu.loadGeneratorCores, 2), '', '', ''],
        [
          'other processes CPU (cores)',
          fmt(ceiling.cpu.otherProcessesCores, 2),
          fmt(b.cpu.otherProcessesCores, 2),
          '',
          `< ${QUIET_CORES}`,
          !contaminated.ceiling && !contaminated.burndown ? 'yes' : 'NO',
        ],
      ]),
    );
    if (results.postgres && !results.postgres.error) {
      const pm = results.postgres.measured;
      log(
        `PostgreSQL, ${PG_SERVERS} servers: ${fmt(pm.eventsPerSec)} events/s (target ≥ ${fmt(TARGETS.postgresEventsPerSec)}: ` +
          `${results.postgres.target.met ? 'met' : 'NOT met'}), batch p50 ${fmt(pm.batchLatencyMs.p50)} ms, p99 ${fmt(pm.batchLatencyMs.p99)} ms, ` +
          `other processes ${fmt(pm.cpu.otherProcessesCores, 2)} cores`,
      );
    }
    const noisy = Object.values(contaminated).some(Boolean);
    results.contaminatedByOtherProcesses = noisy;
    results.contamination = contaminated;
    if (noisy) {
      for (const [label, c] of [
        ['ceiling', ceiling.cpu],
        ['burndown', b.cpu],
        ['soak', soaked?.cpu],
        ['postgres', results.postgres?.measured?.cpu],
      ]) {
        for (const o of c?.topOtherProcesses ?? [])
          log(`  during ${label}: ${fmt(o.cores, 2)} cores  pid ${o.pid}  ${o.cmd}`);
      }
      log(
        `WARNING: other processes used ≥ ${QUIET_CORES} cores during a measured window (${Object.entries(
          contaminated,
        )
          .filter(([, v]) => v)
          .map(([k]) => k)
          .join(', ')}); these figures are contaminated.`,
      );
    }
    log(
      `verdict: ${fmt(b.eventsPerSec)} events/s on SQLite = ${fmt(results.ratio * 100, 1)} % of the raw-insert ceiling; ` +
        `target ≥ ${fmt(TARGETS.sqliteEventsPerSec)}/s ${b.eventsPerSec >= TARGETS.sqliteEventsPerSec ? 'met' : 'NOT met'}` +
        (soaked
          ? `; memory ${soaked.rss.flat ? 'flat' : 'NOT flat'} over ${fmt(soaked.accepted)} events`
          : '') +
        `; reconcile ${results.ledger.ok ? 'OK' : 'FAILED'}; events rows ${eventsMatch ? '=' : '≠'} Σ accepted`,
    );

    if (PROFILE) {
      const files = existsSync(profileDir)
        ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
        : [];
      const newest = files
        .map((f) => join(profileDir, f))
        .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
      if (newest) {
        const onlyAfterMs = windowStart - spawnedAt;
        const untilMs = windowEnd - spawnedAt;
        const profile = summariseProfile(JSON.parse(readFileSync(newest, 'utf8')), {
          top: 30,
          onlyAfterMs,
          untilMs,
        });
        log();
        log(
          `CPU profile of Burndown, measured window only (${onlyAfterMs}–${untilMs} ms after spawn): ${newest}`,
        );
        log(profile.text);
        results.profile = {
          file: newest,
          window: { onlyAfterMs, untilMs },
          totalMs: profile.totalMs,
          busyMs: profile.busyMs,
          byArea: profile.byArea,
          top: profile.top,
          topInclusive: profile.topInclusive,
        };
      } else log('no .cpuprofile was written');
    }

    const codeNow = provenance();
    results.code = { ...codeAtStart, distRebuiltDuringRun: codeNow.distBuiltAt !== codeAtStart.distBuiltAt };
    if (results.code.distRebuiltDuringRun)
      log(
        'note: dist/ was rebuilt during the run (by someone else?); the servers ran the build of the start.',
      );
    results.finishedAt = new Date().toISOString();
    // instrumented runs (profiler, statement timer) go to their own file: their figures are slowed
    const out = join(
      here,
      'results',
      PROFILE
        ? 'latest-events-profile.json'
        : SQL_TIMING
          ? 'latest-events-sql-timing.json'
          : 'latest-events.json',
    );
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    log();
    log(`wrote ${out} (run took ${fmt((Date.now() - startedAt.getTime()) / 1000)} s)`);
    process.exitCode = exitCode;
  } finally {
    await cleanup();
    if (KEEP_DB) log(`database kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error?.stack ?? error}\n`);
  process.exit(1);
});
