/** A write waiting for a batch: its lock id decides which writes may share a transaction with it. */
export interface BatchableWrite {
  readonly lockId: bigint;
}

/** Bounds of {@link WriteBatcher}. */
export interface WriteBatcherOptions {
  /** Batches (transactions) in flight at once in this process. */
  readonly slots: number;
  /** Most writes in one batch. */
  readonly maxWrites: number;
  /** Most writes of one lock id in one batch (they run one after another inside it). */
  readonly maxPerLock: number;
}

/**
 * Group commit for PostgreSQL, the scheduling half: writes queue here and leave in batches, each
 * batch one transaction (run by the caller's `runBatch`, which settles every write of it itself).
 *
 * At most `slots` batches run at once. A write that arrives while a slot is free leaves at the
 * next turn of the event loop, with whatever arrived in the same turn: under light load nothing
 * waits. When every slot is busy, writes queue and the next free slot takes them together, so
 * the batches grow with the load and the round trips and commits are shared.
 *
 * A batch takes writes in arrival order; writes of one lock id keep their order (the runner runs
 * them one after another), and a write over the `maxPerLock` of its lock id waits for a later
 * batch, behind its elders.
 */
export class WriteBatcher<W extends BatchableWrite> {
  private queue: W[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly runBatch: (writes: W[]) => Promise<void>,
    private readonly options: WriteBatcherOptions,
  ) {}

  /** Queues a write; `runBatch` settles it. */
  submit(write: W): void {
    this.queue.push(write);
    this.schedule();
  }

  /** Writes waiting for a slot (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.slots) return;
    this.scheduled = true;
    // One turn: the requests parsed in this turn of the event loop leave together.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.options.slots && this.queue.length > 0) {
      const batch = this.take();
      this.running++;
      // runBatch settles its writes and never rejects; the catch keeps a bug from leaking a slot.
      this.runBatch(batch)
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          if (this.queue.length > 0) this.schedule();
        });
    }
  }

  /** The oldest writes that fit one batch; the rest stay queued, in order. */
  private take(): W[] {
    const { maxWrites, maxPerLock } = this.options;
    const taken: W[] = [];
    const left: W[] = [];
    const perLock = new Map<bigint, number>();
    for (const write of this.queue) {
      const count = perLock.get(write.lockId) ?? 0;
      if (taken.length < maxWrites && count < maxPerLock) {
        taken.push(write);
        perLock.set(write.lockId, count + 1);
      } else {
        left.push(write);
        // A lock id once skipped stays skipped in this batch, so its writes keep their order.
        perLock.set(write.lockId, maxPerLock);
      }
    }
    this.queue = left;
    return taken;
  }
}
