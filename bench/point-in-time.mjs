// Point-in-time reads on a large ledger: one customer with BENCH_ENTRIES (default 1,000,000)
// entries spread over a year, written straight through the storage layer in transactions of
// BENCH_BATCH debits (no HTTP). Then, in-process:
//   - before: the balance at an instant as the full sum of the customer's entries up to it
//     (entriesUpTo + balanceFromEntries, what `?at=` did before checkpoints), a few instants;
//   - after: `readBalance(at)` through the service (a checkpoint plus the entries after it), p50/p99
//     over BENCH_READS random instants, and the same on a fresh customer with a handful of entries;
//   - a 365-point daily series (`readBalanceSeries`), and the best the full sum could do for it
//     (one pass over every entry, sorted once);
//   - debits (service `debitCredits`, one per transaction) on the large and on a fresh customer.
// Usage: npm run build && node bench/point-in-time.mjs [--dist <dir>]
//   BENCH_POSTGRES_URL=postgres://… also runs it on PostgreSQL (a fresh schema, dropped after).
//   BENCH_DEBITS_ONLY=1 with --dist <old build>/dist measures only debits (to compare builds).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { log, num, root } from './lib.mjs';

const distArg = process.argv.indexOf('--dist');
const dist = distArg > 0 ? process.argv[distArg + 1] : join(root, 'dist');
const load = (path) => import(pathToFileURL(join(dist, path)).href);

const { Amount } = await load('domain/amount/amount.js');
const { CreditLedger } = await load('domain/ledger/credit-ledger.js');
const { TimeOrderedIds } = await load('infra/ids.js');
const { SqliteStorage } = await load('storage/sqlite/sqlite-storage.js');
const ledgerService = await load('services/ledger.js');
const pointInTime = await load('domain/ledger/point-in-time.js');

const ENTRIES = num('BENCH_ENTRIES', 1_000_000);
const BATCH = num('BENCH_BATCH', 100);
const READS = num('BENCH_READS', 200);
const DEBITS = num('BENCH_DEBITS', 2_000);
const DEBITS_ONLY = process.env.BENCH_DEBITS_ONLY === '1';
const DAY = 86_400_000;

const clock = { now: () => Date.now() };
const ids = new TimeOrderedIds(() => Date.now());

/** Deterministic pseudo-random numbers (mulberry32), so runs read the same instants. */
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

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function stats(ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 100) / 100;
  return {
    n: sorted.length,
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1)),
  };
}

async function time(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

async function createCustomer(storage, id, createdAt) {
  await storage.write(id, async (tx) => {
    await tx.ensureWorkspace('ws', createdAt);
    await tx.insertCustomer({ workspaceId: 'ws', id, name: null, metadata: {}, createdAt });
  });
}

/** What `saveLedger` takes: a change set (builds before change sets took the engine object itself). */
const changesOf = (ledger) => (typeof ledger.takeChanges === 'function' ? ledger.takeChanges() : ledger);

/** Writes `entries` debit entries for one customer over [start, end), BATCH debits per transaction. */
async function buildLedger(storage, key, entries, start, end) {
  await storage.write(key.customerId, async (tx) => {
    const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
    const grant = {
      amount: Amount.parse('1000000000000'),
      category: 'paid',
      priority: 10,
      effectiveAt: start,
      expiresAt: null,
      costBasis: null,
      appliesTo: null,
      description: null,
      metadata: {},
    };
    ledger.grant(grant, start);
    await tx.saveLedger('ws', changesOf(ledger), start);
  });
  const step = (end - start) / entries;
  const amount = Amount.parse('1.5');
  let written = 0;
  const began = Date.now();
  while (written < entries) {
    const n = Math.min(BATCH, entries - written);
    await storage.write(key.customerId, async (tx) => {
      const ledger = new CreditLedger(await tx.loadLedgerForUpdate(key), ids);
      let now = start;
      for (let i = 0; i < n; i++) {
        now = Math.floor(start + (written + i + 1) * step);
        ledger.advanceTo(now);
        const debit = ledger.debit({ amount, allowOverage: true }, now);
        if ('refused' in debit) throw new Error('refused');
      }
      await tx.saveLedger('ws', changesOf(ledger), now);
    });
    written += n;
    if (written % 100_000 === 0)
      log(`  ${written.toLocaleString()} entries (${((Date.now() - began) / 1000).toFixed(0)} s)`);
  }
  return (Date.now() - began) / 1000;
}

/** The balance at `at` as the full sum of every entry up to it (the read before checkpoints). */
async function fullSum(storage, key, at) {
  const entries = await storage.read.entriesUpTo(key, at);
  const grantIds = [...new Set(entries.flatMap((e) => (e.grantId ? [e.grantId] : [])))];
  const grants = new Map((await storage.read.getGrantsByIds('ws', grantIds)).map((g) => [g.id, g]));
  return pointInTime.balanceFromEntries({
    customerId: key.customerId,
    creditType: key.creditType,
    at,
    entries,
    grants,
  });
}

/** The best a full sum can do for a series: one pass over every entry, sorted by instant. */
async function fullSumSeries(storage, key, instants) {
  const entries = await storage.read.entriesUpTo(key, instants.at(-1));
  const grantIds = [...new Set(entries.flatMap((e) => (e.grantId ? [e.grantId] : [])))];
  const grants = new Map((await storage.read.getGrantsByIds('ws', grantIds)).map((g) => [g.id, g]));
  const balances = new Map();
  const out = [];
  let i = 0;
  for (const at of instants) {
    for (; i < entries.length && entries[i].at <= at; i++) {
      const e = entries[i];
      balances.set(e.fromAccount, (balances.get(e.fromAccount) ?? 0n) - e.amount.units);
      balances.set(e.toAccount, (balances.get(e.toAccount) ?? 0n) + e.amount.units);
    }
    out.push(
      pointInTime.balanceFromAccounts({
        customerId: key.customerId,
        creditType: key.creditType,
        at,
        balances,
        grants,
      }),
    );
  }
  return out;
}

async function measureDebits(storage, ctx, key) {
  const ms = [];
  for (let i = 0; i < DEBITS; i++) {
    const { ms: took } = await time(() =>
      storage.write(key.customerId, (tx) =>
        ledgerService.debitCredits(ctx, tx, {
          key,
          now: Date.now(),
          amount: Amount.parse('0.5'),
          allowOverage: true,
          description: null,
          metadata: {},
        }),
      ),
    );
    ms.push(took);
  }
  return stats(ms.slice(Math.floor(DEBITS / 10)));
}

async function run(name, storage, cleanup) {
  const ctx = { storage, clock, ids };
  const result = { backend: name };
  const end = Date.now() - DAY;
  const start = end - 365 * DAY;
  const big = { workspaceId: 'ws', customerId: 'big', creditType: 'credits' };
  const fresh = { workspaceId: 'ws', customerId: 'fresh', creditType: 'credits' };
  await createCustomer(storage, 'big', start);
  await createCustomer(storage, 'fresh', start);
  await storage.write('x', (tx) =>
    tx.insertCreditType({ workspaceId: 'ws', id: 'credits', name: null, createdAt: start }),
  );
  if (DEBITS_ONLY) {
    await buildLedger(storage, fresh, 10, start, end);
    result.debitsFreshMs = await measureDebits(storage, ctx, fresh);
    log(
      `${name}: debits on a fresh customer (ms per debit, one per transaction): ${JSON.stringify(result.debitsFreshMs)}`,
    );
    await cleanup();
    return result;
  }
  log(`${name}: writing ${ENTRIES.toLocaleString()} entries in transactions of ${BATCH} …`);
  result.buildSeconds = await buildLedger(storage, big, ENTRIES, start, end);
  await buildLedger(storage, fresh, 10, start, end);
  log(`${name}: built in ${result.buildSeconds.toFixed(1)} s`);
  const rand = prng(42);
  const instants = Array.from({ length: READS }, () => Math.floor(start + rand() * (end - start)));

  // Warm-up (page cache, prepared statements).
  for (const at of instants.slice(0, 10)) await ledgerService.readBalance(ctx, { key: big, at });

  const after = [];
  for (const at of instants)
    after.push((await time(() => ledgerService.readBalance(ctx, { key: big, at }))).ms);
  result.balanceAtBig = stats(after);
  const freshReads = [];
  for (const at of instants)
    freshReads.push((await time(() => ledgerService.readBalance(ctx, { key: fresh, at }))).ms);
  result.balanceAtFresh = stats(freshReads);
  log(
    `${name}: balance at an instant, ${ENTRIES.toLocaleString()} entries: ${JSON.stringify(result.balanceAtBig)} ms`,
  );
  log(`${name}: balance at an instant, fresh customer: ${JSON.stringify(result.balanceAtFresh)} ms`);

  const before = [];
  let mismatches = 0;
  for (const at of instants.slice(0, 5)) {
    const { ms, value } = await time(() => fullSum(storage, big, at));
    before.push(ms);
    const checkpointed = await ledgerService.readBalance(ctx, { key: big, at });
    if (JSON.stringify(value) !== JSON.stringify(checkpointed)) mismatches++;
  }
  result.balanceAtBigFullSum = stats(before);
  result.mismatchesAgainstFullSum = mismatches;
  log(
    `${name}: the same as a full sum (before checkpoints), 5 instants: ${JSON.stringify(result.balanceAtBigFullSum)} ms; mismatches: ${mismatches}`,
  );

  const seriesFrom = start + DAY;
  const seriesTo = start + 365 * DAY;
  const series = [];
  for (let i = 0; i < 3; i++) {
    series.push(
      (
        await time(() =>
          ledgerService.readBalanceSeries(ctx, { key: big, from: seriesFrom, to: seriesTo, step: 'day' }),
        )
      ).ms,
    );
  }
  result.series365Ms = stats(series);
  const daily = Array.from({ length: 365 }, (_, i) => seriesFrom + i * DAY);
  const pass = await time(() => fullSumSeries(storage, big, daily));
  result.series365FullSumOnePassMs = Math.round(pass.ms);
  const checkpointedSeries = await ledgerService.readBalanceSeries(ctx, {
    key: big,
    from: seriesFrom,
    to: seriesTo,
    step: 'day',
  });
  result.seriesMismatches = checkpointedSeries.filter(
    (b, i) => JSON.stringify(b) !== JSON.stringify(pass.value[i]),
  ).length;
  log(
    `${name}: 365-point daily series: ${JSON.stringify(result.series365Ms)} ms; full sum in one pass: ${result.series365FullSumOnePassMs} ms; mismatches: ${result.seriesMismatches}`,
  );

  result.debitsBigMs = await measureDebits(storage, ctx, big);
  result.debitsFreshMs = await measureDebits(storage, ctx, fresh);
  log(
    `${name}: debits (ms per debit, one per transaction): big ${JSON.stringify(result.debitsBigMs)}, fresh ${JSON.stringify(result.debitsFreshMs)}`,
  );
  await cleanup();
  return result;
}

const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  entries: ENTRIES,
  batch: BATCH,
  dist,
  runs: [],
};

const dir = mkdtempSync(join(tmpdir(), 'burndown-pit-'));
// Durability is not what is measured: the ledger is built with synchronous=OFF to save time.
const sqlite = await SqliteStorage.open({ path: join(dir, 'db.sqlite'), synchronous: 'OFF' });
results.runs.push(
  await run('sqlite', sqlite, async () => {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }),
);

if (process.env.BENCH_POSTGRES_URL) {
  const { PostgresStorage } = await load('storage/postgres/postgres-storage.js');
  const pg = (await import('pg')).default;
  const schema = `bench_pit_${Date.now()}`;
  const admin = new pg.Client({ connectionString: process.env.BENCH_POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const storage = await PostgresStorage.open({ connectionString: process.env.BENCH_POSTGRES_URL, schema });
  results.runs.push(
    await run('postgres', storage, async () => {
      await storage.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }),
  );
}

if (!DEBITS_ONLY) {
  writeFileSync(
    join(root, 'bench', 'results', 'latest-point-in-time.json'),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  log('written bench/results/latest-point-in-time.json');
}
