// Debit throughput/latency benchmark: Burndown's POST /v1/customers/{id}/debits against the
// framework-independent ceiling (a bare node:http server that reads + JSON.parses the body).
//
//   npm run bench                 (builds, then runs this file)
//   node bench/debits.mjs         (uses the existing dist/)
//
// Environment knobs (all optional):
//   BENCH_SECONDS=10          measured duration per target (after warm-up)
//   BENCH_WARMUP_SECONDS=2    warm-up per target (discarded)
//   BENCH_CONNECTIONS=50      concurrent keep-alive connections (pipelining is always 1)
//   BENCH_CUSTOMERS=1000      customers seeded in Burndown
//   BENCH_GRANTS=12           active grants per customer (varied priority / expiry / category)
//   BENCH_PROFILE=1           run Burndown under `node --cpu-prof` and print its top self-time
//                             functions (profiling slows it down: do not compare those figures)
//   BENCH_KEEP_DB=1           keep the temporary database directory
//
// Writes bench/results/latest-debits.json (or latest-debits-profile.json with BENCH_PROFILE=1).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { summariseProfile } from './cpuprofile-top.mjs';
import {
  API_KEY,
  cli,
  cpuSecondsOf,
  createRequester,
  customerId,
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
const CONNECTIONS = num('BENCH_CONNECTIONS', 50);
const CUSTOMERS = num('BENCH_CUSTOMERS', 1000);
const GRANTS = num('BENCH_GRANTS', 12);
const PROFILE = process.env.BENCH_PROFILE === '1';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const DEBIT_AMOUNT = '1.5';
const GRANT_AMOUNT = '1000000';
const TARGETS = { throughputRatioMin: 0.5, p99RatioMax: 2 };
const DEBIT_ROUTE = '/v1/customers/:id/debits';

// ---------------------------------------------------------------------------------------------
// HTTP helpers (seeding and scraping; the load itself is autocannon's)

const { agent, request } = createRequester(API_KEY, { maxSockets: 64 });

/** Seeds CUSTOMERS customers, each with GRANTS active grants of varied priority, expiry and category. */
function seed(baseUrl) {
  const ids = Array.from({ length: CUSTOMERS }, (_, i) => customerId(i));
  return seedCustomers({
    request,
    baseUrls: [baseUrl],
    ids,
    grants: GRANTS,
    grantAmount: GRANT_AMOUNT,
    concurrency: 32,
  });
}

// ---------------------------------------------------------------------------------------------
// /metrics

async function scrape(baseUrl) {
  const r = await request(baseUrl, 'GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics → ${r.status}`);
  return {
    batch: parseHistogram(r.text, 'burndown_commit_batch_size'),
    debitDuration: parseHistogram(r.text, 'burndown_http_request_duration_seconds', `route="${DEBIT_ROUTE}"`),
  };
}

const batchLabel = ([lo, hi]) => {
  if (hi === Number.POSITIVE_INFINITY) return `>${lo}`;
  const from = Math.floor(lo) + 1;
  return from === hi ? `${hi}` : `${from}-${hi}`;
};

// ---------------------------------------------------------------------------------------------
// load

function runCannon(url, duration, customers) {
  const n = customers.length;
  const paths = customers.map((id) => `/v1/customers/${encodeURIComponent(id)}/debits`);
  return autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: 1,
    duration,
    timeout: 10,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        body: JSON.stringify({ amount: DEBIT_AMOUNT }),
        // every request goes to a uniformly random customer
        setupRequest: (req) => ({ ...req, path: paths[(Math.random() * n) | 0] }),
      },
    ],
  });
}

/** Warm-up (discarded), then the measured run, with CPU time of the server and of this process. */
async function measure(label, url, pid, customers) {
  log(`  ${label}: warm-up ${WARMUP} s …`);
  const warm = await runCannon(url, WARMUP, customers);
  const quiet = await waitForQuiet(label, pid);
  const serverCpu0 = cpuSecondsOf(pid);
  const selfCpu0 = selfCpuSeconds();
  const busy0 = systemBusySeconds();
  const procs0 = processCpuSnapshot();
  const before = label === 'burndown' ? await scrape(url) : null;
  log(`  ${label}: measuring ${SECONDS} s with ${CONNECTIONS} connections …`);
  const windowStart = Date.now();
  const t0 = process.hrtime.bigint();
  const result = await runCannon(url, SECONDS, customers);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const serverCpu = cpuSecondsOf(pid) - serverCpu0;
  const loadCpu = selfCpuSeconds() - selfCpu0;
  const otherCpu = systemBusySeconds() - busy0 - serverCpu - loadCpu;
  const others = topOthers(procs0, processCpuSnapshot(), wall, new Set([String(pid), String(process.pid)]));
  const after = label === 'burndown' ? await scrape(url) : null;
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
      requests: result.requests.total,
      ok2xx: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      durationSec: result.duration,
      warmup: { requests: warm.requests.total, ok2xx: warm['2xx'], non2xx: warm.non2xx, errors: warm.errors },
      cpu: {
        wallSec: wall,
        serverCpuSec: serverCpu,
        loadGeneratorCpuSec: loadCpu,
        serverCores: serverCpu / wall,
        loadGeneratorCores: loadCpu / wall,
        otherProcessesCpuSec: otherCpu,
        otherProcessesCores: otherCpu / wall,
        quietBeforeStart: quiet.quiet,
        topOtherProcesses: others,
      },
    },
    metrics: before && after ? { before, after } : null,
    windowStart,
  };
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const startedAt = new Date();
  const mach = machine();
  log(`Burndown debit benchmark — ${startedAt.toISOString()}`);
  log(`machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}, ${mach.platform}`);
  log(
    `load: ${CONNECTIONS} connections, pipelining 1, keep-alive, ${WARMUP} s warm-up + ${SECONDS} s measured per target`,
  );
  log("note: autocannon and the server under test share this machine's CPUs.");
  if (PROFILE) log('PROFILE MODE: Burndown runs under --cpu-prof; its figures are slowed by the profiler.');
  log();

  const tmp = mkdtempSync(join(os.tmpdir(), 'burndown-bench-'));
  const dbPath = join(tmp, 'bench.db');
  const profileDir = join(here, 'results', 'profile');
  const children = [];
  const cleanup = async () => {
    await Promise.allSettled(children.map((c) => c.stop()));
  };
  process.once('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });

  try {
    // 1. the ceiling
    log('[1/4] bare node:http ceiling');
    const bare = startChild('bare-server', [join(here, 'bare-server.mjs')], { PORT: '0' });
    children.push(bare);
    const bareUrl = await bare.url;
    const bareCustomers = Array.from({ length: CUSTOMERS }, (_, i) => customerId(i));
    const bareRun = await measure('bare', bareUrl, bare.child.pid, bareCustomers);
    await bare.stop();
    log();

    // 2. Burndown, durable defaults (WAL + synchronous=FULL + group commit), fresh database
    log(`[2/4] Burndown (sqlite:${dbPath})`);
    const args = [];
    if (PROFILE) {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
      args.push('--cpu-prof', '--cpu-prof-dir', profileDir);
    }
    const bdSpawnedAt = Date.now();
    const bd = startChild('burndown', [...args, cli, 'serve'], {
      PORT: '0',
      BURNDOWN_API_KEY: API_KEY,
      BURNDOWN_DATABASE_URL: `sqlite:${dbPath}`,
      BURNDOWN_LOG_LEVEL: 'warn',
    });
    children.push(bd);
    const bdUrl = await bd.url;
    const t0 = Date.now();
    const seeded = await seed(bdUrl);
    const seedSec = (Date.now() - t0) / 1000;
    log(
      `  seeded ${fmt(seeded.customers.length)} customers × ${GRANTS} grants = ${fmt(seeded.grants)} grants in ${fmt(seedSec, 1)} s`,
    );
    agent.destroy();
    const bdRun = await measure('burndown', bdUrl, bd.child.pid, seeded.customers);
    const exit = await bd.stop();
    if (exit.code !== 0)
      log(`  warning: Burndown exited with code ${exit.code} signal ${exit.signal}\n${bd.stderr()}`);
    else if (bd.stderr().trim()) log(`  Burndown stderr:\n${bd.stderr().trim()}`);
    log();

    // 3. the ledger after the run
    log('[3/4] ledger verification');
    const reconcile = await runReconcile(`sqlite:${dbPath}`);
    log(`  $ burndown reconcile  (exit ${reconcile.exitCode})`);
    for (const line of `${reconcile.stdout}${reconcile.stderr}`.trim().split('\n')) log(`  ${line}`);
    const m = reconcile.match;
    const db = new Database(dbPath, { readonly: true });
    const debitRows = db.prepare('SELECT COUNT(*) AS n FROM debits').get().n;
    const entryRows = db.prepare('SELECT COUNT(*) AS n FROM entries').get().n;
    db.close();
    const acknowledged = bdRun.figures.ok2xx + bdRun.figures.warmup.ok2xx;
    // autocannon stops counting at the deadline: up to one in-flight request per connection per
    // run (warm-up + measured) may still be committed without being counted as a response.
    const inFlightSlack = 2 * CONNECTIONS;
    const debitsConsistent = debitRows >= acknowledged && debitRows <= acknowledged + inFlightSlack;
    log(
      `  debits stored: ${fmt(debitRows)}; 2xx counted by autocannon (warm-up + measured): ${fmt(acknowledged)}; ` +
        `uncounted in-flight at the deadlines: ${fmt(debitRows - acknowledged)} (allowed 0…${inFlightSlack}) → ${debitsConsistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    log();

    // 4. report
    log('[4/4] results');
    const b = bareRun.figures;
    const d = bdRun.figures;
    const throughputRatio = d.reqPerSecMean / b.reqPerSecMean;
    const p99Ratio = d.latencyMs.p99 / b.latencyMs.p99;
    const met = {
      throughput: throughputRatio >= TARGETS.throughputRatioMin,
      p99: p99Ratio <= TARGETS.p99RatioMax,
    };
    log(
      table([
        ['', 'bare node:http', 'Burndown debits', 'Burndown ÷ bare', 'target', 'met'],
        [
          'req/s (mean)',
          fmt(b.reqPerSecMean),
          fmt(d.reqPerSecMean),
          `${fmt(throughputRatio * 100, 1)} %`,
          '≥ 50 %',
          met.throughput ? 'yes' : 'NO',
        ],
        [
          'latency p50 (ms)',
          fmt(b.latencyMs.p50, 1),
          fmt(d.latencyMs.p50, 1),
          `${fmt(d.latencyMs.p50 / b.latencyMs.p50, 2)}×`,
          '',
          '',
        ],
        [
          'latency p99 (ms)',
          fmt(b.latencyMs.p99, 1),
          fmt(d.latencyMs.p99, 1),
          `${fmt(p99Ratio, 2)}×`,
          '≤ 2×',
          met.p99 ? 'yes' : 'NO',
        ],
        ['latency max (ms)', fmt(b.latencyMs.max, 1), fmt(d.latencyMs.max, 1), '', '', ''],
        ['requests', fmt(b.requests), fmt(d.requests), '', '', ''],
        ['non-2xx', fmt(b.non2xx), fmt(d.non2xx), '', '0', b.non2xx === 0 && d.non2xx === 0 ? 'yes' : 'NO'],
        [
          'errors / timeouts',
          `${b.errors} / ${b.timeouts}`,
          `${d.errors} / ${d.timeouts}`,
          '',
          '0',
          b.errors + b.timeouts + d.errors + d.timeouts === 0 ? 'yes' : 'NO',
        ],
        ['server CPU (cores)', fmt(b.cpu.serverCores, 2), fmt(d.cpu.serverCores, 2), '', '', ''],
        [
          'autocannon CPU (cores)',
          fmt(b.cpu.loadGeneratorCores, 2),
          fmt(d.cpu.loadGeneratorCores, 2),
          '',
          '',
          '',
        ],
        [
          'other processes CPU (cores)',
          fmt(b.cpu.otherProcessesCores, 2),
          fmt(d.cpu.otherProcessesCores, 2),
          '',
          `< ${QUIET_CORES}`,
          Math.max(b.cpu.otherProcessesCores, d.cpu.otherProcessesCores) < QUIET_CORES ? 'yes' : 'NO',
        ],
      ]),
    );
    const noisy = Math.max(b.cpu.otherProcessesCores, d.cpu.otherProcessesCores) >= QUIET_CORES;
    if (noisy) {
      for (const [label, run] of [
        ['bare', b],
        ['burndown', d],
      ]) {
        for (const o of run.cpu.topOtherProcesses)
          log(`  during ${label}: ${fmt(o.cores, 2)} cores  pid ${o.pid}  ${o.cmd}`);
      }
      log(
        `WARNING: other processes used up to ${fmt(Math.max(b.cpu.otherProcessesCores, d.cpu.otherProcessesCores), 2)} of ` +
          `${mach.nproc} cores during a measured window; these figures are contaminated.`,
      );
    }
    log();

    const batch = histogramDelta(bdRun.metrics.before.batch, bdRun.metrics.after.batch);
    const serverSide = histogramDelta(bdRun.metrics.before.debitDuration, bdRun.metrics.after.debitDuration);
    log(
      `group commit during the measured run: ${fmt(batch.count)} commits (${fmt(batch.count / d.durationSec)} fsync'd commits/s), ` +
        `mean batch ${fmt(batch.mean, 1)}, p50 ≤ ${batch.p50UpperBound}, p99 ≤ ${batch.p99UpperBound}`,
    );
    log(
      table([
        ['batch size', 'commits', 'share', ''],
        ...batch.buckets
          .filter((x) => x.count > 0 || x.range[1] !== Number.POSITIVE_INFINITY)
          .map((x) => [
            batchLabel(x.range),
            fmt(x.count),
            `${fmt((x.count / Math.max(1, batch.count)) * 100, 1)} %`,
            '#'.repeat(Math.round((x.count / Math.max(1, batch.count)) * 40)),
          ]),
      ]),
    );
    log(
      `server-side mean debit handling time (Fastify onResponse): ${fmt((serverSide.mean ?? 0) * 1000, 2)} ms`,
    );
    log();
    log(
      `reconcile: ${m ? `${m[1]} entries, ${m[2]} accounts, ${m[3]} grants: ${m[4]}` : 'unparsed'} (exit ${reconcile.exitCode})`,
    );
    log(
      `verdict: throughput ${fmt(throughputRatio * 100, 1)} % of ceiling (target ≥ 50 %: ${met.throughput ? 'met' : 'NOT met'}); ` +
        `p99 ${fmt(p99Ratio, 2)}× ceiling (target ≤ 2×: ${met.p99 ? 'met' : 'NOT met'})`,
    );

    let profile = null;
    if (PROFILE) {
      const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
      const newest = files
        .map((f) => join(profileDir, f))
        .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
      if (newest) {
        // only the measured window: skip start-up, seeding and warm-up
        const onlyAfterMs = bdRun.windowStart - bdSpawnedAt;
        profile = summariseProfile(JSON.parse(readFileSync(newest, 'utf8')), { top: 30, onlyAfterMs });
        profile.file = newest;
        log();
        log(`CPU profile of Burndown, measured window only (from ${onlyAfterMs} ms after spawn): ${newest}`);
        log(profile.text);
      } else log('no .cpuprofile was written');
    }

    const results = {
      benchmark: 'debits',
      date: startedAt.toISOString(),
      machine: mach,
      code: provenance(),
      contaminatedByOtherProcesses: noisy,
      sharedMachine:
        'autocannon, the bare server and Burndown all run on this machine; the bare server and Burndown run one after the other',
      profiled: PROFILE,
      config: {
        connections: CONNECTIONS,
        pipelining: 1,
        keepAlive: true,
        warmupSec: WARMUP,
        durationSec: SECONDS,
        customers: CUSTOMERS,
        grantsPerCustomer: GRANTS,
        debitAmount: DEBIT_AMOUNT,
        durability: 'SQLite WAL, synchronous=FULL (defaults), group commit',
        database: 'fresh file under os.tmpdir()',
      },
      seeding: { customers: seeded.customers.length, grants: seeded.grants, seconds: seedSec },
      bare: b,
      burndown: d,
      ratios: { throughput: throughputRatio, p50: d.latencyMs.p50 / b.latencyMs.p50, p99: p99Ratio },
      targets: TARGETS,
      met,
      groupCommit: {
        commits: batch.count,
        commitsPerSec: batch.count / d.durationSec,
        writes: batch.sum,
        meanBatch: batch.mean,
        p50BatchUpperBound: batch.p50UpperBound,
        p99BatchUpperBound: batch.p99UpperBound,
        distribution: batch.buckets.map((x) => ({ size: batchLabel(x.range), commits: x.count })),
      },
      serverSideDebitMeanMs: serverSide.mean === null ? null : serverSide.mean * 1000,
      ledger: {
        reconcileExitCode: reconcile.exitCode,
        reconcileOutput: reconcile.stdout.trim(),
        ok: reconcile.exitCode === 0 && m?.[4] === 'OK',
        entries: m ? Number(m[1]) : null,
        accounts: m ? Number(m[2]) : null,
        grants: m ? Number(m[3]) : null,
        debitRows,
        entryRows,
        acknowledgedDebits: acknowledged,
        uncountedInFlight: debitRows - acknowledged,
        debitsConsistentWithAcknowledged: debitsConsistent,
      },
      ...(profile
        ? {
            profile: {
              file: profile.file,
              totalMs: profile.totalMs,
              busyMs: profile.busyMs,
              byArea: profile.byArea,
              top: profile.top,
              topInclusive: profile.topInclusive,
            },
          }
        : {}),
    };
    const out = join(here, 'results', PROFILE ? 'latest-debits-profile.json' : 'latest-debits.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    log();
    log(`wrote ${out}`);
    if (!results.ledger.ok || !debitsConsistent) process.exitCode = 1;
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
