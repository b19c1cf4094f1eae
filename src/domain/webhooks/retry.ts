import type { Instant } from '../time/instant.js';

/**
 * When a webhook delivery is tried again (Standard Webhooks' recommended schedule): the first
 * attempt at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, and 10 h six times more. Twelve
 * attempts spread over about three days (77.6 h before jitter); after the last failure the
 * delivery is given up (`failed`), and a replay can send it again.
 *
 * Entry `i` is the wait after the `(i + 1)`-th failed attempt.
 */
export const RETRY_DELAYS_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** How many attempts a delivery gets in all (the first one and each retry). */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;

/**
 * Jitter spreads retries of many deliveries that failed together (a receiver coming back must not
 * get them all in the same second): each wait is scaled by a factor in [0.9, 1.1).
 */
export const JITTER_FRACTION = 0.1;

/**
 * The wait after `attemptsMade` failed attempts, jittered by `random` (a draw in [0, 1)), or null
 * when the schedule is exhausted.
 */
export function retryDelay(attemptsMade: number, random: number): number | null {
  const base = RETRY_DELAYS_MS[attemptsMade - 1];
  if (base === undefined) return null;
  return Math.floor(base * (1 - JITTER_FRACTION + 2 * JITTER_FRACTION * random));
}

/** Statuses whose `Retry-After` is honoured (rate limited, or the receiver's gateway is down). */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * The longest `Retry-After` honoured (a day): a receiver asking for more still gets its retries
 * within the three-day schedule instead of silently never.
 */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/**
 * A `Retry-After` header as a wait in ms from `now`: delta-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`); a date in the past is no wait. Null when absent or malformed.
 */
export function parseRetryAfter(header: string | null, now: Instant): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

/** What a receiver answered to one attempt (null status: no answer — refused, reset, timed out). */
export interface AttemptResult {
  readonly statusCode: number | null;
  /** The `Retry-After` header of the answer, if any. */
  readonly retryAfter: string | null;
}

/**
 * What happens to a delivery after an attempt:
 * - `delivered`: a 2xx answer;
 * - `gone`: 410, the receiver says the endpoint no longer exists, so the endpoint is disabled;
 * - `retry` at an instant: anything else while the schedule lasts; for 429/502/503/504 at the
 *   later of the schedule and the receiver's `Retry-After`;
 * - `exhausted`: the schedule is over, the delivery is given up.
 */
export type DeliveryStep =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'retry'; readonly at: Instant }
  | { readonly kind: 'exhausted' };

/** The next step of a delivery after its `attemptsMade`-th attempt answered `result` at `now`. */
export function nextDeliveryStep(
  result: AttemptResult,
  attemptsMade: number,
  now: Instant,
  random: number,
): DeliveryStep {
  const status = result.statusCode;
  if (status !== null && status >= 200 && status < 300) return { kind: 'delivered' };
  if (status === 410) return { kind: 'gone' };
  const delay = retryDelay(attemptsMade, random);
  if (delay === null) return { kind: 'exhausted' };
  const asked =
    status !== null && RETRY_AFTER_STATUSES.has(status) ? parseRetryAfter(result.retryAfter, now) : null;
  return { kind: 'retry', at: now + Math.max(delay, asked ?? 0) };
}

/**
 * Whether an endpoint failing since `failingSince` has failed long enough to be disabled at `now`
 * (`disableAfterMs`: the configured N days). Any success resets `failingSince`.
 */
export function shouldDisableEndpoint(
  failingSince: Instant | null,
  now: Instant,
  disableAfterMs: number,
): boolean {
  return failingSince !== null && now - failingSince >= disableAfterMs;
}
