import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CheckpointReport, CheckpointRequest, CheckpointWorkerData } from './checkpoint-worker.js';

/** Longest a write waits for a requested checkpoint (ms). */
const CHECKPOINT_WAIT_MS = 1000;

/**
 * Runs WAL checkpoints on a worker thread with its own connection, so copying the WAL back into
 * the database file (and that file's fsync) no longer happens inside a COMMIT on the thread that
 * serves requests. The writer's automatic checkpoint is turned off while this runs. Durability is
 * unchanged: a commit is durable once its WAL frames are fsync'd, checkpoints or not.
 */
export class BackgroundCheckpoint {
  private readonly worker: Worker;
  /** The WAL's length in frames, as the latest checkpoint found it. */
  private walFrames = 0;
  private periodicReports = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();

  constructor(path: string, intervalMs = 250) {
    const workerData: CheckpointWorkerData = { path, intervalMs };
    this.worker = new Worker(checkpointWorkerUrl(), { workerData });
    this.worker.unref();
    this.worker.on('message', (message: CheckpointReport | 'closed') => {
      if (message === 'closed') return;
      this.walFrames = message.frames;
      if (message.id === null) {
        this.periodicReports++;
      } else {
        this.waiting.get(message.id)?.();
        this.waiting.delete(message.id);
      }
    });
    // A worker that is gone answers nobody: whoever waits for it goes on.
    const release = () => {
      for (const resolve of this.waiting.values()) resolve();
      this.waiting.clear();
    };
    this.worker.on('exit', release);
    this.worker.on('error', release);
  }

  /** How many periodic checkpoints have reported so far (one about every `intervalMs`). */
  get reports(): number {
    return this.periodicReports;
  }

  /** The WAL's length in frames when the latest checkpoint ran (about every `intervalMs`). */
  get frames(): number {
    return this.walFrames;
  }

  /**
   * Runs a checkpoint now and resolves when it is done (or when the worker is gone). Called while
   * no write runs, it copies the whole WAL into the database file, so the next write starts the
   * WAL over from its beginning.
   */
  checkpointNow(): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      // Never longer than this: writes wait for it (a checkpoint blocked by a reader gives up).
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve();
      }, CHECKPOINT_WAIT_MS);
      this.waiting.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      const request: CheckpointRequest = { type: 'checkpoint', id };
      this.worker.postMessage(request);
    });
  }

  /** Stops the worker after a last checkpoint that empties the WAL. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.worker.on('message', (message: unknown) => {
        if (message !== 'closed') return;
        clearTimeout(timer);
        resolve();
      });
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      const request: CheckpointRequest = { type: 'stop' };
      this.worker.postMessage(request);
    });
    for (const resolve of this.waiting.values()) resolve();
    this.waiting.clear();
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
