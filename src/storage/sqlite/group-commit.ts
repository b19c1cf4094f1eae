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
  /** Called after each successful COMMIT with the batch's size (for /metrics, and the read cache's notice). */
  readonly onBatch?: (size: number) => void;
  /**
   * Makes a committed batch durable (a WAL fsync on the thread pool, src/storage/sqlite/wal-sync.ts)
   * when `COMMIT` itself does not. The batch's callers are answered only once it resolves, while
   * the next batch already runs (pipelined group commit). If it fails, the batch's callers get the
   * error and the committer refuses every later write: whether the data reached the disk is
   * unknown, and only a restart (which recovers from the WAL) can tell.
   */
  readonly durableAfter?: () => Promise<void>;
  /** A monotonic clock in milliseconds, for timing batches (tests pass their own). */
  readonly monotonicMs?: () => number;
  /**
   * Asked before each batch, between transactions: a promise holds the next batch back until it
   * resolves (the storage lets the WAL be checkpointed whole, so the next write starts it over).
   * Writes keep queueing meanwhile.
   */
  readonly betweenBatches?: () => Promise<void> | undefined;
}

/** Most event-loop turns a batch waits for writes to join it (see `gather`). */
const GATHER_TURNS = 16;
/**
 * With no sync in flight, a batch waits a turn for more writes only after a batch that ran at least
 * this long (ms): ten times a slow local fdatasync, so a sync is short against such batches (see `gather`).
 */
const LONG_BATCH_MS = 50;

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
 * Batching happens naturally: while one batch runs (and, with `durableAfter`, while its WAL sync
 * runs on the thread pool), requests queue up and become the next batch. No timer adds latency.
 */
export class GroupCommitter {
  private queue: Job<unknown>[] = [];
  private scheduled = false;
  private running = false;
  /** Set when making a batch durable failed: every later write is refused with it. */
  private failure: unknown = null;
  /** Batches committed whose callers wait for durability. */
  private pendingDurability = new Set<Promise<void>>();
  /** Wall time of the last batch from BEGIN to COMMIT (ms). */
  private lastBatchMs = 0;
  private readonly maxBatch: number;
  private readonly monotonicMs: () => number;
  /** Transaction control, prepared once (exec would parse the SQL on every call). */
  private readonly sql: Record<'begin' | 'savepoint' | 'release' | 'rollbackTo' | 'commit', Statement>;

  constructor(
    private readonly db: Database,
    private readonly options: GroupCommitOptions = {},
    private readonly observer: CommitObserver | null = null,
  ) {
    this.maxBatch = options.maxBatch ?? 2000;
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
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
    if (this.failure !== null) return Promise.reject(this.failure);
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
        const held = this.options.betweenBatches?.();
        if (held !== undefined) await held;
        await this.gather();
        const batch = this.queue.splice(0, this.maxBatch);
        if (this.failure !== null) {
          // Writes queued before a failed sync was known: never run, never acknowledged.
          for (const job of batch) job.reject(this.failure);
          continue;
        }
        await this.runBatch(batch);
        // Let the event loop answer other requests between commits of a long queue (a big ingest).
        if (this.queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Before a batch starts, lets the event loop take in the requests it has already received, turn
   * by turn, so they join this batch instead of the next one: a batch's commit costs the main
   * thread about as much for 20 writes as for 50 (the pages shared, BEGIN, COMMIT, the sync
   * request), and its callers would wait for a sync anyway. Stops at the first turn that brings no
   * new write (the thread never idles for it), when the sync ends (unless it waits without one, see
   * below), or after {@link GATHER_TURNS} turns.
   *
   * While a sync is in flight this always pays. With none in flight it is a trade: the callers of
   * the batch whose sync just ended were answered while this batch's requests were being parsed,
   * and their next writes arrive a turn later. Waiting for them merges the clients into one group
   * (larger batches, less CPU per write), but one group then waits for each sync with the thread
   * idle, where two half-size groups overlap one's sync with the other's work. So it waits only
   * after a long batch ({@link LONG_BATCH_MS}), against which a sync is short: event ingest (a
   * batch of 100-customer chunks runs for hundreds of milliseconds), not single debits (a batch of
   * 50 runs for a few milliseconds, about as long as its sync; merged, debits/s fell by up to 10 %).
   * (The sync's own duration cannot be timed from here: its completion waits for the busy thread.)
   */
  private async gather(): Promise<void> {
    if (this.options.durableAfter === undefined) return;
    const withoutSync = this.lastBatchMs >= LONG_BATCH_MS;
    for (let turn = 0; turn < GATHER_TURNS; turn++) {
      if ((this.pendingDurability.size === 0 && !withoutSync) || this.queue.length >= this.maxBatch) return;
      const before = this.queue.length;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.queue.length === before) return;
    }
  }

  private async runBatch(batch: Job<unknown>[]): Promise<void> {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      const started = this.monotonicMs();
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
      this.lastBatchMs = this.monotonicMs() - started;
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
    const answer = () =>
      batch.forEach((job, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) job.resolve(outcome.value);
        else job.reject(outcome.error);
      });
    const durableAfter = this.options.durableAfter;
    if (durableAfter === undefined) {
      answer();
      return;
    }
    // Not awaited: the next batch runs while this one's WAL frames are synced.
    // After one failed sync, a later sync's success proves nothing (the kernel may have dropped
    // the failed pages and reports the error once): batches committed since are refused too.
    const refuse = (error: unknown) => {
      this.failure ??= error;
      for (const job of batch) job.reject(this.failure);
    };
    const durable = durableAfter().then(
      () => (this.failure === null ? answer() : refuse(this.failure)),
      refuse,
    );
    this.pendingDurability.add(durable);
    void durable.finally(() => this.pendingDurability.delete(durable));
  }

  /** Waits until every queued write has run and every committed batch has been answered. */
  async drain(): Promise<void> {
    while (this.running || this.scheduled || this.queue.length > 0 || this.pendingDurability.size > 0) {
      await Promise.all([...this.pendingDurability]);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
