// Compares builds over HTTP on a machine whose speed drifts (this VM: ±20 % within minutes), by the
// figure that drifts least: the CPU the server's main thread spends per request (from
// /proc/<pid>/task/<pid>/stat), beside throughput and the whole process's CPU. The builds run
// one after the other, alternated round by round, each against its own copy of a database it
// seeded itself (schemas may differ between builds; the seeding server runs until its outbox is
// fanned out, so the rounds measure steady state), with wrk as the load (1 thread,
// BENCH_CONNECTIONS connections). Each round prints p50, p99 and the slowest request; medians per
// build are printed at the end, with the SQLite commit batch size when the build's /metrics has it
// (public metrics: BURNDOWN_METRICS_PUBLIC=1).
//
//   npm run build && node bench/compare-builds.mjs <dist>[@<node flags>] [<dist>[@<node flags>] …]
//   e.g. node bench/compare-builds.mjs dist@--max-semi-space-size=16 dist@--max-semi-space-size=64
//   e.g. git worktree add /tmp/old f4598f6 && (cd /tmp/old && npm ci && npx tsc -p tsconfig.build.json)
//        node bench/compare-builds.mjs /tmp/old/dist dist
//
// Knobs: BENCH_TARGET (debits: POST a debit of 1.5 to a random customer, the default; customer:
// GET a random customer, the HTTP layer alone; check: POST /v1/check of 3 uses of a
// credits_per_use feature that every customer's plan includes, as in bench/wrk.mjs; events: POST
// batches of BENCH_BATCH (1000) native events, each with an explicit `time` so that older builds
// accept them too, over BENCH_CUSTOMERS (10,000 for events) customers with one grant each, a sum
// meter and a per-unit rate, like bench/wrk.mjs; its figures are per event), BENCH_INTERLEAVE (1: all
// servers up at once, rounds alternating between them; see below), BENCH_ROUNDS (3), BENCH_SECONDS (6),
// BENCH_WARMUP_SECONDS (2), BENCH_CONNECTIONS (50), BENCH_CUSTOMERS (1000, with BENCH_GRANTS 12
// grants each), BENCH_WRK, BENCH_NODE_ARGS (extra Node flags for the measured servers, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them). Writes bench/results/latest-compare.json.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  API_KEY,
  commitBatchStats,
  cpuSecondsOf,
  createRequester,
  customerId,
  fmt,
  here,
  log,
  machine,
  num,
  provenance,
  runWrk,
  seedCheckPlan,
  seedCustomers,
  startChild,
  table,
  WRK_DONE,
  waitForOutboxDrained,
} from './lib.mjs';

const TARGET = process.env.BENCH_TARGET || 'debits';
const EVENTS = TARGET === 'events';
const BATCH = num('BENCH_BATCH', 1000);
/** Operations per request: figures are per event for the events target, per request otherwise. */
const PER = EVENTS ? BATCH : 1;
const UNIT = EVENTS ? 'event' : 'req';
const ROUNDS = num('BENCH_ROUNDS', 3);
const SECONDS = num('BENCH_SECONDS', 6);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = num('BENCH_CONNECTIONS', EVENTS ? 6 : 50);
const CUSTOMERS = num('BENCH_CUSTOMERS', EVENTS ? 10_000 : 1000);
const GRANTS = num('BENCH_GRANTS', EVENTS ? 1 : 12);
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/**
 * BENCH_INTERLEAVE=1: every build's server is started once and stays up; the rounds alternate
 * between them (order reversed every other round). Use short rounds and many of them
 * (BENCH_SECONDS=2 BENCH_ROUNDS=20): this VM's slow spells last tens of seconds, longer than a
 * round, so builds measured minutes apart, one restart each, see different machines.
 */
const INTERLEAVE = process.env.BENCH_INTERLEAVE === '1';

/**
 * Each argument is a build's dist, optionally followed by `@` and the Node flags its servers start
 * with instead of SERVE_NODE_FLAGS (`dist@--max-semi-space-size=16`, `dist@` for none): the same
 * build under two settings compares like two builds.
 */
const specs = process.argv.slice(2).map((arg) => {
  const at = arg.indexOf('@');
  const dist = resolve(at < 0 ? arg : arg.slice(0, at));
  const flags =
    at < 0
      ? null
      : arg
          .slice(at + 1)
          .split(' ')
          .filter((f) => f !== '');
  return { label: at < 0 ? dist : `${dist}@${arg.slice(at + 1)}`, dist, flags };
});
const builds = specs.map((s) => s.label);
const distOf = new Map(specs.map((s) => [s.label, s]));
if (builds.length === 0 || !['debits', 'customer', 'check', 'events'].includes(TARGET)) {
  process.stderr.write(
    'usage: [BENCH_TARGET=debits|customer|check|events] node bench/compare-builds.mjs <dist> [<dist> …]\n',
  );
  process.exit(2);
}
for (const { dist } of specs) {
  if (!existsSync(join(dist, 'cli', 'main.js')))
    throw new Error(`${dist}/cli/main.js not found: build it first`);
}

const HEADERS = `wrk.headers["Authorization"] = "Bearer ${API_KEY}"
wrk.headers["Content-Type"] = "application/json"
local paths = {}
for i = 0, ${CUSTOMERS - 1} do paths[#paths + 1] = string.format("/v1/customers/bench-cust-%05d${TARGET === 'debits' ? '/debits' : ''}", i) end
request = function() return wrk.format(nil, paths[math.random(#paths)]) end
`;
/** Batches of native events with fresh ids, random customers and data, stamped with the current second. */
const EVENTS_SCRIPT = `wrk.headers["Authorization"] = "Bearer ${API_KEY}"
wrk.headers["Content-Type"] = "application/json"
wrk.method = "POST"
local models = { "gpt-x", "gpt-x-mini", "claude-y", "llama-z" }
local sent = 0
local tag = "c__RUN_TAG__"
request = function()
  local parts = {}
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  for i = 1, ${BATCH} do
    sent = sent + 1
    parts[i] = string.format('{"id":"%s-%d","type":"llm.tokens","customer_id":"bench-cust-%05d","time":"%s","data":{"model":"%s","tokens":%d}}',
      tag, sent, math.random(0, ${CUSTOMERS - 1}), now, models[math.random(4)], math.random(1, 2000))
  end
  return wrk.format(nil, "/v1/events", nil, "[" .. table.concat(parts, ",") .. "]")
end
`;
/** A check of 3 uses of the plan's feature by a uniformly random customer. */
const CHECK_SCRIPT = `wrk.headers["Authorization"] = "Bearer ${API_KEY}"
wrk.headers["Content-Type"] = "application/json"
wrk.method = "POST"
request = function()
  local body = string.format('{"customer_id":"bench-cust-%05d","feature_id":"bench-gen","quantity":"3"}', math.random(0, ${CUSTOMERS - 1}))
  return wrk.format(nil, "/v1/check", nil, body)
end
`;
const SCRIPT = EVENTS
  ? `${EVENTS_SCRIPT}${WRK_DONE}`
  : TARGET === 'check'
    ? `${CHECK_SCRIPT}${WRK_DONE}`
    : `${TARGET === 'debits' ? `wrk.method = "POST"\nwrk.body = '{"amount":"1.5"}'\n` : ''}${HEADERS}${WRK_DONE}`;

const dir = mkdtempSync(join(os.tmpdir(), 'burndown-compare-'));
const wrk = (url, seconds) => runWrk(url, SCRIPT, seconds, CONNECTIONS, dir);

/**
 * Bytes the process has handed to write(2) and its kin so far (`wchar` of /proc/<pid>/io): its WAL
 * frames, the checkpoints that copy them into the database file, and its sockets' answers. NaN where
 * /proc cannot tell.
 */
function bytesWrittenBy(pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** Below this many cores, the servers are idle (their timers and checkpoint worker ticking). */
const SETTLED_CORES = 0.03;

/**
 * Waits until the servers together use less than {@link SETTLED_CORES} over 200 ms (at most
 * BENCH_SETTLE_SECONDS, 5): after a round a server may still checkpoint its WAL, sync, or
 * collect garbage, and without a wait that work falls into the next round. Without it, the
 * build measured right after a round of its own (first in a pass, as the order alternates) came
 * out up to 13 % slower than when it followed another build.
 */
async function settle(pids) {
  const deadline = Date.now() + num('BENCH_SETTLE_SECONDS', 5) * 1000;
  while (Date.now() < deadline) {
    const before = pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
    await new Promise((r) => setTimeout(r, 200));
    const used = pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0) - before;
    if (used / 0.2 < SETTLED_CORES) return;
  }
}

/** CPU µs (user + system) of one thread, or of the whole process when `tid` is omitted. */
const cpuMicrosOf = (pid, tid) => cpuSecondsOf(pid, tid) * 1e6;

function serve(build, dbPath, nodeArgs = []) {
  const { dist, flags } = distOf.get(build);
  return startChild(
    'burndown',
    [...nodeArgs, join(dist, 'cli', 'main.js'), 'serve'],
    {
      PORT: '0',
      BURNDOWN_API_KEY: API_KEY,
      BURNDOWN_DATABASE_URL: `sqlite:${dbPath}`,
      BURNDOWN_LOG_LEVEL: 'warn',
      BURNDOWN_METRICS_PUBLIC: '1',
    },
    flags ?? undefined,
  );
}

/** The meter and rate of the events target (the shape of bench/wrk.mjs's). */
async function seedRating(url) {
  const meter = await request(url, 'POST', '/v1/meters', {
    id: 'bench-tokens',
    event_type: 'llm.tokens',
    aggregation: 'sum',
    value_property: '$.tokens',
    group_by: { model: '$.model' },
  });
  const rate = await request(url, 'POST', '/v1/rates', {
    id: 'bench-tokens-all',
    meter_id: 'bench-tokens',
    filter: {},
    credit_type: 'credits',
    credits_per_unit: '0.001',
  });
  if (meter.status !== 201 || rate.status !== 201)
    throw new Error(`seeding the rating failed: ${meter.status} ${meter.text} / ${rate.status} ${rate.text}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(`Compare builds over HTTP (${TARGET}) — ${new Date().toISOString()}`);
const mach = machine();
log(
  `machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}; ${ROUNDS} rounds of ${SECONDS} s, ${CONNECTIONS} connections`,
);
const { request } = createRequester(API_KEY);
const templates = [];
try {
  for (const [i, dist] of builds.entries()) {
    const template = join(dir, `template-${i}.db`);
    const server = serve(dist, template);
    const url = await server.url;
    const ids = Array.from({ length: CUSTOMERS }, (_, c) => customerId(c));
    await seedCustomers({
      request,
      baseUrls: [url],
      ids,
      grants: GRANTS,
      grantAmount: EVENTS ? '1000000000' : '1000000',
    });
    if (EVENTS) await seedRating(url);
    if (TARGET === 'check') await seedCheckPlan(request, url, ids);
    // Each round starts on a copy of this file: drained here, the rounds measure steady state.
    const drained = await waitForOutboxDrained(url);
    await server.stop();
    templates.push(template);
    log(
      `  seeded ${fmt(CUSTOMERS)} customers × ${GRANTS} grants for ${dist} (outbox drained in ${fmt(drained, 0)} s)`,
    );
  }
  const runs = builds.map(() => []);
  /** One measured window of wrk against build `i`'s running server, logged and returned. */
  const measure = async (i, url, pid, round) => {
    const dist = builds[i];
    const batches0 = await commitBatchStats(url);
    const main0 = cpuMicrosOf(pid, pid);
    const all0 = cpuMicrosOf(pid);
    const written0 = bytesWrittenBy(pid);
    const w = await wrk(url, SECONDS);
    const main1 = cpuMicrosOf(pid, pid);
    const all1 = cpuMicrosOf(pid);
    const written1 = bytesWrittenBy(pid);
    const batches1 = await commitBatchStats(url);
    const operations = w.requests * PER;
    const run = {
      reqPerSec: operations / SECONDS,
      p50Ms: w.p50Us / 1000,
      p99Ms: w.p99Us / 1000,
      maxMs: w.maxUs / 1000,
      nonOk: w.status,
      operations,
      mainThreadMicros: main1 - main0,
      mainThreadMicrosPerRequest: (main1 - main0) / operations,
      processMicrosPerRequest: (all1 - all0) / operations,
      writtenKiBPerRequest: (written1 - written0) / 1024 / operations,
      commitBatch:
        batches0 && batches1 && batches1.count > batches0.count
          ? (batches1.sum - batches0.sum) / (batches1.count - batches0.count)
          : null,
    };
    log(
      `  round ${round + 1} ${dist}: ${fmt(run.reqPerSec)} ${UNIT}/s, p50 ${fmt(run.p50Ms, 2)} ms, p99 ${fmt(run.p99Ms, 2)} ms, max ${fmt(run.maxMs, 1)} ms, main thread ${fmt(run.mainThreadMicrosPerRequest, 1)} µs/${UNIT}, ` +
        `process ${fmt(run.processMicrosPerRequest, 1)} µs/${UNIT}, written ${fmt(run.writtenKiBPerRequest, 1)} KiB/${UNIT}${run.commitBatch === null ? '' : `, commit batch ${fmt(run.commitBatch, 1)}`}, non-2xx ${run.nonOk}`,
    );
    return run;
  };
  /** Build `i`'s server on a fresh copy of its seeded file, warmed up. */
  const start = async (i, dbPath) => {
    for (const suffix of ['', '-wal', '-shm']) rmSync(dbPath + suffix, { force: true });
    copyFileSync(templates[i], dbPath);
    const server = serve(builds[i], dbPath, NODE_ARGS);
    const url = await server.url;
    await wrk(url, WARMUP);
    return { server, url, pid: server.child.pid };
  };
  if (INTERLEAVE) {
    // Every build's server runs for the whole comparison; the rounds alternate between them,
    // the order reversed every other round, so slow spells of the machine fall on all alike.
    const live = [];
    try {
      for (const i of builds.keys()) live.push(await start(i, join(dir, `run-${i}.db`)));
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [...builds.keys()] : [...builds.keys()].reverse();
        for (const i of order) {
          // What a round leaves behind (checkpoints, syncs, garbage collection) must not run
          // into the next round, which may be another build's.
          await settle(live.map((l) => l.pid));
          runs[i].push(await measure(i, live[i].url, live[i].pid, round));
        }
      }
    } finally {
      for (const { server } of live) await server.stop();
    }
  } else {
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of builds.keys()) {
        const { server, url, pid } = await start(i, join(dir, 'run.db'));
        runs[i].push(await measure(i, url, pid, round));
        await server.stop();
      }
    }
  }
  const summary = builds.map((dist, i) => {
    const pick = (k) => median(runs[i].map((r) => r[k]));
    const batches = runs[i].map((r) => r.commitBatch).filter((b) => b !== null);
    return {
      build: dist,
      reqPerSec: pick('reqPerSec'),
      p99Ms: pick('p99Ms'),
      mainThreadMicrosPerRequest: pick('mainThreadMicrosPerRequest'),
      processMicrosPerRequest: pick('processMicrosPerRequest'),
      /** Over all rounds: their main-thread CPU summed, over their operations summed. */
      mainThreadMicrosPerRequestOverall:
        runs[i].reduce((sum, r) => sum + r.mainThreadMicros, 0) /
        runs[i].reduce((sum, r) => sum + r.operations, 0),
      commitBatch: batches.length > 0 ? median(batches) : null,
    };
  });
  log('');
  log(`medians of ${ROUNDS} rounds (${TARGET})${INTERLEAVE ? ', servers interleaved' : ''}`);
  log(
    table([
      [
        'build',
        `${UNIT}/s`,
        'p99 ms',
        `main thread µs/${UNIT}`,
        'overall',
        `process µs/${UNIT}`,
        'commit batch',
      ],
      ...summary.map((s) => [
        s.build,
        fmt(s.reqPerSec),
        fmt(s.p99Ms, 2),
        fmt(s.mainThreadMicrosPerRequest, 1),
        fmt(s.mainThreadMicrosPerRequestOverall, 1),
        fmt(s.processMicrosPerRequest, 1),
        s.commitBatch === null ? '—' : fmt(s.commitBatch, 1),
      ]),
    ]),
  );
  writeFileSync(
    join(here, 'results', 'latest-compare.json'),
    `${JSON.stringify({ target: TARGET, machine: mach, provenance: provenance(), rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, summary, runs }, null, 2)}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
