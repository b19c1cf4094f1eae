/**
 * The worker thread of {@link BackgroundCheckpoint} (./background-checkpoint.ts): its own
 * connection to the database runs a PASSIVE WAL checkpoint every `intervalMs`, and one at once
 * when the parent asks (`{ type: 'checkpoint', id }`); after each it reports the WAL's length
 * ({@link CheckpointReport}). On `{ type: 'stop' }` it runs a last TRUNCATE checkpoint, closes and
 * answers `closed`. A real module (compiled to dist/ like the rest) rather than a string, so it is
 * type-checked, linted and covered by the architecture test.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** What the parent passes in `workerData`. */
export interface CheckpointWorkerData {
  readonly path: string;
  readonly intervalMs: number;
}

/** What the parent sends. */
export type CheckpointRequest =
  | { readonly type: 'checkpoint'; readonly id: number }
  | { readonly type: 'stop' };

/**
 * What one checkpoint found: the WAL's length in frames and how many of them are now in the
 * database file (equal: the WAL may start over at the next write). `id` answers a request; null
 * for the periodic ones. `busy`: another checkpoint held the lock, nothing was done.
 */
export interface CheckpointReport {
  readonly type: 'report';
  readonly id: number | null;
  readonly busy: boolean;
  readonly frames: number;
  readonly checkpointed: number;
}

const port = parentPort;
if (port === null) throw new Error('checkpoint-worker runs only as a worker thread');
const { path, intervalMs } = workerData as CheckpointWorkerData;
const db = new Database(path);
db.pragma('busy_timeout = 5000');

function checkpoint(mode: 'PASSIVE' | 'TRUNCATE'): { busy: boolean; frames: number; checkpointed: number } {
  try {
    const [row] = db.pragma(`wal_checkpoint(${mode})`) as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    return { busy: row?.busy === 1, frames: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 };
  } catch {
    // Busy or locked: the next round (or the writer's own checkpoint at close) catches up.
    return { busy: true, frames: 0, checkpointed: 0 };
  }
}

function report(id: number | null): void {
  const found = checkpoint('PASSIVE');
  const message: CheckpointReport = { type: 'report', id, ...found };
  port?.postMessage(message);
}

const timer = setInterval(() => report(null), intervalMs);
port.on('message', (request: CheckpointRequest) => {
  if (request.type === 'checkpoint') {
    report(request.id);
    return;
  }
  clearInterval(timer);
  checkpoint('TRUNCATE');
  db.close();
  port.postMessage('closed');
});
