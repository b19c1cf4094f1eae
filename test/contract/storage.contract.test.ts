import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { openPostgresInFreshSchema, POSTGRES_URL } from './postgres.js';
import { describeStorageContract } from './storage-contract.js';

/**
 * The same contract suite over every adapter. SQLite always runs; PostgreSQL joins when
 * BURNDOWN_TEST_POSTGRES_URL is set (its adapter is not implemented yet in this build).
 */
describeStorageContract('sqlite (memory)', () => SqliteStorage.open({ path: ':memory:' }));

describeStorageContract('sqlite (file, separate read connection)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-contract-'));
  return SqliteStorage.open({ path: join(dir, 'ledger.db') });
});

if (POSTGRES_URL) describeStorageContract('postgres', openPostgresInFreshSchema);
else
  describe.skip('storage contract: postgres (set BURNDOWN_TEST_POSTGRES_URL to run)', () =>
    it('runs', () => undefined));
