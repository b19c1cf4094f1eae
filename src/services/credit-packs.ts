import type { Amount } from '../domain/amount/amount.js';
import type { CreditPack } from '../domain/catalog/catalog.js';
import { pricePurchase } from '../domain/catalog/pricing.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import type { GrantState } from '../domain/ledger/types.js';
import type { AutoTopUp, Purchase } from '../domain/plans/subscription.js';
import type { Instant } from '../domain/time/instant.js';
import { periodContaining } from '../domain/time/periods.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { appendFacts } from './outbox.js';
import { purchaseCreatedFact } from './webhook-facts.js';

const DAY_MS = 86_400_000;

/**
 * Buys `quantity` packs into an open ledger of the pack's credit type: a `paid` grant whose cost
 * basis is the discounted price (so revenue recognition sees what was paid), plus the purchase
 * record, in the caller's transaction. The grant pays overage debt first, like any grant.
 */
export async function buyPacks(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    ledger: CreditLedger;
    pack: CreditPack;
    quantity: number;
    source: Purchase['source'];
    now: Instant;
  },
): Promise<{ purchase: Purchase; grant: GrantState }> {
  const { ledger, pack, quantity, now } = input;
  const priced = pricePurchase(pack, quantity);
  const purchaseId = ctx.ids.newId('pur');
  const grant = ledger.grant(
    {
      amount: priced.credits,
      category: 'paid',
      priority: pack.priority,
      effectiveAt: now,
      expiresAt: pack.expiresAfterDays === null ? null : now + pack.expiresAfterDays * DAY_MS,
      costBasis: priced.price,
      appliesTo: null,
      description: `${quantity} × credit pack ${pack.id}${input.source === 'auto_top_up' ? ' (auto top-up)' : ''}`,
      metadata: { purchase_id: purchaseId, pack_id: pack.id, quantity },
    },
    now,
  );
  const purchase: Purchase = {
    workspaceId: input.workspaceId,
    id: purchaseId,
    customerId: ledger.customerId,
    packId: pack.id,
    quantity,
    credits: priced.credits,
    priceAmount: priced.price.amount,
    currency: priced.price.currency,
    percentOff: priced.percentOff,
    grantId: grant.id,
    source: input.source,
    createdAt: now,
  };
  await tx.plans.insertPurchase(purchase);
  await appendFacts(ctx, tx, now, [purchaseCreatedFact(purchase)]);
  return { purchase, grant };
}

/** The period of an auto top-up rule containing `now` (anniversaries of its anchor, in UTC). */
export function topUpPeriodStart(rule: AutoTopUp, now: Instant): Instant {
  return now < rule.anchorAt ? rule.anchorAt : periodContaining(rule.anchorAt, rule.period, now, 'UTC').start;
}

/**
 * Auto top-up, run by every burn (debit, capture, ingested events) in the burn's transaction.
 * It fires only on a crossing: the available balance was at or above the threshold before the burn
 * and is below it after. Burns of one customer are serialised, so under any concurrency exactly
 * one burn sees a given crossing; the per-period cap is counted in the same transaction.
 */
export async function autoTopUpOnCrossing(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    ledger: CreditLedger;
    /** The customer's rule, as {@link prepareCustomer} fetched it for this transaction. */
    rule: AutoTopUp | null;
    availableBefore: Amount;
    now: Instant;
  },
): Promise<Purchase | null> {
  const { ledger, now, rule } = input;
  if (!rule?.enabled) return null;
  const after = ledger.availableAt(now);
  if (input.availableBefore.lessThan(rule.threshold) || !after.lessThan(rule.threshold)) return null;
  const pack = await tx.plans.getCreditPack(input.workspaceId, rule.packId);
  if (!pack || pack.creditType !== ledger.creditType) return null;
  const periodStart = topUpPeriodStart(rule, now);
  const count = rule.periodStart === periodStart ? rule.countInPeriod : 0;
  if (count >= rule.maxPerPeriod) return null;
  const { purchase } = await buyPacks(ctx, tx, {
    workspaceId: input.workspaceId,
    ledger,
    pack,
    quantity: rule.quantity,
    source: 'auto_top_up',
    now,
  });
  await tx.plans.putAutoTopUp({ ...rule, periodStart, countInPeriod: count + 1, updatedAt: now });
  return purchase;
}
