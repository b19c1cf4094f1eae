import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';

/**
 * PostgreSQL for tests. Tests that need it run when BURNDOWN_TEST_POSTGRES_URL is set (CI sets
 * it to a fresh database it creates and drops); locally, for example:
 *   BURNDOWN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test npm test
 * Each storage opened here lives in a schema of its own, dropped when it is closed.
 */
export const POSTGRES_URL = process.env['BURNDOWN_TEST_POSTGRES_URL'] ?? null;

export async function openPostgresInFreshSchema(): Promise<PostgresStorage> {
  if (!POSTGRES_URL) throw new Error('BURNDOWN_TEST_POSTGRES_URL is not set');
  const schema = `bd_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const storage = await PostgresStorage.open({ connectionString: POSTGRES_URL, schema, poolSize: 8 });
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
