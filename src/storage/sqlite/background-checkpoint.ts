import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Runs WAL checkpoints on a worker thread with its own connection, so copying the WAL back into
 * the database file (and that file's fsync) no longer happens inside a COMMIT on the thread that
 * serves requests. The writer's automatic checkpoint is turned off while this runs. Durability is
 * unchanged: a commit is durable once its WAL frames are fsync'd, checkpoints or not.
 */
export class BackgroundCheckpoint {
  private readonly worker: Worker;

  constructor(path: string, intervalMs = 250) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // Plain JavaScript evaluated in the worker, so it runs the same from dist/ and under the test runner.
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      const Database = require(workerData.driver);
      const db = new Database(workerData.path);
      db.pragma('busy_timeout = 5000');
      const checkpoint = (mode) => { try { db.pragma('wal_checkpoint(' + mode + ')'); } catch {} };
      const timer = setInterval(() => checkpoint('PASSIVE'), workerData.intervalMs);
      parentPort.on('message', () => {
        clearInterval(timer);
        checkpoint('TRUNCATE');
        db.close();
        parentPort.postMessage('closed');
      });
    `;
    this.worker = new Worker(source, { eval: true, workerData: { driver, path, intervalMs } });
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
