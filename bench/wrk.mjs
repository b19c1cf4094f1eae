// HTTP ratios measured with wrk (C, one thread) instead of the Node load generators, which take a
// core of their own on a 2-core machine (issue #10). In one run, one after the other on the same
// machine: the bare `node:http` ceiling (bare-server.mjs), SQLite debits, the entitlement check
// `POST /v1/check` (credits_per_use feature) and event ingest (`POST /v1/events`, batches of
// BENCH_BATCH events over BENCH_EVENT_CUSTOMERS customers: a Lua script builds each batch with
// fresh ids, so wrk can express batches). Every target gets 1 wrk thread and BENCH_CONNECTIONS
// keep-alive connections; each window records the server's CPU per request (from /proc).
//
//   npm run build && node bench/wrk.mjs
//   BENCH_TARGETS=bare,debits node bench/wrk.mjs    (a subset: bare, debits, check, events, split)
//   BENCH_TARGETS=bare,debits,split node bench/wrk.mjs    (split: not the server, the upper bound of a
//     design with the debit use case on a worker thread, bench/split-thread.mjs; not in the default set)
//
// Knobs: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_CONNECTIONS (50; events: BENCH_EVENT_CONNECTIONS, 6),
// BENCH_CUSTOMERS (1000, 12 grants each for debits and checks), BENCH_EVENT_CUSTOMERS (10000),
// BENCH_BATCH (1000), BENCH_QUIET_WAIT_SECONDS (10), BENCH_WRK (path of wrk, default `wrk`),
// BENCH_PROFILE (1: profile the server; summarise with cpuprofile-top.mjs), BENCH_NODE_ARGS (flags for
// the server's node, e.g. --perf-basic-prof for `perf record -p`).
// Writes bench/results/latest-wrk.json.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  API_KEY,
  cli,
  cpuSecondsOf,
  createRequester,
  customerId,
  fmt,
  here,
  log,
  machine,
  num,
  pool,
  provenance,
  runReconcile,
  runWrk,
  seedCustomers,
  startChild,
  startCpuWindow,
  table,
  WRK_DONE,
  waitForQuiet,
} from './lib.mjs';

const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = num('BENCH_CONNECTIONS', 50);
const EVENT_CONNECTIONS = num('BENCH_EVENT_CONNECTIONS', 6);
const CUSTOMERS = num('BENCH_CUSTOMERS', 1000);
const GRANTS = num('BENCH_GRANTS', 12);
const EVENT_CUSTOMERS = num('BENCH_EVENT_CUSTOMERS', 10_000);
const BATCH = num('BENCH_BATCH', 1000);
const QUIET_WAIT = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 10);
const TARGETS = (process.env.BENCH_TARGETS || 'bare,debits,check,events').split(',');

// ---------------------------------------------------------------------------------------------
// wrk and its Lua scripts

const HEADERS = `
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer ${API_KEY}"
wrk.headers["Content-Type"] = "application/json"
`;

/** A debit of 1.5 to a uniformly random customer (the bare server gets the same requests). */
const debitsLua = (customers) => `${HEADERS}
local paths = {}
for i = 0, ${customers - 1} do paths[#paths + 1] = string.format("/v1/customers/bench-cust-%05d/debits", i) end
math.randomseed(${Date.now() % 100000})
request = function()
  return wrk.format(nil, paths[math.random(#paths)], nil, '{"amount":"1.5"}')
end
${WRK_DONE}`;

/** POST /v1/check of 3 uses of a credits_per_use feature by a uniformly random customer. */
const checkLua = (customers) => `${HEADERS}
math.randomseed(${(Date.now() + 1) % 100000})
request = function()
  local body = string.format('{"customer_id":"bench-cust-%05d","feature_id":"bench-gen","quantity":"3"}', math.random(0, ${customers - 1}))
  return wrk.format(nil, "/v1/check", nil, body)
end
${WRK_DONE}`;

/** A batch of native events with fresh ids (no time: the server stamps receive time), random customers and data. */
const eventsLua = (customers, batch) => `${HEADERS}
local models = { "gpt-x", "gpt-x-mini", "claude-y", "llama-z" }
local sent = 0
local tag = "w__RUN_TAG__"
math.randomseed(${(Date.now() + 2) % 100000})
request = function()
  local parts = {}
  for i = 1, ${batch} do
    sent = sent + 1
    parts[i] = string.format('{"id":"%s-%d","type":"llm.tokens","customer_id":"bench-cust-%05d","data":{"model":"%s","tokens":%d}}',
      tag, sent, math.random(0, ${customers - 1}), models[math.random(4)], math.random(1, 2000))
  end
  return wrk.format(nil, "/v1/events", nil, "[" .. table.concat(parts, ",") .. "]")
end
${WRK_DONE}`;

/** Warm-up (discarded), a wait for a quiet machine, then the measured window with CPU accounting. */
async function measure(label, url, pid, script, connections, dir) {
  log(`  ${label}: warm-up ${WARMUP} s …`);
  await runWrk(url, script, WARMUP, connections, dir);
  const quiet = await waitForQuiet(label, pid, QUIET_WAIT);
  log(`  ${label}: measuring ${SECONDS} s, wrk 1 thread, ${connections} connections …`);
  const server0 = cpuSecondsOf(pid);
  const cpu = startCpuWindow(
    () => cpuSecondsOf(pid),
    () => [pid],
  );
  const r = await runWrk(url, script, SECONDS, connections, dir);
  const usage = cpu.stop();
  const serverCpuSec = cpuSecondsOf(pid) - server0;
  const seconds = r.durationUs / 1e6;
  const ok = r.requests - r.status;
  const figures = {
    tool: 'wrk -t1',
    connections,
    reqPerSec: r.requests / seconds,
    okPerSec: ok / seconds,
    requests: r.requests,
    non2xx: r.status,
    socketErrors: r.connect + r.read + r.write + r.timeout,
    latencyMs: {
      mean: r.meanUs / 1000,
      p50: r.p50Us / 1000,
      p90: r.p90Us / 1000,
      p99: r.p99Us / 1000,
      max: r.maxUs / 1000,
    },
    serverCpuMicrosPerRequest: (serverCpuSec * 1e6) / Math.max(1, r.requests),
    cpu: {
      serverCores: usage.underTestCores,
      otherProcessesCores: usage.otherProcessesCores,
      machineBusyCores: usage.machineBusyCores,
      quietBeforeStart: quiet.quiet,
    },
  };
  log(
    `  ${label}: ${fmt(figures.reqPerSec)} req/s, p50 ${fmt(figures.latencyMs.p50, 2)} ms, p99 ${fmt(figures.latencyMs.p99, 2)} ms, ` +
      `non-2xx ${fmt(r.status)}, server ${fmt(figures.serverCpuMicrosPerRequest, 1)} µs CPU per request, ` +
      `other processes ${fmt(usage.otherProcessesCores, 2)} cores`,
  );
  return figures;
}

async function startBurndown(dbPath) {
  // BENCH_PROFILE=1: the server runs under --cpu-prof (written to results/profile/ when it stops);
  // profiled figures are slowed down, do not quote them.
  const profile =
    process.env.BENCH_PROFILE === '1'
      ? ['--cpu-prof', `--cpu-prof-dir=${join(here, 'results', 'profile')}`]
      : [];
  // BENCH_NODE_ARGS: more flags for the server's node (e.g. --perf-basic-prof for `perf record`).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const bd = startChild('burndown', [...profile, ...nodeArgs, cli, 'serve'], {
    PORT: '0',
    BURNDOWN_API_KEY: API_KEY,
    BURNDOWN_DATABASE_URL: `sqlite:${dbPath}`,
    BURNDOWN_LOG_LEVEL: 'warn',
  });
  return { bd, url: await bd.url };
}

async function main() {
  const mach = machine();
  log(`Burndown HTTP benchmark with wrk — ${new Date().toISOString()}`);
  log(`machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}; targets ${TARGETS.join(', ')}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'burndown-wrk-'));
  const { request, agent } = createRequester(API_KEY);
  const must = async (what, status, promise) => {
    const r = await promise;
    if (r.status !== status) throw new Error(`seeding failed: ${what} → ${r.status} ${r.text.slice(0, 300)}`);
  };
  const results = {};
  const children = [];
  try {
    if (TARGETS.includes('bare')) {
      log('[bare] node:http ceiling');
      const bare = startChild('bare-server', [join(here, 'bare-server.mjs')], { PORT: '0' });
      children.push(bare);
      const url = await bare.url;
      results.bare = await measure('bare', url, bare.child.pid, debitsLua(CUSTOMERS), CONNECTIONS, dir);
      await bare.stop();
    }
    if (TARGETS.includes('debits') || TARGETS.includes('check')) {
      const dbPath = join(dir, 'ledger.db');
      log(`[debits, check] Burndown on sqlite:${dbPath}`);
      const { bd, url } = await startBurndown(dbPath);
      children.push(bd);
      const ids = Array.from({ length: CUSTOMERS }, (_, i) => customerId(i));
      await seedCustomers({ request, baseUrls: [url], ids, grants: GRANTS, grantAmount: '1000000' });
      if (TARGETS.includes('check')) {
        await must(
          'feature',
          201,
          request(url, 'POST', '/v1/features', { id: 'bench-gen', type: 'metered', credits_per_use: '0.5' }),
        );
        const plan = {
          id: 'bench-pro',
          name: 'Bench Pro',
          entitlements: [{ feature_id: 'bench-gen' }],
          price: { amount: '29.00', currency: 'USD' },
        };
        await must('plan', 201, request(url, 'POST', '/v1/plans', plan));
        await pool(ids, 32, (id) =>
          must(
            `subscription of ${id}`,
            201,
            request(url, 'POST', `/v1/customers/${id}/subscriptions`, { plan_id: plan.id }),
          ),
        );
      }
      log(`  seeded ${fmt(CUSTOMERS)} customers × ${GRANTS} grants`);
      if (TARGETS.includes('debits'))
        results.debits = await measure('debits', url, bd.child.pid, debitsLua(CUSTOMERS), CONNECTIONS, dir);
      if (TARGETS.includes('check'))
        results.check = await measure('check', url, bd.child.pid, checkLua(CUSTOMERS), CONNECTIONS, dir);
      await bd.stop();
      const reconcile = await runReconcile(`sqlite:${dbPath}`);
      log(`  reconcile exit ${reconcile.exitCode}`);
      results.ledgerReconciles = reconcile.exitCode === 0;
    }
    if (TARGETS.includes('split')) {
      // Not the server: the upper bound of a design with SQL and the use case on a worker thread.
      const dbPath = join(dir, 'split.db');
      log(
        `[split] bench/split-thread.mjs: HTTP on one thread, the debit use case on a worker (sqlite:${dbPath})`,
      );
      const split = startChild('split', [join(here, 'split-thread.mjs'), join(here, '..', 'dist'), dbPath], {
        PORT: '0',
        BENCH_CUSTOMERS: String(CUSTOMERS),
        BENCH_GRANTS: String(GRANTS),
      });
      children.push(split);
      const url = await split.url;
      results.split = await measure('split', url, split.child.pid, debitsLua(CUSTOMERS), CONNECTIONS, dir);
      await split.stop();
      const reconcile = await runReconcile(`sqlite:${dbPath}`);
      log(`  reconcile exit ${reconcile.exitCode}`);
      results.splitLedgerReconciles = reconcile.exitCode === 0;
    }
    if (TARGETS.includes('events')) {
      const dbPath = join(dir, 'events.db');
      log(`[events] Burndown on sqlite:${dbPath}`);
      const { bd, url } = await startBurndown(dbPath);
      children.push(bd);
      const ids = Array.from({ length: EVENT_CUSTOMERS }, (_, i) => customerId(i));
      await seedCustomers({ request, baseUrls: [url], ids, grants: 1, grantAmount: '1000000000' });
      await must(
        'meter',
        201,
        request(url, 'POST', '/v1/meters', {
          id: 'bench-tokens',
          event_type: 'llm.tokens',
          aggregation: 'sum',
          value_property: '$.tokens',
          group_by: { model: '$.model' },
        }),
      );
      await must(
        'rate',
        201,
        request(url, 'POST', '/v1/rates', {
          id: 'bench-tokens-all',
          meter_id: 'bench-tokens',
          filter: {},
          credit_type: 'credits',
          credits_per_unit: '0.001',
        }),
      );
      log(`  seeded ${fmt(EVENT_CUSTOMERS)} customers, a meter and a rate`);
      const figures = await measure(
        'events',
        url,
        bd.child.pid,
        eventsLua(EVENT_CUSTOMERS, BATCH),
        EVENT_CONNECTIONS,
        dir,
      );
      figures.eventsPerSec = figures.okPerSec * BATCH;
      figures.serverCpuMicrosPerEvent = figures.serverCpuMicrosPerRequest / BATCH;
      log(
        `  events: ${fmt(figures.eventsPerSec)} events/s, ${fmt(figures.serverCpuMicrosPerEvent, 1)} µs server CPU per event`,
      );
      results.events = figures;
      await bd.stop();
      const reconcile = await runReconcile(`sqlite:${dbPath}`);
      log(`  reconcile exit ${reconcile.exitCode}`);
      results.eventsLedgerReconciles = reconcile.exitCode === 0;
    }
  } finally {
    agent.destroy();
    await Promise.allSettled(children.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  const bare = results.bare?.reqPerSec;
  const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'server µs CPU/req', '÷ bare', 'other cores']];
  for (const [name, f] of Object.entries(results)) {
    if (typeof f !== 'object') continue;
    rows.push([
      name,
      fmt(f.reqPerSec),
      fmt(f.latencyMs.p50, 2),
      fmt(f.latencyMs.p99, 2),
      fmt(f.serverCpuMicrosPerRequest, 1),
      bare && name !== 'bare' && name !== 'events' ? `${fmt((100 * f.reqPerSec) / bare, 1)} %` : '',
      fmt(f.cpu.otherProcessesCores, 2),
    ]);
  }
  log();
  log(table(rows));
  writeFileSync(
    join(here, 'results', 'latest-wrk.json'),
    `${JSON.stringify({ at: new Date().toISOString(), machine: mach, code: provenance(), results }, null, 2)}\n`,
  );
  if (
    results.ledgerReconciles === false ||
    results.eventsLedgerReconciles === false ||
    results.splitLedgerReconciles === false
  )
    process.exitCode = 1;
}

await main();
