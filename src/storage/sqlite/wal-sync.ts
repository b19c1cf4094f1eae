import { close, fdatasync, open } from 'node:fs';

/**
 * Makes committed WAL frames durable off the event loop, for the pipelined group commit
 * (src/storage/sqlite/group-commit.ts, docs/design.md §7).
 *
 * Why: with `synchronous=FULL`, SQLite fsyncs the WAL inside `COMMIT`, on the one thread that also
 * parses HTTP, so every batch stalls the process for the length of an fsync. With
 * `synchronous=NORMAL`, `COMMIT` only write()s the frames into the OS page cache; this class then
 * `fdatasync`s the WAL on libuv's thread pool, and group commit answers a batch's callers only
 * after a sync that *started after* their COMMIT has finished. Acknowledged writes are exactly as
 * durable as with FULL, while the next batch already runs.
 *
 * Concurrent requests coalesce: while one sync runs, every request made meanwhile waits for the
 * single next sync (which starts when the running one ends), never for the running one, which may
 * have begun before their commit.
 */
export class CoalescedSync {
  private running = false;
  private waiting: { resolve(): void; reject(error: unknown): void }[] = [];
  /** Every sync that completed, for /metrics and tests (proof that acknowledged writes were synced). */
  completed = 0;

  constructor(
    private readonly sync: () => Promise<void>,
    /** Releases what the sync holds (its descriptor); called once, after the last write. */
    readonly close: () => Promise<void> = async () => {},
  ) {}

  /** Resolves once a sync that started after this call has completed. */
  request(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) void this.runNext();
    });
  }

  private async runNext(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const waiters = this.waiting;
      this.waiting = [];
      try {
        await this.sync();
        this.completed++;
        for (const w of waiters) w.resolve();
      } catch (error) {
        for (const w of waiters) w.reject(error);
      }
    }
    this.running = false;
  }
}

/**
 * fdatasync of a SQLite database's WAL file, through one descriptor kept open (opening the file
 * for every sync cost as much main-thread time as the sync). SQLite deletes and recreates the WAL
 * only when the last connection to the database closes; the writer connection stays open as long
 * as this sync is used, so the descriptor always names the live WAL. The descriptor is opened on
 * the first sync, after the first commit created the file.
 */
export function walFileSync(databasePath: string): { sync(): Promise<void>; close(): Promise<void> } {
  const walPath = `${databasePath}-wal`;
  // A plain descriptor with the callback API: a FileHandle's promise API costs the event loop
  // several objects and promise hops per call, and this runs once per committed batch.
  let fd: number | null = null;
  return {
    sync() {
      return new Promise<void>((resolve, reject) => {
        const datasync = (descriptor: number) =>
          fdatasync(descriptor, (error) => (error ? reject(error) : resolve()));
        if (fd !== null) return datasync(fd);
        open(walPath, 'r', (error, opened) => {
          if (error) return reject(error);
          fd = opened;
          datasync(opened);
        });
      });
    },
    async close() {
      if (fd === null) return;
      const descriptor = fd;
      fd = null;
      await new Promise<void>((resolve, reject) =>
        close(descriptor, (error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
