import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import { appendBalanceFacts } from './balance-facts.js';
import type { ServiceContext } from './context.js';
import { adjustFeatureUsage } from './feature-usage.js';

/**
 * Persists what a ledger recorded, and what follows from it outside the ledger: a held check
 * counted its quantity against the feature's usage limit; if its hold was released or expired in
 * this transaction (instead of captured), that usage is given back, exactly once. Every service
 * saves ledgers through here, which is why the balance alerts are decided here too (in the same
 * transaction, see src/services/balance-alerts.ts).
 */
export async function persistLedger(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  ledger: CreditLedger,
  now: Instant,
): Promise<void> {
  await tx.saveLedger(workspaceId, ledger, now);
  await appendBalanceFacts(ctx, tx, workspaceId, ledger, now);
  for (const hold of ledger.changedHolds) {
    if (hold.usage === null || hold.featureId === null) continue;
    if (hold.status !== 'released' && hold.status !== 'expired') continue;
    const target = {
      workspaceId,
      customerId: hold.customerId,
      featureId: hold.featureId,
      periodStart: hold.usage.periodStart,
    };
    await adjustFeatureUsage(tx, target, hold.usage.quantity.negated());
  }
}
