import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRateLimit, type RateLimitPolicy } from '../../src/domain/limits/token-bucket.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import type { RateLimitLeases, Storage } from '../../src/ports/storage.js';
import { RateLimiter } from '../../src/services/rate-limits.js';
import { openPostgresInFreshSchema } from '../contract/postgres.js';
import { T0 } from '../fixtures/harness.js';

const POLICY: RateLimitPolicy = { limit: 100, windowMs: 10_000 }; // 10 tokens a second, burst 100

/** Takes one token per call until refused; returns how many were allowed. */
async function drain(limiter: RateLimiter, key: string, attempts: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < attempts; i++) if ((await limiter.take(key, POLICY)).allowed) allowed++;
  return allowed;
}

describe('rate limit policies', () => {
  it('parses <requests>/<seconds>s and nothing else', () => {
    expect(parseRateLimit('100/1s')).toEqual({ limit: 100, windowMs: 1000 });
    expect(parseRateLimit('6000/60s')).toEqual({ limit: 6000, windowMs: 60_000 });
    for (const bad of ['0/1s', '1/0s', '10/s', '10', '1.5/1s', '10/1m', '-1/1s']) {
      expect(parseRateLimit(bad), bad).toBeNull();
    }
  });
});

describe('in-process token buckets (SQLite)', () => {
  it('allow a burst of the limit, then refill at limit per window from the injected clock', async () => {
    const clock = new ManualClock(T0);
    const limiter = new RateLimiter(null, () => clock.now());
    expect(await drain(limiter, 'k', 150)).toBe(100);
    const refused = await limiter.take('k', POLICY);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1, resetSeconds: 10 });
    clock.advance(1000);
    expect(await drain(limiter, 'k', 50)).toBe(10);
    expect(await drain(limiter, 'other', 5)).toBe(5);
  });
});

describe('shared token buckets (PostgreSQL leases)', () => {
  let storage: Storage;
  let leases: RateLimitLeases;
  let statements = 0;
  beforeAll(async () => {
    storage = await openPostgresInFreshSchema();
    const shared = storage.rateLimitLeases!;
    leases = {
      take: async (input) => {
        statements += 1;
        return shared.take(input);
      },
    };
  });
  afterAll(async () => {
    await storage?.close();
  });

  it('several processes together never exceed the bucket, with one statement per lease', async () => {
    const clock = new ManualClock(T0);
    // Three "processes" (limiters) share the bucket through the database.
    const processes = [0, 1, 2].map(() => new RateLimiter(leases, () => clock.now()));
    statements = 0;
    const allowed = await Promise.all(processes.map((p) => drain(p, 'key:shared', 100)));
    const total = allowed.reduce((a, b) => a + b, 0);
    expect(total).toBe(100); // exactly the bucket: leases are never over-granted
    // 5 tokens per lease (5% of 100): 20 leases for 100 tokens, then one refused lease per process
    // (a process that finds the bucket empty refuses locally until a lease could have refilled).
    expect(statements).toBeLessThanOrEqual(23);
    // After a second, 10 more tokens exist in total, whichever process takes them.
    clock.advance(1000);
    const later = await Promise.all(processes.map((p) => drain(p, 'key:shared', 20)));
    expect(later.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10);
    expect(later.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
  });

  it('a lease granted concurrently by many callers never takes more than the bucket holds', async () => {
    const grants = await Promise.all(
      Array.from({ length: 40 }, () =>
        storage.rateLimitLeases!.take({
          bucketKey: 'key:race',
          want: 7,
          capacity: 100,
          refillPerMs: 0,
          now: T0,
        }),
      ),
    );
    expect(grants.reduce((a, b) => a + b, 0)).toBe(100);
  });
});
