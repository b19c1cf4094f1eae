import type { Database, Statement } from 'better-sqlite3';

/**
 * Follows the transaction structure of group commit, so state kept beside the database (a cache)
 * can stage changes per job and make them visible only once they are durable.
 */
export interface CommitObserver {
  /** Before BEGIN of a batch. */
  beforeBatch(): void;
  /** The job's savepoint was released: keep what it staged for the batch. */
  jobSucceeded(): void;
  /** The job's savepoint was rolled back: forget what it staged. */
  jobFailed(): void;
  /** COMMIT succeeded: the batch's changes are durable. */
  batchCommitted(): void;
  /** COMMIT (or BEGIN) failed: nothing of the batch happened. */
  batchFailed(): void;
}

/** Tuning of the group committer. */
export interface GroupCommitOptions {
  /** Most jobs sharing one transaction (and one fsync). Default 2000 (an event batch is a job per customer). */
  readonly maxBatch?: number;
  /** Observer of batch sizes, for /metrics. */
  readonly onBatch?: (size: number) => void;
}

interface Job<T> {
  readonly work: () => Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * Group commit for SQLite: writes that arrive together share one transaction and one fsync,
 * each inside its own SAVEPOINT so it stays all-or-nothing on its own. Every caller is answered
 * only after the COMMIT that made its write durable; if the COMMIT fails, all of them fail.
 *
 * Batching happens naturally: while one batch commits (the event loop is blocked in fsync),
 * requests queue up and become the next batch. No timer adds latency.
 */
export class GroupCommitter {
  private queue: Job<unknown>[] = [];
  private scheduled = false;
  private running = false;
  private readonly maxBatch: number;
  /** Transaction control, prepared once (exec would parse the SQL on every call). */
  private readonly sql: Record<'begin' | 'savepoint' | 'release' | 'rollbackTo' | 'commit', Statement>;

  constructor(
    private readonly db: Database,
    private readonly options: GroupCommitOptions = {},
    private readonly observer: CommitObserver | null = null,
  ) {
    this.maxBatch = options.maxBatch ?? 2000;
    this.sql = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      savepoint: db.prepare('SAVEPOINT job'),
      release: db.prepare('RELEASE job'),
      rollbackTo: db.prepare('ROLLBACK TO job'),
      commit: db.prepare('COMMIT'),
    };
  }

  /** Queues `work`; resolves with its result after the batch containing it commits. */
  submit<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve, reject } as Job<unknown>);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.runBatch(batch);
        // Let the event loop answer other requests between commits of a long queue (a big ingest).
        if (this.queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Job<unknown>[]): Promise<void> {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.sql.begin.run();
      // After BEGIN IMMEDIATE holds the write lock: whatever another process committed while we
      // waited for it is now visible, and the observer (the cache) must learn of it here.
      this.observer?.beforeBatch();
      for (const job of batch) {
        this.sql.savepoint.run();
        try {
          const value = await job.work();
          this.sql.release.run();
          this.observer?.jobSucceeded();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // If SQLite already rolled back the whole transaction (I/O error, disk full), this
          // throws and the batch fails as a whole below.
          this.sql.rollbackTo.run();
          this.sql.release.run();
          this.observer?.jobFailed();
          outcomes.push({ ok: false, error });
        }
      }
      this.sql.commit.run();
    } catch (error) {
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // nothing more can be undone
        }
      }
      this.observer?.batchFailed();
      for (const job of batch) job.reject(error);
      return;
    }
    this.observer?.batchCommitted();
    this.options.onBatch?.(batch.length);
    batch.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }
}
