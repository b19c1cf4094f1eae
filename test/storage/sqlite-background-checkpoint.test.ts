import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkpointWorkerUrl } from '../../src/storage/sqlite/background-checkpoint.js';
import { SqliteStorage, walRestarter } from '../../src/storage/sqlite/sqlite-storage.js';

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

  it('starts the WAL over under write load that never pauses', async () => {
    // Writes queued back to back leave the background checkpoint no pause to catch up in, so the
    // WAL would only grow (about 34 MB here). Past `walRestartFrames` one batch waits for a whole
    // checkpoint and the next write starts the WAL over: its file stays a fraction of that.
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-wal-restart-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path, walRestartFrames: 256, walCheckpointIntervalMs: 50 });
    try {
      // 50 clients, each writing as soon as its previous write is answered: the committer's
      // queue is never empty, as under saturating traffic.
      let next = 0;
      const client = async () => {
        while (next < 6_000) {
          const i = next++;
          await storage.write(`ws/customer-${i}`, async (tx) =>
            tx.insertCustomer({
              workspaceId: 'ws',
              id: `customer-${i}`,
              name: null,
              metadata: { note: 'x'.repeat(3_000) },
              createdAt: 0,
            }),
          );
        }
      };
      await Promise.all(Array.from({ length: 50 }, client));
      const walBytes = statSync(`${path}-wal`).size;
      // Measured: 8–10 MB; with `walRestartFrames: 0` (no bound) 34 MB, the whole WAL never restarted.
      expect(walBytes).toBeLessThan(20_000_000);
    } finally {
      await storage.close();
    }
  });

  it('pauses writes only for the second of two checkpoints, the first running while they go on', async () => {
    // A checkpoint the test finishes by hand: `frames` and `reports` as the worker would report them.
    const asked: (() => void)[] = [];
    const checkpoint = {
      frames: 100,
      reports: 10,
      checkpointNow: () => new Promise<void>((resolve) => asked.push(resolve)),
    };
    const beforeBatch = walRestarter(checkpoint, { walRestartFrames: 1_000 });
    if (beforeBatch === undefined) throw new Error('a positive bound makes a restarter');
    // Under the bound: nothing is asked, no batch waits.
    expect(beforeBatch()).toBeUndefined();
    expect(asked).toHaveLength(0);
    // Past it: a first checkpoint is asked for, and batches go on while it runs.
    checkpoint.frames = 5_000;
    expect(beforeBatch()).toBeUndefined();
    expect(asked).toHaveLength(1);
    expect(beforeBatch()).toBeUndefined();
    expect(asked).toHaveLength(1);
    // Once it has reported, the next batch waits for a second one (what was written meanwhile).
    asked[0]?.();
    await Promise.resolve();
    const pause = beforeBatch();
    expect(pause).toBeInstanceOf(Promise);
    expect(asked).toHaveLength(2);
    let paused = true;
    void pause?.then(() => {
      paused = false;
    });
    await Promise.resolve();
    expect(paused).toBe(true);
    asked[1]?.();
    await pause;
    expect(paused).toBe(false);
    // The WAL length reported before the restart is stale: no new round until two periodic reports.
    expect(beforeBatch()).toBeUndefined();
    checkpoint.reports = 11;
    expect(beforeBatch()).toBeUndefined();
    expect(asked).toHaveLength(2);
    checkpoint.reports = 12;
    expect(beforeBatch()).toBeUndefined();
    expect(asked).toHaveLength(3);
    // A bound of 0 turns restarts off.
    expect(walRestarter(checkpoint, { walRestartFrames: 0 })).toBeUndefined();
  });
});
