import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkpointWorkerUrl } from '../../src/storage/sqlite/background-checkpoint.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

/**
 * The WAL checkpoint thread runs from a real module (src/storage/sqlite/checkpoint-worker.ts,
 * compiled to dist/): from dist/ it is loaded beside its parent module, under the test runner
 * from dist/ too, and it does its job: with the writer's own checkpoints off, only it copies
 * committed pages from the WAL into the database file.
 */
describe('SQLite background checkpoint worker', () => {
  it('is loaded beside the compiled module, and from dist/ when the parent is TypeScript source', () => {
    const root = pathToFileURL('/opt/app/').href;
    expect(checkpointWorkerUrl(`${root}dist/storage/sqlite/background-checkpoint.js`).href).toBe(
      `${root}dist/storage/sqlite/checkpoint-worker.js`,
    );
    const fromSource = checkpointWorkerUrl(
      new URL('../../src/storage/sqlite/background-checkpoint.ts', import.meta.url).href,
    );
    expect(fromSource.pathname.endsWith('/dist/storage/sqlite/checkpoint-worker.js')).toBe(true);
    expect(() => checkpointWorkerUrl(`${root}src/storage/sqlite/background-checkpoint.ts`)).toThrow(
      /npm run build/,
    );
  });

  it('copies committed pages into the database file while the server runs', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-checkpoint-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    try {
      const before = statSync(path).size;
      await storage.write('bulk', async (tx) => {
        for (let i = 0; i < 2_000; i++) {
          await tx.insertCustomer({
            workspaceId: 'ws',
            id: `customer-${i}`,
            name: 'x'.repeat(200),
            metadata: {},
            createdAt: 0,
          });
        }
      });
      // Nothing but the worker checkpoints (wal_autocheckpoint = 0), every 250 ms.
      let grown = false;
      for (let i = 0; i < 40 && !grown; i++) {
        await sleep(100);
        grown = statSync(path).size > before + 200_000;
      }
      expect(grown).toBe(true);
    } finally {
      await storage.close();
    }
  });
});
