import {
  type BucketState,
  decide,
  fullBucket,
  type RateDecision,
  type RateLimitPolicy,
  refillPerMs,
  takeToken,
} from '../domain/limits/token-bucket.js';
import type { Instant } from '../domain/time/instant.js';
import type { RateLimitLeases } from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/**
 * Per-key and per-customer rate limits (token buckets; docs/design.md, "Rate limits").
 *
 * - In-process (SQLite: one process owns the database): each bucket lives in this process's
 *   memory and is exact.
 * - Shared (PostgreSQL: any number of processes): the bucket lives in a row. A process takes a
 *   lease of `leaseSize` tokens from it in one statement (refill and take in one UPDATE) and spends
 *   them locally; a lease is dropped after `leaseTtlMs`. Tokens leased are never given back, so the
 *   processes together never exceed the bucket: **no overshoot**. The cost is the other way round:
 *   a process may strand at most one unspent lease per bucket (refused early by at most
 *   `leaseSize × (processes − 1)` requests in a burst), and the database sees at most one statement
 *   per `leaseSize` requests per bucket rather than one per request. A process that finds the
 *   bucket empty refuses locally for the time one lease takes to refill (so a flood of refused
 *   requests costs no more statements than accepted ones).
 */
export class RateLimiter {
  private readonly local = new Map<string, BucketState>();
  private readonly leases = new Map<string, { tokens: number; until: Instant }>();
  /** Buckets found empty: refused here, without a statement, until a lease could have refilled. */
  private readonly emptyUntil = new Map<string, Instant>();

  constructor(
    private readonly shared: RateLimitLeases | null,
    private readonly nowMs: () => Instant,
    private readonly options: {
      /** Fraction of a limit leased at once (default 5%, at least 1 token, at most 1000). */
      readonly leaseFraction?: number;
      /** How long an unspent lease is used (default 1 s). */
      readonly leaseTtlMs?: number;
      /** Most buckets kept in memory (oldest dropped: a dropped bucket starts full again). */
      readonly maxBuckets?: number;
    } = {},
  ) {}

  /** Tokens a process leases at once for a policy. */
  leaseSize(policy: RateLimitPolicy): number {
    const fraction = this.options.leaseFraction ?? 0.05;
    return Math.min(1000, Math.max(1, Math.floor(policy.limit * fraction)));
  }

  /** Takes one token of `bucketKey` under `policy`. */
  async take(bucketKey: string, policy: RateLimitPolicy): Promise<RateDecision> {
    const now = this.nowMs();
    if (this.shared === null) {
      const state = this.local.get(bucketKey) ?? fullBucket(policy, now);
      const { state: next, decision } = takeToken(state, policy, now);
      this.remember(this.local, bucketKey, next);
      return decision;
    }
    const lease = this.leases.get(bucketKey);
    if (lease && lease.until > now && lease.tokens >= 1) {
      lease.tokens -= 1;
      return decide(true, lease.tokens, policy);
    }
    const empty = this.emptyUntil.get(bucketKey);
    if (empty !== undefined && empty > now) return decide(false, 0, policy);
    const want = this.leaseSize(policy);
    const granted = await this.shared.take({
      bucketKey,
      want,
      capacity: policy.limit,
      refillPerMs: refillPerMs(policy),
      now,
    });
    if (granted < 1) {
      // A flood of refused requests costs one statement per lease's refill time, not one each.
      this.leases.delete(bucketKey);
      this.remember(this.emptyUntil, bucketKey, now + Math.ceil(want / refillPerMs(policy)));
      return decide(false, 0, policy);
    }
    this.emptyUntil.delete(bucketKey);
    const next = { tokens: granted - 1, until: now + (this.options.leaseTtlMs ?? 1000) };
    this.remember(this.leases, bucketKey, next);
    return decide(true, next.tokens, policy);
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    const max = this.options.maxBuckets ?? 100_000;
    while (map.size > max) {
      const oldest = map.keys().next();
      if (oldest.done) break;
      map.delete(oldest.value);
    }
  }
}

/** The limiter of a server: over the storage's shared leases when it has them, else in-process. */
export function rateLimiterOf(ctx: ServiceContext): RateLimiter {
  return new RateLimiter(ctx.storage.rateLimitLeases, () => ctx.clock.now());
}
