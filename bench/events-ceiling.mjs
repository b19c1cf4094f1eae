// The ceiling of bench/events.mjs: raw better-sqlite3 inserts of the same event rows into a table
// shaped like Burndown's `events` (the same CREATE TABLE and CREATE INDEX statements, taken from
// dist/storage/migrations/sqlite.js, and the same INSERT … ON CONFLICT DO NOTHING from
// dist/storage/sql/queries.js), with the same durability and WAL set-up as Burndown's writer: WAL,
// synchronous=FULL, the same page cache, automatic checkpoints off and PASSIVE checkpoints from
// Burndown's own BackgroundCheckpoint worker. `BATCH` rows per transaction (default 1,000).
// No HTTP, no JSON, no validation, no burn: only the event rows.
//
//   node bench/events-ceiling.mjs <db path> <seconds> <customers> [batch]
//   → prints one line of JSON: {"rows", "transactions", "insertSec", "wallSec", …}
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { customerIds, dataText, EVENT_TYPE, eventId, randomEvent, WORKSPACE } from './event-gen.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { SQLITE_MIGRATIONS } = await import(join(root, 'dist/storage/migrations/sqlite.js'));
const { Q } = await import(join(root, 'dist/storage/sql/queries.js'));
const { BackgroundCheckpoint } = await import(join(root, 'dist/storage/sqlite/background-checkpoint.js'));

const [path, secondsArg, customersArg, batchArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 10);
const customers = customerIds(Number(customersArg ?? 10_000));
const batch = Number(batchArg ?? 1000);

// the events table and its indexes, exactly as migrated
const allSql = SQLITE_MIGRATIONS.map((m) => m.sql).join('\n');
const table = /CREATE TABLE events \([\s\S]*?\)[^;]*;/.exec(allSql)?.[0];
const indexes = allSql.match(/CREATE (?:UNIQUE )?INDEX \w+ ON events \([^)]*\);/g) ?? [];
// columns later migrations added to the table (unmetered, duplicates, reversed_at, …)
const alterations = allSql.match(/ALTER TABLE events ADD COLUMN [^;]*;/g) ?? [];
if (!table) throw new Error('no CREATE TABLE events in the migrations');

const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('cache_size = -262144');
db.exec(table);
for (const alteration of alterations) db.exec(alteration);
for (const ix of indexes) db.exec(ix);
db.pragma('wal_autocheckpoint = 0');
const checkpoint = new BackgroundCheckpoint(path);

const insert = db.prepare(Q.insertEvent);
/** How many values the server's insert takes (it grew with migrations). */
const insertArity = (Q.insertEvent.match(/\?/g) ?? []).length;
const begin = db.prepare('BEGIN IMMEDIATE');
const commit = db.prepare('COMMIT');

const tag = `ceil${process.pid}`;
let seq = 0;
let rows = 0;
let transactions = 0;
let insertNs = 0n;
let genNs = 0n;
const commitMs = [];
const t0 = process.hrtime.bigint();
const deadline = t0 + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < deadline) {
  // the rows of one transaction, built first (not timed as insert time)
  const g0 = process.hrtime.bigint();
  const now = Date.now();
  const params = new Array(batch);
  for (let i = 0; i < batch; i++) {
    const e = randomEvent(customers);
    const id = eventId(tag, 0, seq++);
    const row = [WORKSPACE, `id:${id}`, id, null, EVENT_TYPE, e.customer, now, dataText(e), 1, now];
    // Later columns of the insert (`unmetered`, 0: the bench's events are all metered).
    while (row.length < insertArity) row.push(0);
    params[i] = row;
  }
  const i0 = process.hrtime.bigint();
  begin.run();
  for (const p of params) rows += insert.run(...p).changes;
  const c0 = process.hrtime.bigint();
  commit.run();
  const i1 = process.hrtime.bigint();
  commitMs.push(Number(i1 - c0) / 1e6);
  genNs += i0 - g0;
  insertNs += i1 - i0;
  transactions += 1;
  // let the process breathe between transactions, as the server's event loop would
  await new Promise((r) => setImmediate(r));
}
const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
await checkpoint.stop();
db.close();
commitMs.sort((a, b) => a - b);
const q = (p) => commitMs[Math.min(commitMs.length - 1, Math.ceil(p * commitMs.length) - 1)] ?? null;
const insertSec = Number(insertNs) / 1e9;
process.stdout.write(
  `${JSON.stringify({
    rows,
    transactions,
    rowsPerTransaction: batch,
    wallSec,
    insertSec,
    generateSec: Number(genNs) / 1e9,
    rowsPerSecInsert: rows / insertSec,
    rowsPerSecWall: rows / wallSec,
    // CPU of this whole process (main thread, checkpoint worker, SQLite), start-up included
    cpuSec: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    commitMs: { p50: q(0.5), p99: q(0.99), max: commitMs[commitMs.length - 1] ?? null },
    schema: [table.replace(/\s+/g, ' '), ...indexes],
    insertSql: Q.insertEvent.replace(/\s+/g, ' '),
  })}\n`,
);
