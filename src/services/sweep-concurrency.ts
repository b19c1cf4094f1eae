/**
 * How many independent writes a sweep keeps in flight. A sweep (due expiries, expiry notices,
 * subscription resets, silent licence machines) writes one customer per transaction; awaited one
 * by one, each write was its own commit and waited for its own sync, so a storm of 5,000 expiries
 * drained at about 1,500 a second (bench/expiry-storm.mjs).
 * In flight together, SQLite commits them in shared batches and PostgreSQL runs them on several
 * connections. Bounded below PostgreSQL's default pool of 10, so a sweep leaves connections to requests.
 */
export const SWEEP_CONCURRENCY = 8;

/**
 * Runs `work` for every item with at most `limit` in flight, in the items' order (sweeps; and the
 * saves of an ingest chunk's customers on a pipelining storage, src/services/metering.ts). Every item is
 * tried even when some fail (a failure of one customer must not hold back the others); the first
 * failure is thrown once all have ended.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  work: (item: T) => Promise<void>,
  limit = SWEEP_CONCURRENCY,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
