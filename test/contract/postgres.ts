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

export async function openPostgresInFreshSchema(
  options: { checkpointInterval?: number } = {},
): Promise<PostgresStorage> {
  const schema = `bd_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const storage = await PostgresStorage.open({
    connectionString: POSTGRES_URL,
    schema,
    poolSize: 8,
    ...options,
  });
  const close = storage.close.bind(storage);
  storage.close = async () => {
    await close();
    const dropper = new pg.Client({ connectionString: POSTGRES_URL });
    await dropper.connect();
    await dropper.query(`DROP SCHEMA ${schema} CASCADE`);
    await dropper.end();
  };
  return storage;
}
