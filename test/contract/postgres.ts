import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';

/**
 * PostgreSQL for tests, which never skip: BURNDOWN_TEST_POSTGRES_URL is set either by whoever runs
 * the tests (CI sets it to a fresh database on the system server; locally, for example
 *   BURNDOWN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test npm test)
 * or by the global setup (test/setup/postgres-global.ts), which starts an embedded PostgreSQL
 * when it is unset. A test file importing this module without either fails at once.
 * Each storage opened here lives in a schema of its own, dropped when it is closed.
 */
export const POSTGRES_URL: string = requiredPostgresUrl();

function requiredPostgresUrl(): string {
  const url = process.env['BURNDOWN_TEST_POSTGRES_URL'];
  if (!url)
    throw new Error(
      'BURNDOWN_TEST_POSTGRES_URL is not set: run the tests through vitest.config.ts (its global setup starts an embedded PostgreSQL) or set it',
    );
  return url;
}

/**
 * Migrated schemas this test process emptied and may hand out again. Creating a schema and
 * applying every migration takes a second or more per storage (tests and property runs open
 * hundreds); emptying the tables of one already migrated takes a few milliseconds. An emptied
 * schema is indistinguishable from a fresh one: migrations insert no rows, and identities restart.
 */
const emptied: string[] = [];

/**
 * Schemas are named after the run (the global setup sets BURNDOWN_TEST_SCHEMA_PREFIX and drops
 * every schema with that prefix when the run ends), so reused schemas never outlive the run.
 */
const SCHEMA_PREFIX = process.env['BURNDOWN_TEST_SCHEMA_PREFIX'] ?? 'bd_test_';

/** Runs one statement on a connection of its own (a test's schema created or dropped around it). */
export async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

export async function openPostgresInFreshSchema(
  options: { checkpointInterval?: number } = {},
): Promise<PostgresStorage> {
  let schema = emptied.pop();
  if (schema === undefined) {
    schema = `${SCHEMA_PREFIX}${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
  }
  const name = schema;
  const storage = await PostgresStorage.open({
    connectionString: POSTGRES_URL,
    schema: name,
    poolSize: 8,
    ...options,
  });
  const close = storage.close.bind(storage);
  let closed = false;
  storage.close = async () => {
    if (closed) return;
    closed = true;
    await close();
    const cleaner = new pg.Client({ connectionString: POSTGRES_URL });
    await cleaner.connect();
    try {
      if (SCHEMA_PREFIX === 'bd_test_') {
        // No run-wide teardown to drop it later (run outside vitest.config.ts): drop it now.
        await cleaner.query(`DROP SCHEMA ${name} CASCADE`);
        return;
      }
      const { rows } = await cleaner.query<{ tablename: string }>(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'",
        [name],
      );
      if (rows.length > 0)
        await cleaner.query(
          `TRUNCATE ${rows.map((r) => `${name}."${r.tablename}"`).join(', ')} RESTART IDENTITY CASCADE`,
        );
      emptied.push(name);
    } finally {
      await cleaner.end();
    }
  };
  return storage;
}
