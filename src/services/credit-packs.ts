import type { Amount } from '../domain/amount/amount.js';
import type { CreditPack } from '../domain/catalog/catalog.js';
import { pricePurchase } from '../domain/catalog/pricing.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import type { CostBasis, GrantState } from '../domain/ledger/types.js';
import type { AutoTopUp, Purchase } from '../domain/plans/subscription.js';
import type { Instant } from '../domain/time/instant.js';
import { periodContaining } from '../domain/time/periods.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { appendFacts } from './outbox.js';
import { recordGrantRevenuePolicy } from './revenue.js';
import { purchaseCreatedFact } from './webhook-facts.js';

const DAY_MS = 86_400_000;

/** What a grant's description adds about how the pack was bought. */
const SOURCE_NOTE: Readonly<Record<Purchase['source'], string>> = {
  api: '',
  auto_top_up: ' (auto top-up)',
  stripe_checkout: ' (Stripe Checkout)',
};

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
    /**
     * The money actually collected, when a payment provider collected it (Stripe Checkout, a charged
     * auto top-up): it becomes the cost basis and the purchase's price instead of the list price.
     */
    paid?: CostBasis;
    /** More grant metadata (e.g. the provider's payment references), next to the purchase's own. */
    metadata?: Readonly<Record<string, unknown>>;
    now: Instant;
  },
): Promise<{ purchase: Purchase; grant: GrantState }> {
  const { ledger, pack, quantity, now } = input;
  const priced = pricePurchase(pack, quantity);
  const price = input.paid ?? priced.price;
  const purchaseId = ctx.ids.newId('pur');
  const grant = ledger.grant(
    {
      amount: priced.credits,
      category: 'paid',
      priority: pack.priority,
      effectiveAt: now,
      expiresAt: pack.expiresAfterDays === null ? null : now + pack.expiresAfterDays * DAY_MS,
      costBasis: price,
      appliesTo: null,
      description: `${quantity} × credit pack ${pack.id}${SOURCE_NOTE[input.source]}`,
      metadata: { ...(input.metadata ?? {}), purchase_id: purchaseId, pack_id: pack.id, quantity },
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
    priceAmount: price.amount,
    currency: price.currency,
    percentOff: priced.percentOff,
    grantId: grant.id,
    source: input.source,
    createdAt: now,
  };
  await tx.plans.insertPurchase(purchase);
  await recordGrantRevenuePolicy(tx, input.workspaceId, grant, now);
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
 * one burn sees a given crossing; the per-period cap is counted in the same transaction. A rule
 * with a payment provider records a pending top-up instead of buying (src/services/top-ups.ts).
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
  await tx.plans.putAutoTopUp({ ...rule, periodStart, countInPeriod: count + 1, updatedAt: now });
  if (rule.provider !== 'none') {
    // The charge is a network call: it never runs in this transaction or under the customer's
    // lock. The top-up waits, durable with the burn that caused it, for the top-up worker to
    // charge it and grant in a transaction of its own (src/services/top-ups.ts). A failed charge
    // still counts against the cap, so a declined card is not retried at every burn.
    const priced = pricePurchase(pack, rule.quantity);
    await tx.payments.putTopUp({
      workspaceId: input.workspaceId,
      id: ctx.ids.newId('tpu'),
      customerId: ledger.customerId,
      packId: pack.id,
      quantity: rule.quantity,
      creditType: pack.creditType,
      priceAmount: priced.price.amount,
      currency: priced.price.currency,
      status: 'pending',
      reason: null,
      providerRef: null,
      purchaseId: null,
      createdAt: now,
      updatedAt: now,
    });
    return null;
  }
  const { purchase } = await buyPacks(ctx, tx, {
    workspaceId: input.workspaceId,
    ledger,
    pack,
    quantity: rule.quantity,
    source: 'auto_top_up',
    now,
  });
  return purchase;
}
