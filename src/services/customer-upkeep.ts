import type { CreditLedgerSnapshot } from '../domain/ledger/credit-ledger.js';
import type { AutoTopUp } from '../domain/plans/subscription.js';
import type { Instant } from '../domain/time/instant.js';
import type { LedgerKey, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { renewDueSubscriptions } from './subscriptions.js';

/** What a customer's writes need to know beyond its ledgers, read once per write. */
export interface PreparedCustomer {
  /** The auto top-up rule a burn may trigger. */
  readonly autoTopUp: AutoTopUp | null;
  /** Whether any balance threshold may apply to the customer (false: saves skip reading them). */
  readonly balanceThresholds: boolean;
}

/**
 * What every write for a customer does first: apply the subscription resets due by `now` (so a
 * burn right after a reset draws on the new allowance), and fetch the auto top-up rule the burn
 * may trigger. One storage round trip when nothing is due, which is almost always.
 */
export async function prepareCustomer(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  customerId: string,
  now: Instant,
): Promise<PreparedCustomer> {
  const upkeep = await tx.plans.customerUpkeep(workspaceId, customerId, now);
  if (upkeep.subscriptionsDue) await renewDueSubscriptions(ctx, tx, workspaceId, customerId, now);
  return { autoTopUp: upkeep.autoTopUp, balanceThresholds: upkeep.balanceThresholds };
}

/**
 * {@link prepareCustomer} for a write that knows its credit type: the upkeep and that ledger come
 * from one storage read (one round trip on PostgreSQL). The ledger is null when subscriptions
 * were renewed on the way: the renewals changed it, so it must be loaded again.
 */
export async function prepareCustomerWithLedger(
  ctx: ServiceContext,
  tx: WriteOperations,
  key: LedgerKey,
  now: Instant,
): Promise<{ prepared: PreparedCustomer; ledger: CreditLedgerSnapshot | null }> {
  const { upkeep, ledger } = await tx.loadCustomerWrite(key, now);
  const prepared = { autoTopUp: upkeep.autoTopUp, balanceThresholds: upkeep.balanceThresholds };
  if (!upkeep.subscriptionsDue) return { prepared, ledger };
  await renewDueSubscriptions(ctx, tx, key.workspaceId, key.customerId, now);
  return { prepared, ledger: null };
}
