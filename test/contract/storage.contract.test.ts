import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { openPostgresInFreshSchema } from './postgres.js';
import { describeStorageContract } from './storage-contract.js';

/**
 * The same contract suite over every adapter, PostgreSQL included: it never skips (see
 * test/contract/postgres.ts).
 */
describeStorageContract('sqlite (memory)', () => SqliteStorage.open({ path: ':memory:' }));

describeStorageContract('sqlite (file, separate read connection)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-contract-'));
  return SqliteStorage.open({ path: join(dir, 'ledger.db') });
});

describeStorageContract('postgres', openPostgresInFreshSchema);
