// Entitlement-check benchmark: Burndown's POST /v1/check (a read: may this customer use this
// feature now?) over HTTP on SQLite, next to the bare node:http ceiling measured in the same run,
// then the same check in-process (service functions called directly, no HTTP) on one core, with
// the pure domain decision alone and where the time goes: the check's SQL statements timed in
// place, their query plans, the steps without I/O, and a CPU profile.
//
//   npm run bench:check            (builds, then runs this file; about 2.5 min on a quiet machine)
//   node bench/check.mjs           (uses the existing dist/)
//
// Environment knobs (all optional):
//   BENCH_SECONDS=10            measured duration per HTTP target (after warm-up)
//   BENCH_WARMUP_SECONDS=2      warm-up per HTTP target (discarded)
//   BENCH_CONNECTIONS=50        keep-alive connections (pipelining is always 1)
//   BENCH_CUSTOMERS=1000        customers seeded, each subscribed to the plan
//   BENCH_GRANTS=3              paid/promotional grants per customer, on top of the plan's allowance grant
//   BENCH_SCENARIOS=…           comma-separated subset of per-use,per-use-hot,rate,limit
//   BENCH_INPROCESS_SECONDS=3   measured duration of each in-process loop
//   BENCH_SKIP_HTTP=1           only the in-process part
//   BENCH_SKIP_INPROCESS=1      only the HTTP part
//   BENCH_PROFILE=1             also run the HTTP server under --cpu-prof and print the hotspots of
//                               the first scenario's window (its figures are slowed: do not quote them)
//   BENCH_QUIET_WAIT_SECONDS=10 how long each HTTP window waits for a quiet machine (in-process: ≤ 5 s)
//   BENCH_KEEP_DB=1             keep the temporary databases
//
// The in-process part always takes a CPU profile of its own (in a separate pass after the measured
// loops, so the figures are not slowed by it).
//
// Writes bench/results/latest-check.json (latest-check-profile.json with BENCH_PROFILE=1).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { summariseProfile } from './cpuprofile-top.mjs';
import {
  API_KEY,
  autocannonWindow,
  cli,
  createRequester,
  customerId,
  fmt,
  here,
  histogramDelta,
  log,
  machine,
  num,
  parseHistogram,
  pool,
  provenance,
  QUIET_CORES,
  QUIET_WAIT,
  root,
  runReconcile,
  seedCustomers,
  startChild,
  startCpuWindow,
  table,
  waitForQuiet,
} from './lib.mjs';

const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = num('BENCH_CONNECTIONS', 50);
const CUSTOMERS = num('BENCH_CUSTOMERS', 1000);
const GRANTS = num('BENCH_GRANTS', 3);
const IN_SECONDS = num('BENCH_INPROCESS_SECONDS', 3);
// How long each window waits for a quiet machine: BENCH_QUIET_WAIT_SECONDS (default 10 here, to
// keep a run on a busy machine near 3 minutes), at most 5 s for the in-process windows.
const HTTP_QUIET_WAIT = process.env.BENCH_QUIET_WAIT_SECONDS ? QUIET_WAIT : 10;
const IN_QUIET_WAIT = Math.min(HTTP_QUIET_WAIT, 5);
const PROFILE = process.env.BENCH_PROFILE === '1';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const SKIP_HTTP = process.env.BENCH_SKIP_HTTP === '1';
const SKIP_INPROCESS = process.env.BENCH_SKIP_INPROCESS === '1';
const GRANT_AMOUNT = '1000000';
const CHECK_ROUTE = '/v1/check';
const TARGETS = { p99MsBelow: 5, throughputRatioMin: 0.6, inProcessChecksPerSecMin: 100_000 };

// ---------------------------------------------------------------------------------------------
// the catalog and the scenarios

const METER = {
  id: 'bench-tokens',
  event_type: 'bench.tokens',
  aggregation: 'sum',
  value_property: '$.tokens',
};
const RATE = { id: 'bench-tokens-rate', meter_id: 'bench-tokens', credits_per_unit: '0.002' };
const FEATURES = [
  { id: 'bench-gen', type: 'metered', credits_per_use: '0.5' },
  { id: 'bench-tokens', type: 'metered', rate_ids: [RATE.id] },
  { id: 'bench-export', type: 'metered', credits_per_use: '1' },
];
const PLAN = {
  id: 'bench-pro',
  name: 'Bench Pro',
  entitlements: [
    { feature_id: 'bench-gen' },
    { feature_id: 'bench-tokens' },
    // a limit that is never reached: the check reads the period's usage and compares
    { feature_id: 'bench-export', usage_limit: { amount: '1000000000', period: 'P1M' } },
  ],
  allowances: [{ amount: '100000', period: 'P1M' }],
  price: { amount: '29.00', currency: 'USD' },
};

/** What each run checks. `credits` is the answer expected for `quantity` (checked before the load). */
const ALL_SCENARIOS = [
  {
    key: 'per-use',
    label: 'credits_per_use',
    feature: 'bench-gen',
    quantity: '3',
    credits: '1.5',
    hot: false,
    usage: false,
  },
  {
    key: 'per-use-hot',
    label: 'credits_per_use, 1 hot customer',
    feature: 'bench-gen',
    quantity: '3',
    credits: '1.5',
    hot: true,
    usage: false,
  },
  {
    key: 'rate',
    label: 'rate_ids (per-unit rate)',
    feature: 'bench-tokens',
    quantity: '1200',
    credits: '2.4',
    hot: false,
    usage: false,
  },
  {
    key: 'limit',
    label: 'credits_per_use + usage limit',
    feature: 'bench-export',
    quantity: '1',
    credits: '1',
    hot: false,
    usage: true,
  },
];
const SCENARIOS = (() => {
  const wanted = (process.env.BENCH_SCENARIOS ?? '').split(',').filter(Boolean);
  if (wanted.length === 0) return ALL_SCENARIOS;
  const unknown = wanted.filter((k) => !ALL_SCENARIOS.some((s) => s.key === k));
  if (unknown.length) throw new Error(`unknown BENCH_SCENARIOS: ${unknown.join(', ')}`);
  return ALL_SCENARIOS.filter((s) => wanted.includes(s.key));
})();
const HOT = customerId(0);
const customerIds = () => Array.from({ length: CUSTOMERS }, (_, i) => customerId(i));
const spreadLabel = () => `${fmt(CUSTOMERS)} customers`;
const scenarioTitle = (s) => `${s.label}${s.hot ? '' : `, ${spreadLabel()}`}`;
const checkBody = (s, customer) =>
  JSON.stringify({ customer_id: customer, feature_id: s.feature, quantity: s.quantity });

/**
 * The catalog (meter, rate, three metered features, a plan entitling them), then CUSTOMERS
 * customers with GRANTS grants each (varied priority, category, expiry, as in debits.mjs), each
 * subscribed to the plan (which issues its allowance grant) and with one use of the limited
 * feature counted, so its usage row exists. `request` is lib.mjs's `(baseUrl, method, path, body)`.
 */
async function seed(request, baseUrl) {
  const must = async (what, status, promise) => {
    const r = await promise;
    if (r.status !== status) throw new Error(`seeding failed: ${what} → ${r.status} ${r.text.slice(0, 300)}`);
    return r;
  };
  await must('meter', 201, request(baseUrl, 'POST', '/v1/meters', METER));
  await must('rate', 201, request(baseUrl, 'POST', '/v1/rates', RATE));
  for (const f of FEATURES) await must(`feature ${f.id}`, 201, request(baseUrl, 'POST', '/v1/features', f));
  await must('plan', 201, request(baseUrl, 'POST', '/v1/plans', PLAN));
  const ids = customerIds();
  const seeded = await seedCustomers({
    request,
    baseUrls: [baseUrl],
    ids,
    grants: GRANTS,
    grantAmount: GRANT_AMOUNT,
    concurrency: 32,
  });
  await pool(ids, 32, async (id) => {
    const path = `/v1/customers/${encodeURIComponent(id)}`;
    await must(
      `subscription of ${id}`,
      201,
      request(baseUrl, 'POST', `${path}/subscriptions`, { plan_id: PLAN.id }),
    );
    await must(
      `debit of ${id}`,
      201,
      request(baseUrl, 'POST', `${path}/debits`, { amount: '1', feature_id: 'bench-export', quantity: '1' }),
    );
  });
  return { customers: ids.length, grants: seeded.grants, subscriptions: ids.length };
}

/** One check per scenario (spread ones on a customer other than the hot one) must answer as expected. */
async function verifyAnswers(request, baseUrl, scenarios) {
  const answers = {};
  for (const s of scenarios) {
    const customer = s.hot ? HOT : customerId(Math.min(1, CUSTOMERS - 1));
    const r = await request(baseUrl, 'POST', CHECK_ROUTE, JSON.parse(checkBody(s, customer)));
    const body = r.status === 200 ? JSON.parse(r.text) : null;
    const ok =
      body !== null &&
      body.allowed === true &&
      body.reason === 'ok' &&
      body.credits === s.credits &&
      body.hold_id === null &&
      (body.usage !== null) === s.usage;
    if (!ok) throw new Error(`unexpected answer for ${s.key}: ${r.status} ${r.text.slice(0, 400)}`);
    answers[s.key] = body;
  }
  return answers;
}

// ---------------------------------------------------------------------------------------------
// in-process mode: `node bench/check.mjs --in-process <out.json>` (run as a child by main)

const distUrl = (path) => pathToFileURL(join(root, 'dist', path)).href;

/** Runs `fn(i)` (awaited) for `seconds`, in slices of 256 calls; returns calls and seconds. */
async function loopAsync(seconds, fn) {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  do {
    for (let k = 0; k < 256; k++) await fn(n + k);
    n += 256;
  } while (performance.now() < end);
  const sec = (performance.now() - t0) / 1000;
  return { calls: n, sec, perSec: n / sec, usPerCall: (sec * 1e6) / n };
}

/** The same for a synchronous `fn`, in slices of 4,096 calls; `sink` keeps the results alive. */
function loopSync(seconds, fn) {
  let n = 0;
  let sink = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  do {
    for (let k = 0; k < 4096; k++) if (fn(n + k)) sink += 1;
    n += 4096;
  } while (performance.now() < end);
  const sec = (performance.now() - t0) / 1000;
  return { calls: n, sec, perSec: n / sec, nsPerCall: (sec * 1e9) / n, sink };
}

async function inProcessMain(outFile) {
  const [
    { SqliteStorage },
    { TimeOrderedIds },
    { systemClock },
    { buildApp },
    { ensureAdminKey },
    { checkNow, resolveEntitlement },
    { decideCheck },
    { CreditLedger },
    { Amount },
    { DEFAULT_WORKSPACE },
    { presentCheck },
    { periodContaining },
  ] = await Promise.all(
    [
      'storage/sqlite/sqlite-storage.js',
      'infra/ids.js',
      'infra/system-clock.js',
      'http/app.js',
      'services/api-keys.js',
      'services/entitlements.js',
      'domain/entitlements/check.js',
      'domain/ledger/credit-ledger.js',
      'domain/amount/amount.js',
      'services/context.js',
      'http/plan-presenters.js',
      'domain/time/periods.js',
    ].map((p) => import(distUrl(p))),
  );
  const tmp = mkdtempSync(join(os.tmpdir(), 'burndown-check-inproc-'));
  const dbPath = join(tmp, 'bench.db');
  const out = { database: 'fresh file under os.tmpdir(), WAL, synchronous=FULL (defaults)' };
  try {
    // The context as the composition root builds it (dist/main.js createContext): the real clock.
    const storage = await SqliteStorage.open({ path: dbPath });
    const ctx = { storage, clock: systemClock, ids: new TimeOrderedIds(() => systemClock.now()) };
    await ensureAdminKey(ctx, API_KEY);
    // Seeding goes through the real routes (in-process, app.inject), exactly as over HTTP.
    const app = await buildApp(ctx, { bodyLimit: 1024 * 1024, logLevel: 'silent' });
    const request = async (_base, method, path, body) => {
      const r = await app.inject({
        method,
        url: path,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      return { status: r.statusCode, text: r.body };
    };
    const t0 = Date.now();
    out.seeding = { ...(await seed(request, 'inject')), seconds: (Date.now() - t0) / 1000 };
    out.answers = await verifyAnswers(request, 'inject', SCENARIOS);
    await app.close();
    log(
      `  seeded ${fmt(out.seeding.customers)} customers (${fmt(out.seeding.grants)} grants + 1 allowance each) in ${fmt(out.seeding.seconds, 1)} s`,
    );

    const ws = DEFAULT_WORKSPACE;
    const reads = storage.read;
    const ids = customerIds();
    const inputsOf = (s) => {
      const quantity = Amount.parse(s.quantity);
      const customers = s.hot ? [HOT] : ids;
      return customers.map((customerId) => ({ workspaceId: ws, customerId, featureId: s.feature, quantity }));
    };
    const window = async (label, fn, isSync = false) => {
      if (isSync) loopSync(0.5, fn);
      else await loopAsync(1, fn); // warm-up (discarded)
      const quiet = await waitForQuiet(label, 0, IN_QUIET_WAIT);
      const cpu = startCpuWindow();
      const r = isSync ? loopSync(IN_SECONDS, fn) : await loopAsync(IN_SECONDS, fn);
      const usage = cpu.stop();
      return {
        ...r,
        cpu: {
          loopCores: usage.selfCores,
          otherProcessesCores: usage.otherProcessesCores,
          quietBeforeStart: quiet.quiet,
          topOtherProcesses: usage.topOtherProcesses,
        },
      };
    };

    // 1. checkNow, as the route calls it (the route adds only parsing the quantity and presenting)
    out.checkNow = {};
    for (const s of SCENARIOS) {
      const inputs = inputsOf(s);
      const n = inputs.length;
      const r = await window(`checkNow ${s.key}`, (i) => checkNow(ctx, inputs[i % n]));
      out.checkNow[s.key] = r;
      log(
        `  checkNow  ${scenarioTitle(s).padEnd(42)} ${fmt(r.perSec).padStart(8)} checks/s  (${fmt(r.usPerCall, 1)} µs each, loop ${fmt(r.cpu.loopCores, 2)} cores, others ${fmt(r.cpu.otherProcessesCores, 2)})`,
      );
    }

    // 2. the pure domain decision, on facts gathered once from the real storage
    const factsOf = async (s) => {
      const input = inputsOf(s)[0];
      const now = ctx.clock.now();
      const resolved = await resolveEntitlement(ctx, reads, { ...input, now });
      const answer = await checkNow(ctx, input);
      return {
        feature: await reads.plans.getFeature(ws, s.feature),
        entitlement: resolved.entitlement,
        quantity: input.quantity,
        credits: answer.credits,
        available: answer.available,
        usedInPeriod: answer.usage?.used ?? Amount.ZERO,
      };
    };
    out.decideCheck = {};
    for (const s of SCENARIOS.filter((x) => x.key === 'per-use' || x.key === 'limit')) {
      const facts = await factsOf(s);
      const decision = decideCheck(facts);
      if (!decision.allowed) throw new Error(`decideCheck refused ${s.key}: ${decision.reason}`);
      const r = await window(`decideCheck ${s.key}`, () => decideCheck(facts).allowed, true);
      out.decideCheck[s.key] = r;
      log(
        `  decideCheck alone (${s.key.padEnd(7)})                        ${fmt(r.perSec).padStart(12)} decisions/s (${fmt(r.nsPerCall, 0)} ns each)`,
      );
    }

    // 3. where one check's time goes: its SQL in place, then the steps without I/O
    out.sql = await sqlPerCheck({ ctx, reads, dbPath, inputsOf, checkNow });
    out.steps = await noIoSteps({
      ctx,
      reads,
      ws,
      ids,
      Amount,
      CreditLedger,
      decideCheck,
      presentCheck,
      checkNow,
      factsOf,
      periodContaining,
    });

    // 4. CPU profiles of the per-use and limit loops (a separate pass: the figures above are unprofiled)
    out.profiles = {};
    for (const s of SCENARIOS.filter((x) => x.key === 'per-use' || x.key === 'limit')) {
      out.profiles[s.key] = await profileLoop(s, inputsOf(s), (input) => checkNow(ctx, input));
    }
    await storage.close();
  } finally {
    if (KEEP_DB) log(`  in-process database kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(outFile, JSON.stringify(out));
}

/** µs per call of the steps of a check that do no I/O, each alone in a loop over the customers. */
async function noIoSteps({
  ctx,
  reads,
  ws,
  ids,
  Amount,
  CreditLedger,
  decideCheck,
  presentCheck,
  checkNow,
  factsOf,
  periodContaining,
}) {
  const n = ids.length;
  const now = () => ctx.clock.now();
  const perUse = await factsOf(ALL_SCENARIOS[0]);
  const key = (i) => ({ workspaceId: ws, customerId: ids[i % n], creditType: 'credits' });
  const snapshots = [];
  for (let i = 0; i < n; i++) snapshots.push(await reads.loadLedger(key(i)));
  const sample = await checkNow(ctx, {
    workspaceId: ws,
    customerId: ids[0],
    featureId: 'bench-export',
    quantity: Amount.parse('1'),
  });
  const steps = [
    [
      'CreditLedger(snapshot) + advanceTo + availableAt',
      (i) => {
        const ledger = new CreditLedger(snapshots[i % n], ctx.ids);
        const t = now();
        ledger.advanceTo(t);
        return ledger.availableAt(t, 'bench-gen');
      },
    ],
    [
      'usage-limit period start: periodContaining(anchor, P1M, now, UTC)',
      () => periodContaining(sample.usage.periodStart, 'P1M', now(), 'UTC').start,
    ],
    ['decideCheck', () => decideCheck(perUse)],
    ['presentCheck + JSON.stringify (the response body)', () => JSON.stringify(presentCheck(sample))],
  ];
  const result = [];
  await waitForQuiet('no-I/O steps', 0, IN_QUIET_WAIT);
  for (const [name, fn] of steps) {
    loopSync(0.2, fn);
    const r = loopSync(0.6, fn);
    result.push({ step: name, usPerCall: r.nsPerCall / 1000, calls: r.calls });
  }
  log();
  log('  steps without I/O (each alone in a loop; µs per call):');
  log(table([['step', 'µs'], ...result.map((x) => [x.step, fmt(x.usPerCall, 2)])]));
  return result;
}

/**
 * The SQL of a check, measured in place: the read executor's `get`/`all` are wrapped to count and
 * time every statement while checks run (better-sqlite3 is synchronous, so a statement's time is
 * SQLite's work plus building the row objects, nothing else). What remains of a check's time is
 * JavaScript: mapping rows, the ledger, the decision, the awaits. Then SQLite's plan of each
 * statement (EXPLAIN QUERY PLAN on a read-only connection), and two experiments on that
 * connection: a customer's subscriptions through the customer index, and the open grants
 * without materialising all their columns.
 */
async function sqlPerCheck({ ctx, reads, dbPath, inputsOf, checkNow }) {
  const executor = reads.db;
  const seen = new Map();
  const wrap = (method) => {
    const original = executor[method];
    executor[method] = function (sql, params) {
      const t0 = performance.now();
      const rows = original.call(this, sql, params);
      const dt = performance.now() - t0;
      let entry = seen.get(sql);
      if (!entry) {
        entry = { sql, calls: 0, ms: 0, params };
        seen.set(sql, entry);
      }
      entry.calls += 1;
      entry.ms += dt;
      return rows;
    };
  };
  const perScenario = {};
  const allStatements = new Map();
  await waitForQuiet('SQL per check', 0, IN_QUIET_WAIT);
  for (const s of SCENARIOS) {
    const inputs = inputsOf(s);
    await loopAsync(0.3, (i) => checkNow(ctx, inputs[i % inputs.length]));
    seen.clear();
    wrap('get');
    wrap('all');
    const r = await loopAsync(Math.max(1, IN_SECONDS / 2), (i) => checkNow(ctx, inputs[i % inputs.length]));
    delete executor.get;
    delete executor.all;
    let calls = 0;
    let ms = 0;
    for (const e of seen.values()) {
      calls += e.calls;
      ms += e.ms;
      allStatements.set(e.sql, e);
    }
    const sqlUs = (ms * 1000) / r.calls;
    perScenario[s.key] = {
      checks: r.calls,
      checkUs: r.usPerCall,
      statementsPerCheck: calls / r.calls,
      sqlUsPerCheck: sqlUs,
      jsUsPerCheck: r.usPerCall - sqlUs,
      statements: [...seen.values()].map((e) => ({
        sql: oneLine(e.sql),
        perCheck: e.calls / r.calls,
        usPerCall: (e.ms * 1000) / e.calls,
        usPerCheck: (e.ms * 1000) / r.calls,
      })),
    };
  }
  const db = new Database(dbPath, { readonly: true });
  const planOf = (sql, params) =>
    db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...params)
      .map((r) => r.detail);
  const plans = [...allStatements.values()].map((e) => ({
    sql: oneLine(e.sql),
    plan: planOf(e.sql, e.params),
  }));
  const timeStatement = (stmt, paramsOf) => {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 400) {
      for (let k = 0; k < 50; k++) stmt.all(...paramsOf(n + k));
      n += 50;
    }
    return ((performance.now() - t0) * 1000) / n;
  };
  const ids = customerIds();
  const experiments = [];
  // Each customer's rows, in turn: the statement's own parameters with the customer id swapped.
  const rotate = (e) => {
    const at = e.params.indexOf(e.params.find((p) => typeof p === 'string' && p.startsWith('bench-cust-')));
    return (i) => e.params.map((p, j) => (j === at ? ids[i % ids.length] : p));
  };
  const variant = (e, label, sql, raw = false) => {
    const stmt = db.prepare(sql).raw(raw);
    timeStatement(stmt, rotate(e));
    return {
      label,
      sql: oneLine(sql),
      plan: planOf(sql, e.params),
      usPerCall: timeStatement(stmt, rotate(e)),
    };
  };
  for (const e of allStatements.values()) {
    const sql = oneLine(e.sql);
    if (/^SELECT \* FROM subscriptions WHERE .*customer_id = \?/.test(sql)) {
      // The primary key leads with the customer, so this is a prefix search of it (see the plan).
      experiments.push({
        what: `a customer's subscriptions (${fmt(db.prepare('SELECT COUNT(*) AS n FROM subscriptions').get().n)} in the table)`,
        variants: [variant(e, 'as shipped', sql)],
      });
    }
    if (/^SELECT \* FROM grants WHERE .*is_open = 1/.test(sql)) {
      experiments.push({
        what: "a customer's open grants (row materialisation)",
        variants: [
          variant(e, 'as shipped (SELECT *, 21 columns)', sql),
          variant(e, 'SELECT id only', sql.replace('SELECT *', 'SELECT id')),
          variant(e, 'SELECT *, rows as arrays (.raw())', sql, true),
        ],
      });
    }
  }
  db.close();
  log();
  for (const [k, v] of Object.entries(perScenario)) {
    log(
      `  SQL of one check, ${k}: ${fmt(v.statementsPerCheck, 1)} statements, ${fmt(v.sqlUsPerCheck, 1)} µs of ${fmt(v.checkUs, 1)} µs (the rest, ${fmt(v.jsUsPerCheck, 1)} µs, is JavaScript)`,
    );
    log(
      table([
        ['statement', 'per check', 'µs each', 'µs per check'],
        ...v.statements.map((x) => [
          x.sql.slice(0, 100),
          fmt(x.perCheck, 2),
          fmt(x.usPerCall, 1),
          fmt(x.usPerCheck, 1),
        ]),
      ]).replace(/^/gm, '    '),
    );
  }
  log('  query plans:');
  for (const p of plans) log(`    ${p.plan.join(' / ').padEnd(64)} ← ${p.sql.slice(0, 90)}`);
  for (const x of experiments) {
    log(`  experiment, ${x.what}:`);
    for (const v of x.variants)
      log(`    ${fmt(v.usPerCall, 1).padStart(7)} µs  ${v.label}  (${v.plan.join(' / ')})`);
  }
  return { perScenario, plans, experiments };
}

const oneLine = (sql) => sql.replace(/\s+/g, ' ').trim();

/** Profiles `IN_SECONDS` of the loop with the inspector; writes the .cpuprofile and returns its summary. */
async function profileLoop(s, inputs, fn) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method, params = {}) =>
    new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  const r = await loopAsync(IN_SECONDS, (i) => fn(inputs[i % inputs.length]));
  const { profile } = await post('Profiler.stop');
  session.disconnect();
  const dir = join(here, 'results', 'profile');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `check-inprocess-${s.key}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const summary = summariseProfile(profile, { top: 25 });
  log();
  log(`  CPU profile of checkNow (${s.key}), ${fmt(r.perSec)} checks/s while profiled: ${file}`);
  log(summary.text.replace(/^/gm, '    '));
  return {
    scenario: s.key,
    file,
    checksPerSecWhileProfiled: r.perSec,
    totalMs: summary.totalMs,
    busyMs: summary.busyMs,
    byArea: summary.byArea,
    top: summary.top,
    topInclusive: summary.topInclusive,
  };
}

// ---------------------------------------------------------------------------------------------
// main: HTTP runs, then the in-process child

const { agent, request } = createRequester(API_KEY, { maxSockets: 64 });

/** autocannon requests for a scenario: every request to a uniformly random customer, or the hot one. */
function requestsFor(s) {
  const bodies = s.hot ? [checkBody(s, HOT)] : customerIds().map((id) => checkBody(s, id));
  const n = bodies.length;
  return [
    {
      method: 'POST',
      path: CHECK_ROUTE,
      body: bodies[0],
      ...(n > 1 ? { setupRequest: (req) => ({ ...req, body: bodies[(Math.random() * n) | 0] }) } : {}),
    },
  ];
}

async function scrape(baseUrl) {
  const r = await request(baseUrl, 'GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics → ${r.status}`);
  return parseHistogram(r.text, 'burndown_http_request_duration_seconds', `route="${CHECK_ROUTE}"`);
}

/** Rows that a check must never write (it is a read): their counts before and after the load. */
function writtenRows(dbPath) {
  const db = new Database(dbPath, { readonly: true });
  try {
    const count = (sql) => db.prepare(sql).get().n;
    return {
      entries: count('SELECT COUNT(*) AS n FROM entries'),
      debits: count('SELECT COUNT(*) AS n FROM debits'),
      holds: count('SELECT COUNT(*) AS n FROM holds'),
      featureUsageRows: count('SELECT COUNT(*) AS n FROM feature_usage'),
      featureUsageSum: count('SELECT COALESCE(SUM(CAST(quantity AS INTEGER)), 0) AS n FROM feature_usage'),
      idempotencyKeys: count('SELECT COUNT(*) AS n FROM idempotency_keys'),
    };
  } finally {
    db.close();
  }
}

function runInProcessChild(outFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'check.mjs'), '--in-process', outFile], {
      cwd: root,
      env: process.env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(readFileSync(outFile, 'utf8')));
      else reject(new Error(`in-process child exited with code ${code} signal ${signal}`));
    });
  });
}

const row = (label, f, bare) => {
  const ratio = bare ? f.reqPerSecMean / bare.reqPerSecMean : null;
  return { label, f, ratio };
};

async function main() {
  const startedAt = new Date();
  const mach = machine();
  log(`Burndown entitlement-check benchmark — ${startedAt.toISOString()}`);
  log(`machine: ${mach.nproc} CPU(s), ${mach.cpuModel}, Node ${mach.node}, ${mach.platform}`);
  log(
    `load: ${CONNECTIONS} connections, pipelining 1, keep-alive, ${WARMUP} s warm-up + ${SECONDS} s measured per target; ` +
      `${fmt(CUSTOMERS)} customers × (${GRANTS} grants + the plan's allowance)`,
  );
  log("note: autocannon and the server under test share this machine's CPUs.");
  if (PROFILE)
    log('PROFILE MODE: Burndown runs under --cpu-prof; its HTTP figures are slowed by the profiler.');
  log();

  const tmp = mkdtempSync(join(os.tmpdir(), 'burndown-check-'));
  const dbPath = join(tmp, 'bench.db');
  const profileDir = join(here, 'results', 'profile', 'check-http');
  const children = [];
  const cleanup = async () => {
    await Promise.allSettled(children.map((c) => c.stop()));
  };
  process.once('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });

  const results = {
    benchmark: 'check',
    date: startedAt.toISOString(),
    machine: mach,
    code: provenance(),
    sharedMachine:
      'autocannon, the bare server and Burndown all run on this 2-vCPU machine, one server at a time; the in-process loop runs alone afterwards',
    profiled: PROFILE,
    config: {
      connections: CONNECTIONS,
      pipelining: 1,
      keepAlive: true,
      warmupSec: WARMUP,
      durationSec: SECONDS,
      inProcessSec: IN_SECONDS,
      customers: CUSTOMERS,
      grantsPerCustomer: GRANTS,
      allowanceGrantPerCustomer: 1,
      catalog: { meter: METER, rate: RATE, features: FEATURES, plan: PLAN },
      scenarios: SCENARIOS,
      durability: 'SQLite WAL, synchronous=FULL (defaults)',
      database: 'fresh file under os.tmpdir()',
    },
    targets: TARGETS,
  };
  let failed = false;

  try {
    if (!SKIP_HTTP) {
      // 1. the ceiling, with the same request bodies as the first spread scenario
      log('[1/4] bare node:http ceiling');
      const bare = startChild('bare-server', [join(here, 'bare-server.mjs')], { PORT: '0' });
      children.push(bare);
      const bareUrl = await bare.url;
      const bareScenario = SCENARIOS.find((s) => !s.hot) ?? SCENARIOS[0];
      const bareRun = await autocannonWindow({
        label: 'bare',
        url: bareUrl,
        pid: bare.child.pid,
        connections: CONNECTIONS,
        seconds: SECONDS,
        warmupSeconds: WARMUP,
        quietWait: HTTP_QUIET_WAIT,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        requests: requestsFor(bareScenario),
      });
      await bare.stop();
      results.bare = bareRun.figures;
      log();

      // 2. Burndown, durable defaults, fresh database
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
      const seeded = await seed(request, bdUrl);
      results.seeding = { ...seeded, seconds: (Date.now() - t0) / 1000 };
      log(
        `  seeded ${fmt(seeded.customers)} customers × (${GRANTS} grants + 1 allowance), ${fmt(seeded.subscriptions)} subscriptions in ${fmt(results.seeding.seconds, 1)} s`,
      );
      results.sampleAnswers = await verifyAnswers(request, bdUrl, SCENARIOS);
      log(
        `  sample answers as expected: ${SCENARIOS.map((s) => `${s.key} → credits ${s.credits}`).join(', ')}`,
      );
      agent.destroy();
      const rowsBefore = writtenRows(dbPath);
      log();

      log('[3/4] /v1/check under load');
      results.burndown = {};
      const windows = {};
      for (const s of SCENARIOS) {
        const run = await autocannonWindow({
          label: s.key,
          url: bdUrl,
          pid: bd.child.pid,
          connections: CONNECTIONS,
          seconds: SECONDS,
          warmupSeconds: WARMUP,
          quietWait: HTTP_QUIET_WAIT,
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          requests: requestsFor(s),
          before: () => scrape(bdUrl),
          after: () => scrape(bdUrl),
        });
        const serverSide = histogramDelta(run.before, run.after);
        results.burndown[s.key] = {
          ...run.figures,
          serverSideMeanMs: serverSide.mean === null ? null : serverSide.mean * 1000,
        };
        windows[s.key] = { start: run.windowStart - bdSpawnedAt, end: run.windowEnd - bdSpawnedAt };
      }
      // a sample after the load: still the same answers
      await verifyAnswers(request, bdUrl, SCENARIOS);
      agent.destroy();
      const rowsAfter = writtenRows(dbPath);
      const exit = await bd.stop();
      if (exit.code !== 0)
        log(`  warning: Burndown exited with code ${exit.code} signal ${exit.signal}\n${bd.stderr()}`);
      else if (bd.stderr().trim()) log(`  Burndown stderr:\n${bd.stderr().trim()}`);
      log();

      log('[4/4] nothing written by the checks; ledger verification');
      const unchanged = JSON.stringify(rowsBefore) === JSON.stringify(rowsAfter);
      log(
        `  rows before/after the load: ${Object.entries(rowsBefore)
          .map(([k, v]) => `${k} ${v}/${rowsAfter[k]}`)
          .join(', ')} → ${unchanged ? 'unchanged' : 'CHANGED'}`,
      );
      const reconcile = await runReconcile(`sqlite:${dbPath}`);
      const m = reconcile.match;
      log(
        `  $ burndown reconcile  (exit ${reconcile.exitCode}): ${reconcile.stdout.trim().split('\n').pop()}`,
      );
      results.ledger = {
        rowsBefore,
        rowsAfter,
        checksWroteNothing: unchanged,
        reconcileExitCode: reconcile.exitCode,
        reconcileOutput: reconcile.stdout.trim(),
        ok: reconcile.exitCode === 0 && m?.[4] === 'OK',
      };
      if (!unchanged || !results.ledger.ok) failed = true;
      log();

      if (PROFILE) {
        const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
        const newest = files
          .map((f) => join(profileDir, f))
          .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
        const first = SCENARIOS[0].key;
        if (newest) {
          const p = summariseProfile(JSON.parse(readFileSync(newest, 'utf8')), {
            top: 30,
            onlyAfterMs: windows[first].start,
            untilMs: windows[first].end,
          });
          log(`CPU profile of the Burndown server, ${first} window only: ${newest}`);
          log(p.text);
          log();
          results.serverProfile = {
            scenario: first,
            file: newest,
            totalMs: p.totalMs,
            busyMs: p.busyMs,
            byArea: p.byArea,
            top: p.top,
            topInclusive: p.topInclusive,
          };
        } else log('no .cpuprofile was written');
      }
    }

    if (!SKIP_INPROCESS) {
      log('[in-process] checkNow called directly (no HTTP), one thread, fresh database seeded the same way');
      const outFile = join(tmp, 'in-process.json');
      try {
        results.inProcess = await runInProcessChild(outFile);
      } catch (error) {
        // keep the HTTP figures: report the failure and write the results anyway
        log(`  in-process part failed: ${error?.message ?? error}`);
        results.inProcessError = String(error?.message ?? error);
        failed = true;
      }
      log();
    }
  } finally {
    await cleanup();
    if (KEEP_DB) log(`database kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------------------------------------
  // report
  log('results');
  const verdicts = {};
  if (results.bare) {
    const b = results.bare;
    const rows = [row('bare node:http (same bodies)', b, null)];
    for (const s of SCENARIOS) rows.push(row(scenarioTitle(s), results.burndown[s.key], b));
    const header = [
      '',
      'req/s',
      '÷ bare',
      'p50 ms',
      'p99 ms',
      'p99 (ac)',
      'max ms',
      'srv mean ms',
      'non-2xx/err/to',
      'cores srv/ac/other',
      'p99 < 5 ms',
      '≥ 60 %',
    ];
    const lines = rows.map(({ label, f, ratio }, i) => {
      const key = i === 0 ? 'bare' : SCENARIOS[i - 1].key;
      const p99Met = f.exactLatencyMs.p99 < TARGETS.p99MsBelow;
      const tputMet = ratio === null ? null : ratio >= TARGETS.throughputRatioMin;
      if (i > 0) verdicts[key] = { p99: p99Met, throughput: tputMet, ratio };
      return [
        label,
        fmt(f.reqPerSecMean),
        ratio === null ? '100 %' : `${fmt(ratio * 100, 1)} %`,
        fmt(f.exactLatencyMs.p50, 2),
        fmt(f.exactLatencyMs.p99, 2),
        fmt(f.latencyMs.p99),
        fmt(f.exactLatencyMs.max, 1),
        f.serverSideMeanMs === undefined ? '' : fmt(f.serverSideMeanMs, 3),
        `${f.non2xx}/${f.errors}/${f.timeouts}`,
        `${fmt(f.cpu.serverCores, 2)} / ${fmt(f.cpu.loadGeneratorCores, 2)} / ${fmt(f.cpu.otherProcessesCores, 2)}`,
        i === 0 ? '' : p99Met ? 'yes' : 'NO',
        i === 0 ? '' : tputMet ? 'yes' : 'NO',
      ];
    });
    log(table([header, ...lines]));
    const all = [b, ...SCENARIOS.map((s) => results.burndown[s.key])];
    const noisy = all.some((f) => f.cpu.otherProcessesCores >= QUIET_CORES);
    results.contaminatedByOtherProcesses = noisy;
    if (noisy) {
      for (const f of all)
        for (const o of f.cpu.topOtherProcesses)
          log(`  other: ${fmt(o.cores, 2)} cores  pid ${o.pid}  ${o.cmd}`);
      log(
        `WARNING: other processes used ≥ ${QUIET_CORES} cores during a measured HTTP window; these figures are contaminated.`,
      );
    }
    if (SCENARIOS.some((s) => results.burndown[s.key].non2xx + results.burndown[s.key].errors > 0))
      failed = true;
    log();
  }
  if (results.inProcess) {
    const ip = results.inProcess;
    const lines = SCENARIOS.map((s) => {
      const r = ip.checkNow[s.key];
      const met = r.perSec >= TARGETS.inProcessChecksPerSecMin;
      verdicts[`inProcess:${s.key}`] = { checksPerSec: met };
      return [
        `checkNow: ${scenarioTitle(s)}`,
        fmt(r.perSec),
        fmt(r.usPerCall, 1),
        fmt(ip.sql.perScenario[s.key]?.statementsPerCheck, 0),
        `${fmt(r.cpu.loopCores, 2)} / ${fmt(r.cpu.otherProcessesCores, 2)}`,
        met ? 'yes' : 'NO',
      ];
    });
    for (const [k, r] of Object.entries(ip.decideCheck)) {
      lines.push([
        `decideCheck alone (${k} facts)`,
        fmt(r.perSec),
        fmt(r.nsPerCall / 1000, 3),
        '0',
        `${fmt(r.cpu.loopCores, 2)} / ${fmt(r.cpu.otherProcessesCores, 2)}`,
        '',
      ]);
    }
    log(
      table([
        ['in-process, one thread', 'per s', 'µs each', 'SQL stmts', 'loop / other cores', '≥ 100,000/s'],
        ...lines,
      ]),
    );
    const noisy = [...Object.values(ip.checkNow), ...Object.values(ip.decideCheck)].some(
      (r) => r.cpu.otherProcessesCores >= QUIET_CORES,
    );
    results.inProcessContaminatedByOtherProcesses = noisy;
    if (noisy) log(`WARNING: other processes used ≥ ${QUIET_CORES} cores during an in-process window.`);
    log();
  }
  results.verdicts = verdicts;
  log(
    `verdict: ${Object.entries(verdicts)
      .map(([k, v]) =>
        Object.entries(v)
          .filter(([name]) => name !== 'ratio')
          .map(([name, met]) => `${k} ${name} ${met ? 'met' : 'NOT met'}`)
          .join(', '),
      )
      .join('; ')}`,
  );

  const out = join(here, 'results', PROFILE ? 'latest-check-profile.json' : 'latest-check.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log();
  log(`wrote ${out}`);
  if (failed) process.exitCode = 1;
}

if (process.argv[2] === '--in-process') {
  inProcessMain(process.argv[3]).catch((error) => {
    process.stderr.write(`in-process bench failed: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    process.stderr.write(`bench failed: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
}
