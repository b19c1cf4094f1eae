import type { Database } from 'better-sqlite3';

/** Tuning of the group committer. */
export interface GroupCommitOptions {
  /** Most jobs sharing one transaction (and one fsync). Default 500. */
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

  constructor(
    private readonly db: Database,
    private readonly options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
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
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Job<unknown>[]): Promise<void> {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    for (const job of batch) {
      this.db.exec('SAVEPOINT job');
      try {
        const value = await job.work();
        this.db.exec('RELEASE job');
        outcomes.push({ ok: true, value });
      } catch (error) {
        this.db.exec('ROLLBACK TO job');
        this.db.exec('RELEASE job');
        outcomes.push({ ok: false, error });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const job of batch) job.reject(error);
      return;
    }
    this.options.onBatch?.(batch.length);
    batch.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }
}
