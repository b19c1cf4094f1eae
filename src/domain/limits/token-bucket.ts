import type { Instant } from '../time/instant.js';

/**
 * A rate limit as a token bucket: up to `limit` requests at once (the bucket's capacity), refilled
 * continuously at `limit` per `windowMs`. `100/60s` allows a burst of 100, then 100 a minute.
 */
export interface RateLimitPolicy {
  readonly limit: number;
  readonly windowMs: number;
}

/** Tokens a policy refills per millisecond. */
export function refillPerMs(policy: RateLimitPolicy): number {
  return policy.limit / policy.windowMs;
}

/**
 * Parses `<requests>/<seconds>s` (`100/1s`, `6000/60s`); null when the text is not one. Both numbers
 * are positive integers (requests ≤ 10^9, seconds ≤ 86,400).
 */
export function parseRateLimit(text: string): RateLimitPolicy | null {
  const match = /^(\d{1,10})\/(\d{1,5})s$/.exec(text.trim());
  if (!match) return null;
  const limit = Number(match[1]);
  const seconds = Number(match[2]);
  if (limit < 1 || limit > 1e9 || seconds < 1 || seconds > 86_400) return null;
  return { limit, windowMs: seconds * 1000 };
}

/** `<requests>/<seconds>s`, the form {@link parseRateLimit} reads. */
export function formatRateLimit(policy: RateLimitPolicy): string {
  return `${policy.limit}/${policy.windowMs / 1000}s`;
}

/** A bucket's state: tokens held (fractional while refilling) as of `at`. */
export interface BucketState {
  readonly tokens: number;
  readonly at: Instant;
}

/** A full bucket at `now`. */
export function fullBucket(policy: RateLimitPolicy, now: Instant): BucketState {
  return { tokens: policy.limit, at: now };
}

/** The bucket refilled up to `now` (never above capacity; a clock going back refills nothing). */
export function refill(state: BucketState, policy: RateLimitPolicy, now: Instant): BucketState {
  if (now <= state.at) return state;
  return { tokens: Math.min(policy.limit, state.tokens + (now - state.at) * refillPerMs(policy)), at: now };
}

/** What a request finds: allowed or not, and what the RateLimit-* headers say. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** Seconds until the bucket is full again (RateLimit-Reset). */
  readonly resetSeconds: number;
  /** Seconds until one token is available (Retry-After), 0 when allowed. */
  readonly retryAfterSeconds: number;
}

/** Takes one token if the bucket holds one; returns the new state and the decision. */
export function takeToken(
  state: BucketState,
  policy: RateLimitPolicy,
  now: Instant,
): { state: BucketState; decision: RateDecision } {
  const filled = refill(state, policy, now);
  const allowed = filled.tokens >= 1;
  const next = allowed ? { tokens: filled.tokens - 1, at: filled.at } : filled;
  return { state: next, decision: decide(allowed, next.tokens, policy) };
}

/** The decision for a bucket holding `tokens` after the request. */
export function decide(allowed: boolean, tokens: number, policy: RateLimitPolicy): RateDecision {
  const rate = refillPerMs(policy);
  return {
    allowed,
    limit: policy.limit,
    remaining: Math.max(0, Math.floor(tokens)),
    resetSeconds: Math.ceil((policy.limit - tokens) / rate / 1000),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / rate / 1000)),
  };
}
