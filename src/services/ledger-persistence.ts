import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import { appendBalanceFacts, type LoadedBalance, type noteLoaded } from './balance-facts.js';
import type { ServiceContext } from './context.js';
import { adjustFeatureUsage } from './feature-usage.js';
import { appendFacts } from './outbox.js';
import { grantCreatedFact } from './webhook-facts.js';

/**
 * Persists what a ledger recorded since it was loaded or last persisted (its change set, taken
 * once here and used for everything below), and what follows from it outside the ledger: a held check
 * counted its quantity against the feature's usage limit; if its hold was released or expired in
 * this transaction (instead of captured), that usage is given back, exactly once. Every service
 * saves ledgers through here, so this is also where every new grant becomes a `grant.created` fact
 * (whatever made it: the API, a purchase, auto top-up, an allowance at a subscription's start or
 * renewal), in the same transaction, exactly when it is persisted; and why the balance facts are
 * decided here too (in the same transaction, see src/services/balance-facts.ts), against `loaded`:
 * the balance {@link noteLoaded} recorded when the ledger was loaded, which this save moves on.
 */
export async function persistLedger(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  ledger: CreditLedger,
  now: Instant,
  loaded: LoadedBalance,
): Promise<void> {
  const changes = ledger.takeChanges();
  await tx.saveLedger(workspaceId, changes, now);
  if (changes.grantsCreated.length > 0) {
    await appendFacts(
      ctx,
      tx,
      now,
      changes.grantsCreated.map((grant) => grantCreatedFact(workspaceId, grant)),
    );
  }
  const facts = appendBalanceFacts(ctx, tx, workspaceId, ledger, changes, now, loaded);
  if (facts !== undefined) await facts;
  for (const hold of changes.holds) {
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
