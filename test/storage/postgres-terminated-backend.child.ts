import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';

/**
 * Run as its own process by postgres-terminated-backend.test.ts, so that a crash is an exit code
 * and not an error inside the test worker. Reproduces, deterministically, what killed server
 * processes under CPU load when PostgreSQL terminated backends:
 *
 * a pooled connection finishes a read (pool.query) while a write waits for a connection; its
 * backend is then terminated before this process reads the socket again (the event loop is busy),
 * so one chunk carries both the read's ReadyForQuery and the FATAL 57P01. Parsing the first hands
 * the connection to the waiting write (pg-pool removes its idle 'error' listener), then parsing the
 * second emits 'error' on a client nobody listens to yet: an uncaught exception, the process dies.
 *
 * Prints one JSON line with what happened and exits 0 when the storage survived and still works.
 */

const url = process.env['BURNDOWN_TEST_POSTGRES_URL'];
if (!url) throw new Error('BURNDOWN_TEST_POSTGRES_URL is not set');
const schema = `bd_test_${randomBytes(6).toString('hex')}`;
const app = `bd_term_${randomBytes(6).toString('hex')}`;

const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);

/** This storage's backends (found by the application name only it uses, so no other test's). */
async function backends(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
    [app],
  );
  return rows.map((r) => r.pid);
}

const withApp = new URL(url);
withApp.searchParams.set('application_name', app);
const storage = await PostgresStorage.open({ connectionString: withApp.toString(), schema, poolSize: 1 });
/** A read through the pool (pool.query), as the API's reads are. */
const readCustomer = async () => storage.read.getCustomer('w', 'nobody');
let outcome: Record<string, unknown> = {};
try {
  // The connection that migrated is replaced by one that has only served reads (pool.query).
  const first = await backends();
  await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [first]);
  let pid: number | undefined;
  for (let i = 0; i < 200 && pid === undefined; i++) {
    await readCustomer().catch(() => undefined);
    const now = await backends();
    if (now.length === 1 && !first.includes(now[0]!)) pid = now[0];
  }
  if (pid === undefined) throw new Error('the pool did not replace its terminated connection');

  // The backend is terminated 300 ms from now, by PostgreSQL itself, while this process is busy.
  const terminator = admin.query(
    `DO $$ BEGIN PERFORM pg_sleep(0.3); PERFORM pg_terminate_backend(${pid}); END $$`,
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  const read = readCustomer();
  const write = storage.write('w/nobody', async (tx) => tx.getCustomer('w', 'nobody'));
  // Let the read be sent (pg-pool hands out an idle connection on the next tick), not answered...
  await new Promise((resolve) => process.nextTick(resolve));
  // ...then keep the event loop busy past the termination, so both arrive in one chunk.
  const until = Date.now() + 900;
  while (Date.now() < until) {
    // busy: a CPU-starved server reads its sockets late
  }
  await terminator;
  const readResult = await read.then(
    () => 'ok',
    (error: Error) => `rejected: ${error.message}`,
  );
  const writeResult = await write.then(
    () => 'ok',
    (error: Error) => `rejected: ${error.message}`,
  );
  // And it keeps serving: new connections replace the terminated one.
  await readCustomer();
  await storage.write('w/nobody', async (tx) => tx.getCustomer('w', 'nobody'));
  outcome = { terminated: pid, read: readResult, write: writeResult, after: 'ok' };
} finally {
  await storage.close().catch(() => undefined);
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);
