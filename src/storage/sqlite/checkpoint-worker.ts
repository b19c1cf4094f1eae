/**
 * The worker thread of {@link BackgroundCheckpoint} (./background-checkpoint.ts): its own
 * connection to the database runs a PASSIVE WAL checkpoint every `intervalMs`, and on any message
 * from the parent a last TRUNCATE checkpoint, then closes and answers `closed`. A real module
 * (compiled to dist/ like the rest) rather than a string, so it is type-checked, linted and
 * covered by the architecture test.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** What the parent passes in `workerData`. */
export interface CheckpointWorkerData {
  readonly path: string;
  readonly intervalMs: number;
}

const port = parentPort;
if (port === null) throw new Error('checkpoint-worker runs only as a worker thread');
const { path, intervalMs } = workerData as CheckpointWorkerData;
const db = new Database(path);
db.pragma('busy_timeout = 5000');

function checkpoint(mode: 'PASSIVE' | 'TRUNCATE'): void {
  try {
    db.pragma(`wal_checkpoint(${mode})`);
  } catch {
    // Busy or locked: the next round (or the writer's own checkpoint at close) catches up.
  }
}

const timer = setInterval(() => checkpoint('PASSIVE'), intervalMs);
port.on('message', () => {
  clearInterval(timer);
  checkpoint('TRUNCATE');
  db.close();
  port.postMessage('closed');
});
