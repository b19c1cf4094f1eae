import type { Instant } from '../time/instant.js';
import type { GrantState, GrantStatus } from './types.js';

/**
 * The burn-down order (docs/design.md): lower priority first, then the grant expiring soonest (no
 * expiry last), then the older `effective_at`, then the id, so the order is total and the same on
 * every run and every storage backend.
 */
export function compareBurnDownOrder(
  a: Pick<GrantState, 'priority' | 'expiresAt' | 'effectiveAt' | 'id'>,
  b: Pick<GrantState, 'priority' | 'expiresAt' | 'effectiveAt' | 'id'>,
): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.expiresAt !== b.expiresAt) {
    if (a.expiresAt === null) return 1;
    if (b.expiresAt === null) return -1;
    return a.expiresAt - b.expiresAt;
  }
  if (a.effectiveAt !== b.effectiveAt) return a.effectiveAt - b.effectiveAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Whether a grant may be drawn on at `at`: effective, not yet expired (expiry is exclusive), not closed. */
export function isGrantUsableAt(grant: Readonly<GrantState>, at: Instant): boolean {
  return (
    grant.closedReason === null &&
    grant.effectiveAt <= at &&
    (grant.expiresAt === null || at < grant.expiresAt)
  );
}

/**
 * The status a client sees at `at`. Expiry shows as soon as the instant passes, whether or not the
 * expiry entry has been written yet, so no answer depends on a background job having run.
 */
export function grantStatusAt(grant: Readonly<GrantState>, at: Instant): GrantStatus {
  if (grant.closedReason === 'voided') return 'voided';
  if (grant.closedReason === 'expired' || (grant.expiresAt !== null && at >= grant.expiresAt))
    return 'expired';
  if (at < grant.effectiveAt) return 'pending';
  if (grant.available.isZero() && grant.held.isZero()) return 'depleted';
  return 'active';
}

/**
 * Whether a burn for `featureId` may draw on the grant: unrestricted grants serve every burn; a
 * grant restricted by `applies_to` serves only burns for those features (null: a burn for no feature).
 */
export function appliesToFeature(grant: Pick<GrantState, 'appliesTo'>, featureId: string | null): boolean {
  if (grant.appliesTo === null) return true;
  return featureId !== null && grant.appliesTo.includes(featureId);
}
