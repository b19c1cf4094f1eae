// CPU per operation of the write path, in process (no HTTP, no load generator): the figure to
// compare builds by on a shared machine, where throughput is noise but the CPU one operation costs
// moves much less. Two workloads on a fresh durable SQLite file (WAL, synchronous=FULL, group commit):
//   - ingest: BENCH_BATCHES batches of 1,000 events over 10,000 customers (the shape of
//     bench/events.mjs: a sum meter of $.tokens by model, one rate of 0.001 credits per token,
//     one grant each), BENCH_CLIENTS batches in flight, through `ingestEvents`;
//   - debits: BENCH_DEBITS debits of 1.5 over 1,000 customers with 12 grants each (the shape of
//     bench/debits.mjs), BENCH_DEBIT_CLIENTS (50) in flight, through `runWrite(debitCommand)` as the
//     route calls it (fewer in flight: smaller commit batches, each commit's fixed cost shared by fewer).
// Prints process CPU (user + system, from process.cpuUsage) per event and per debit (and the main
// thread's alone, and the writes per commit), over the
// measured part only (seeding and a warm-up are excluded), and the best and median of BENCH_ROUNDS.
// Usage: npm run build && node bench/cpu-per-op.mjs [--dist <another build>/dist …] [ingest|debits]
//   node bench/cpu-per-op.mjs --interleave --dist <a>/dist --dist <b>/dist   (debits of the builds
//     in alternating slices in one process: BENCH_SLICE debits (500) × BENCH_SLICES passes (40))
//   BENCH_CPU_PROFILE=/tmp/prof node bench/cpu-per-op.mjs ingest   (a profile of each measured window)
//   BENCH_INGEST_BODIES=1 node bench/cpu-per-op.mjs ingest   (batches parsed from JSON text, as the route does)
//   node --cpu-prof --cpu-prof-dir=bench/results/profile/cpu-per-op bench/cpu-per-op.mjs ingest
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuSecondsOf, num, root } from './lib.mjs';

const args = process.argv.slice(2);
/** Every `--dist <build>/dist` given (default: this checkout's dist). */
const dists = args.flatMap((a, i) => (args[i - 1] === '--dist' ? [a] : []));
if (dists.length === 0) dists.push(join(root, 'dist'));
const which = args.filter((a, i) => a !== '--dist' && args[i - 1] !== '--dist' && a !== '--interleave');
const want = (name) => which.length === 0 || which.includes(name);

/** One build's modules, loaded from its dist: several builds can run side by side in one process. */
async function loadBuild(dist) {
  const load = (path) => import(pathToFileURL(join(dist, path)).href);
  return {
    dist,
    Amount: (await load('domain/amount/amount.js')).Amount,
    TimeOrderedIds: (await load('infra/ids.js')).TimeOrderedIds,
    SqliteStorage: (await load('storage/sqlite/sqlite-storage.js')).SqliteStorage,
    createCustomer: (await load('services/customers.js')).createCustomer,
    ...(await load('services/ledger.js')),
    ...(await load('services/metering.js')),
    presentDebit: (await load('http/presenters.js')).presentDebit,
    // Builds before 58133f7 present the debit's answer as an object only.
    presentDebitText: (await load('http/presenters.js')).presentDebitText,
    parseNativeEvent: (await load('http/event-parsing.js')).parseNativeEvent,
    // Builds before the unit of work (f4598f6) have no commands: the route wrote through storage itself.
    commands: await load('services/commands.js').catch(() => null),
    unitOfWork: await load('services/unit-of-work.js').catch(() => null),
  };
}
const builds = [];
for (const dist of dists) builds.push(await loadBuild(dist));

const ROUNDS = num('BENCH_ROUNDS', 3);
const BATCHES = num('BENCH_BATCHES', 30);
const CLIENTS = num('BENCH_CLIENTS', 6);
const DEBITS = num('BENCH_DEBITS', 20_000);
// Debits in flight: SQLite's group commit batches about this many writes per transaction.
const DEBIT_CLIENTS = num('BENCH_DEBIT_CLIENTS', 50);
const WS = 'default';
const DAY = 86_400_000;

/** Deterministic pseudo-random numbers (mulberry32), so every build sees the same workload. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
/** CPU of the main thread alone (µs): the rest of the process's is other threads'. */
const mainThreadMicros = () => cpuSecondsOf(process.pid, process.pid) * 1e6;
/** A fresh durable SQLite file opened by build `b`; `counter.commits` counts its commits (batches). */
async function openStore(b) {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-cpu-per-op-'));
  const counter = { commits: 0 };
  const storage = await b.SqliteStorage.open({
    path: join(dir, 'bench.db'),
    onBatch: () => counter.commits++,
  });
  const ctx = { storage, clock: { now: () => Date.now() }, ids: new b.TimeOrderedIds(() => Date.now()) };
  return { dir, storage, ctx, counter };
}

async function seedCustomers(b, ctx, count, grantsEach, random) {
  const now = Date.now();
  const ids = [];
  for (let start = 0; start < count; start += 100) {
    const chunk = [];
    for (let i = start; i < Math.min(count, start + 100); i++) chunk.push(`cust-${i}`);
    await Promise.all(
      chunk.map((id) =>
        ctx.storage.write(`${WS}/${id}`, async (tx) => {
          await tx.ensureWorkspace(WS, now);
          await b.createCustomer(tx, { workspaceId: WS, id, name: null, metadata: {}, now });
          for (let g = 0; g < grantsEach; g++) {
            const never = g % 4 === 0;
            await b.grantCredits(ctx, tx, {
              key: { workspaceId: WS, customerId: id, creditType: 'credits' },
              grant: {
                amount: b.Amount.of(grantsEach === 1 ? '1000000000' : '1000000'),
                category: ['paid', 'promotional', 'allowance'][g % 3],
                priority: Math.floor(random() * 100),
                effectiveAt: now,
                expiresAt: never ? null : now + (2 + Math.floor(random() * 178)) * DAY,
                costBasis: null,
                appliesTo: null,
                description: null,
                metadata: {},
              },
              now,
            });
          }
        }),
      ),
    );
    ids.push(...chunk);
  }
  return ids;
}

/**
 * BENCH_CPU_PROFILE=<dir>: a CPU profile of each measured window alone (no seeding, no warm-up),
 * written as <dir>/<workload>-<round>.cpuprofile, so two builds' windows compare function by function.
 */
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE || null;
let profiled = 0;
async function profileWindow(name, measure) {
  if (PROFILE_DIR === null) return measure();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await measure();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(PROFILE_DIR, { recursive: true });
    writeFileSync(join(PROFILE_DIR, `${name}-${profiled++}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ingestRound(b) {
  const { dir, storage, ctx, counter } = await openStore(b);
  const random = prng(7);
  const customers = await seedCustomers(b, ctx, 10_000, 1, random);
  const now = Date.now();
  await ctx.storage.write(`${WS}/#meters`, async (tx) => {
    await b.createMeter(tx, {
      workspaceId: WS,
      id: 'bench-tokens',
      eventType: 'llm.tokens',
      aggregation: 'sum',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
      now,
    });
    await b.createRate(tx, {
      workspaceId: WS,
      id: 'bench-tokens-all',
      meterId: 'bench-tokens',
      filter: {},
      creditType: 'credits',
      pricing: { credits_per_unit: '0.001' },
      now,
    });
  });
  const models = ['small', 'medium', 'large', 'xl'];
  let seq = 0;
  // BENCH_INGEST_BODIES=1: each batch arrives as the JSON text a client sends (as bench/wrk.mjs's
  // script writes it) and is parsed and validated as the route does, so the objects of parsing
  // share the young generation with the ingest's own, as over the wire.
  const fromBodies = process.env.BENCH_INGEST_BODIES === '1';
  const parsedBatch = () => {
    const parts = [];
    const time = new Date().toISOString();
    for (let i = 0; i < 1000; i++) {
      const customer = customers[Math.floor(random() * customers.length)];
      const model = models[Math.floor(random() * 4)];
      const tokens = 1 + Math.floor(random() * 2000);
      parts.push(
        `{"id":"e-${seq++}","type":"llm.tokens","customer_id":"${customer}","time":"${time}","data":{"model":"${model}","tokens":${tokens}}}`,
      );
    }
    const now = Date.now();
    return JSON.parse(`[${parts.join(',')}]`).map((raw) => b.parseNativeEvent(raw, now));
  };
  const batch = () => {
    if (fromBodies) return parsedBatch();
    const events = [];
    for (let i = 0; i < 1000; i++) {
      events.push({
        id: `e-${seq++}`,
        source: null,
        type: 'llm.tokens',
        customerId: customers[Math.floor(random() * customers.length)],
        time: Date.now(),
        data: { model: models[Math.floor(random() * 4)], tokens: 1 + Math.floor(random() * 2000) },
      });
    }
    return events;
  };
  const run = async (batches) => {
    let left = batches;
    let accepted = 0;
    const client = async () => {
      while (left-- > 0) {
        const outcomes = await b.ingestEvents(ctx, WS, batch());
        accepted += outcomes.filter((o) => o === 'accepted').length;
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    return accepted;
  };
  await run(5);
  const cpu0 = cpuMicros();
  const main0 = mainThreadMicros();
  counter.commits = 0;
  const t0 = performance.now();
  // For `cpuprofile-top.mjs --only-after-ms=` (the profile's clock starts about when the process does).
  console.error(`measured window starts ${Math.round(t0)} ms after start`);
  globalThis.__burndownSqlTimingReset?.(); // bench/sqlite-statement-timer.mjs, when preloaded
  const accepted = await profileWindow('ingest', () => run(BATCHES));
  const cpu = cpuMicros() - cpu0;
  const mainCpu = mainThreadMicros() - main0;
  const ms = performance.now() - t0;
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    perOp: cpu / accepted,
    mainPerOp: mainCpu / accepted,
    batch: accepted / counter.commits,
    ops: accepted,
    wallPerSec: (accepted / ms) * 1000,
  };
}

/**
 * Build `b`'s debit workload on a fresh file: 1,000 customers with 12 grants each, and `run(count)`,
 * which makes `count` debits with DEBIT_CLIENTS in flight and returns how many succeeded.
 */
async function prepareDebits(b) {
  const store = await openStore(b);
  const { ctx } = store;
  const random = prng(11);
  const customers = await seedCustomers(b, ctx, 1000, 12, random);
  const run = async (count) => {
    let left = count;
    let ok = 0;
    const client = async () => {
      while (left-- > 0) {
        const customerId = customers[Math.floor(random() * customers.length)];
        const input = {
          key: { workspaceId: WS, customerId, creditType: 'credits' },
          amount: b.Amount.of('1.5'),
          allowOverage: false,
          featureId: null,
          quantity: null,
          description: null,
          metadata: {},
        };
        if (b.commands && b.unitOfWork) {
          const answer = await b.unitOfWork.runWrite(ctx, b.commands.debitCommand(ctx, input), (outcome) =>
            outcome.ok
              ? {
                  status: 201,
                  body: (b.presentDebitText ?? b.presentDebit)(outcome.value.debit, outcome.value.balance),
                }
              : { status: 402, body: {} },
          );
          if (answer.status === 201) ok++;
        } else {
          const done = await ctx.storage.write(`${WS}/${customerId}`, (tx) =>
            b.debitCredits(ctx, tx, { ...input, now: Date.now() }),
          );
          if (!('refused' in done)) {
            JSON.stringify(b.presentDebit(done.debit, done.balance));
            ok++;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: DEBIT_CLIENTS }, client));
    return ok;
  };
  const close = async () => {
    await store.storage.close();
    rmSync(store.dir, { recursive: true, force: true });
  };
  return { run, close, counter: store.counter };
}

async function debitRound(b) {
  const { run, close, counter } = await prepareDebits(b);
  await run(2000);
  const cpu0 = cpuMicros();
  const main0 = mainThreadMicros();
  counter.commits = 0;
  const t0 = performance.now();
  // For `cpuprofile-top.mjs --only-after-ms=` (the profile's clock starts about when the process does).
  console.error(`measured window starts ${Math.round(t0)} ms after start`);
  globalThis.__burndownSqlTimingReset?.(); // bench/sqlite-statement-timer.mjs, when preloaded
  const ok = await profileWindow('debits', () => run(DEBITS));
  const cpu = cpuMicros() - cpu0;
  const mainCpu = mainThreadMicros() - main0;
  const batch = ok / counter.commits;
  const ms = performance.now() - t0;
  await close();
  return { perOp: cpu / ok, mainPerOp: mainCpu / ok, batch, ops: ok, wallPerSec: (ok / ms) * 1000 };
}

/**
 * `--interleave` with two or more `--dist`: every build's debit workload in this one process, run in
 * short slices of BENCH_SLICE debits, build after build (the order reversed every other pass), for
 * BENCH_SLICES passes. This VM's speed changes by up to half within seconds and stays changed for
 * tens of seconds, which whole rounds cannot average out; slices of about 100 ms give every build
 * the same share of fast and slow moments. Process CPU (getrusage, µs) and the main thread's (from
 * /proc, 10 ms ticks, which average out over the passes) are summed per build over its slices.
 * Shared by all: the heap and its collector, so a build's garbage may be collected in another's
 * slice; the figure compares builds, it is not any one build's cost alone.
 */
async function interleavedDebits() {
  const SLICE = num('BENCH_SLICE', 500);
  const SLICES = num('BENCH_SLICES', 40);
  const workloads = [];
  for (const b of builds) {
    const w = await prepareDebits(b);
    await w.run(2000);
    workloads.push({ b, ...w, cpu: 0, main: 0, ok: 0, commits: 0, slices: [] });
  }
  for (let pass = 0; pass < SLICES; pass++) {
    const order = pass % 2 === 0 ? workloads : [...workloads].reverse();
    for (const w of order) {
      w.counter.commits = 0;
      const cpu0 = cpuMicros();
      const main0 = mainThreadMicros();
      const ok = await w.run(SLICE);
      const cpu = cpuMicros() - cpu0;
      w.cpu += cpu;
      w.main += mainThreadMicros() - main0;
      w.ok += ok;
      w.commits += w.counter.commits;
      w.slices.push(cpu / ok);
    }
  }
  for (const w of workloads) {
    await w.close();
    console.log(
      `debits, interleaved: CPU µs per debit ${(w.cpu / w.ok).toFixed(1)} (median slice ${median(w.slices).toFixed(1)}), ` +
        `main thread ${(w.main / w.ok).toFixed(1)} µs; ${w.ok} debits in ${SLICES} slices; ` +
        `debits per commit ${(w.ok / w.commits).toFixed(1)} [${w.b.dist}]`,
    );
  }
}

if (args.includes('--interleave')) {
  if (builds.length < 2) throw new Error('--interleave compares builds: give two or more --dist');
  await interleavedDebits();
  process.exit(0);
}

for (const [name, round] of [
  ['ingest', ingestRound],
  ['debits', debitRound],
]) {
  if (!want(name)) continue;
  for (const b of builds) {
    const results = [];
    for (let r = 0; r < ROUNDS; r++) results.push(await round(b));
    const per = results.map((x) => x.perOp);
    console.log(
      `${name}: CPU µs per ${name === 'ingest' ? 'event' : 'debit'}: median ${median(per).toFixed(1)}, best ${Math.min(...per).toFixed(1)} ` +
        `(rounds ${per.map((x) => x.toFixed(1)).join(' / ')}; ${results[0].ops} ops each; wall ${results.map((x) => Math.round(x.wallPerSec)).join(' / ')} per s); ` +
        `main thread ${results.map((x) => x.mainPerOp.toFixed(1)).join(' / ')} µs; ${name === 'ingest' ? 'events' : 'debits'} per commit ${results.map((x) => x.batch.toFixed(1)).join(' / ')} [${b.dist}]`,
    );
  }
}
