import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CheckpointWorkerData } from './checkpoint-worker.js';

/**
 * Runs WAL checkpoints on a worker thread with its own connection, so copying the WAL back into
 * the database file (and that file's fsync) no longer happens inside a COMMIT on the thread that
 * serves requests. The writer's automatic checkpoint is turned off while this runs. Durability is
 * unchanged: a commit is durable once its WAL frames are fsync'd, checkpoints or not.
 */
export class BackgroundCheckpoint {
  private readonly worker: Worker;

  constructor(path: string, intervalMs = 250) {
    const workerData: CheckpointWorkerData = { path, intervalMs };
    this.worker = new Worker(checkpointWorkerUrl(), { workerData });
    this.worker.unref();
  }

  /** Stops the worker after a last checkpoint that empties the WAL. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.worker.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage('stop');
    });
    await this.worker.terminate();
  }
}

/**
 * Where the compiled worker module is. From dist/ it sits next to this module. Under the test
 * runner this module is the TypeScript source in src/, which a worker thread cannot load (Node 20
 * runs no TypeScript and the runner does not transform worker threads), so the same path under
 * dist/ is used: `npm test` builds first.
 */
export function checkpointWorkerUrl(moduleUrl: string = import.meta.url): URL {
  const beside = new URL('./checkpoint-worker.js', moduleUrl);
  if (!moduleUrl.endsWith('.ts')) return beside;
  const compiled = new URL(beside.href.replace(/\/src\/(?!.*\/src\/)/, '/dist/'));
  if (!existsSync(fileURLToPath(compiled))) {
    throw new Error(`${fileURLToPath(compiled)} is missing: run \`npm run build\` before the tests`);
  }
  return compiled;
}
