// What a group commit's transaction costs the writer thread as its batch grows: BEGIN, each job's
// statements, and COMMIT, timed with better-sqlite3 alone (no HTTP, no services) on a copy of a
// database that a real server seeded and then served debits to (so its B-trees and WAL look like
// the benchmark's). Each job is the shape of a debit's writes: a savepoint, its grant's and its
// balance's updates and an entry, at a random grant. SQLite is set up as the server sets up its
// writer (WAL, synchronous=NORMAL, a 256 MiB page cache, temp_store=MEMORY, no autocheckpoint).
// If COMMIT had a large fixed part, smaller batches (the pipelined WAL sync halves them over HTTP)
// would cost more per debit; the figures say how much.
//
//   npm run build && node bench/commit-cost.mjs
// Knobs: BENCH_PAGE_SIZES (4096; e.g. 1024,2048,4096,8192: the seeded file is rewritten with each
// by VACUUM), BENCH_BATCHES (1,5,25,45), BENCH_ROUNDS (200 transactions per batch size),
// BENCH_SEED_SECONDS (10 s of debits after seeding), BENCH_CUSTOMERS (1000, 12 grants each).
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  API_KEY,
  cli,
  createRequester,
  customerId,
  fmt,
  log,
  machine,
  num,
  runWrk,
  seedCustomers,
  startChild,
  table,
  WRK_DONE,
} from './lib.mjs';

const list = (name, fallback) => (process.env[name] ?? fallback).split(',').filter(Boolean).map(Number);
const PAGE_SIZES = list('BENCH_PAGE_SIZES', '4096');
const BATCHES = list('BENCH_BATCHES', '1,5,25,45');
const ROUNDS = num('BENCH_ROUNDS', 200);
const SEED_SECONDS = num('BENCH_SEED_SECONDS', 10);
const CUSTOMERS = num('BENCH_CUSTOMERS', 1000);

const dir = mkdtempSync(join(os.tmpdir(), 'burndown-commit-cost-'));
const seeded = join(dir, 'seeded.db');

/** A database seeded by a real server, then given SEED_SECONDS of debits over HTTP. */
async function seed() {
  const server = startChild('burndown', [cli, 'serve'], {
    PORT: '0',
    BURNDOWN_API_KEY: API_KEY,
    BURNDOWN_DATABASE_URL: `sqlite:${seeded}`,
    BURNDOWN_LOG_LEVEL: 'warn',
  });
  const url = await server.url;
  const { request } = createRequester(API_KEY);
  const ids = Array.from({ length: CUSTOMERS }, (_, c) => customerId(c));
  await seedCustomers({ request, baseUrls: [url], ids, grants: 12, grantAmount: '1000000' });
  const script = `wrk.method = "POST"
wrk.body = '{"amount":"1.5"}'
wrk.headers["Authorization"] = "Bearer ${API_KEY}"
wrk.headers["Content-Type"] = "application/json"
local paths = {}
for i = 0, ${CUSTOMERS - 1} do paths[#paths + 1] = string.format("/v1/customers/bench-cust-%05d/debits", i) end
request = function() return wrk.format(nil, paths[math.random(#paths)]) end
${WRK_DONE}`;
  await runWrk(url, script, SEED_SECONDS, 50, dir);
  await server.stop();
}

/** A copy of the seeded file with the given page size (VACUUM rewrites it). */
function copyWithPageSize(pageSize) {
  const path = join(dir, `copy-${pageSize}.db`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  copyFileSync(seeded, path);
  const db = new Database(path);
  if (db.pragma('page_size', { simple: true }) !== pageSize) {
    db.pragma('journal_mode = DELETE');
    db.pragma(`page_size = ${pageSize}`);
    db.exec('VACUUM');
  }
  db.pragma('journal_mode = WAL');
  db.close();
  return path;
}

const micros = () => Number(process.hrtime.bigint()) / 1000;

/** Mean µs of BEGIN, of one job and of COMMIT, over ROUNDS transactions of `size` jobs each. */
function measure(path, size) {
  const db = new Database(path);
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -262144');
  db.pragma('temp_store = MEMORY');
  db.pragma('wal_autocheckpoint = 0');
  const grants = db.prepare('SELECT id, workspace_id, customer_id, credit_type FROM grants').all();
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const savepoint = db.prepare('SAVEPOINT job');
  const release = db.prepare('RELEASE job');
  const grant = db.prepare('UPDATE grants SET available = ?, held = ? WHERE id = ?');
  const balance = db.prepare(
    'UPDATE balances SET consumed = ?, updated_at = ? WHERE workspace_id = ? AND customer_id = ? AND credit_type = ?',
  );
  const entry = db.prepare(
    `INSERT INTO entries (id, workspace_id, customer_id, credit_type, type, amount, from_account, to_account,
       grant_id, ref, at, balance_after, recorded_at)
     VALUES (?, ?, ?, ?, 'debit', '1.5', 'grant', 'consumed', ?, ?, ?, '100', ?)`,
  );
  let sequence = 0;
  const job = () => {
    const g = grants[Math.floor(Math.random() * grants.length)];
    const at = Date.now();
    savepoint.run();
    grant.run(String(sequence), '0', g.id);
    balance.run(String(sequence), at, g.workspace_id, g.customer_id, g.credit_type);
    entry.run(
      `ent_cc${sequence}`,
      g.workspace_id,
      g.customer_id,
      g.credit_type,
      g.id,
      `deb_cc${sequence}`,
      at,
      at,
    );
    release.run();
    sequence += 1;
  };
  // Warm the page cache and the statements first.
  for (let r = 0; r < 20; r++) {
    begin.run();
    for (let i = 0; i < size; i++) job();
    commit.run();
  }
  let beginning = 0;
  let jobs = 0;
  let committing = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = micros();
    begin.run();
    const t1 = micros();
    for (let i = 0; i < size; i++) job();
    const t2 = micros();
    commit.run();
    const t3 = micros();
    beginning += t1 - t0;
    jobs += t2 - t1;
    committing += t3 - t2;
  }
  db.close();
  return { begin: beginning / ROUNDS, job: jobs / ROUNDS / size, commit: committing / ROUNDS };
}

log(`Commit cost by batch size — ${new Date().toISOString()}`);
const m = machine();
log(`machine: ${m.nproc} CPU(s), ${m.cpuModel}, Node ${m.node}`);
try {
  await seed();
  const rows = [['page bytes', 'batch', 'BEGIN µs', 'µs per job', 'COMMIT µs', 'COMMIT µs per job']];
  for (const pageSize of PAGE_SIZES) {
    const path = copyWithPageSize(pageSize);
    for (const size of BATCHES) {
      const r = measure(path, size);
      rows.push([pageSize, size, fmt(r.begin, 1), fmt(r.job, 1), fmt(r.commit, 1), fmt(r.commit / size, 1)]);
    }
  }
  log();
  log(table(rows));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
