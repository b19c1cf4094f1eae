import type { Awaitable } from '../../ports/storage.js';

/**
 * The little each SQL dialect must provide to run the shared queries: parameters are written
 * `?` in the shared SQL; an executor rewrites them if its driver wants `$1`. SQLite answers
 * synchronously, PostgreSQL asynchronously; the shared store awaits either.
 */
export interface SqlExecutor {
  all<T>(sql: string, params: readonly unknown[]): Awaitable<T[]>;
  get<T>(sql: string, params: readonly unknown[]): Awaitable<T | undefined>;
  /**
   * Optional: the rows as arrays of the selected columns, in order (no object per row); for
   * reads of millions of rows such as exports. Callers fall back to {@link all} without it.
   */
  allRaw?(sql: string, params: readonly unknown[]): Awaitable<unknown[][]>;
  /** Runs a statement; resolves with the number of rows it changed. */
  run(sql: string, params: readonly unknown[]): Awaitable<number>;
}
