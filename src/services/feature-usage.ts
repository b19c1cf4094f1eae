import { Amount } from '../domain/amount/amount.js';
import { amountOutOfRange } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';

/**
 * Moves a customer's counted usage of a feature in one usage-limit period by `delta` (negative to
 * give usage back), never below zero; in the caller's transaction, under the customer's lock. The
 * one place usage counters change, so the one place their range is checked.
 */
export async function adjustFeatureUsage(
  tx: WriteOperations,
  target: { workspaceId: string; customerId: string; featureId: string; periodStart: Instant },
  delta: Amount,
): Promise<void> {
  const { workspaceId, customerId, featureId, periodStart } = target;
  const used = await tx.plans.getFeatureUsage(workspaceId, customerId, featureId, periodStart);
  const next = Amount.max(Amount.ZERO, used.plus(delta));
  if (!next.isWithinAccountRange()) {
    throw amountOutOfRange(`the usage of feature "${featureId}" in this period`, { feature_id: featureId });
  }
  await tx.plans.setFeatureUsage(workspaceId, customerId, featureId, periodStart, next);
}
