import type { Amount } from '../domain/amount/amount.js';
import { notFound } from '../domain/errors.js';
import type { BalanceView, CostBasis, GrantState } from '../domain/ledger/types.js';
import type { AutoTopUp, Purchase } from '../domain/plans/subscription.js';
import type { Instant } from '../domain/time/instant.js';
import type { Period } from '../domain/time/periods.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { buyPacks, topUpPeriodStart } from './credit-packs.js';
import { LedgerSession } from './ledger-session.js';
import { requireCustomer } from './lookups.js';

/** A customer buys `quantity` packs: a `paid` grant at the discounted price, recorded as a purchase. */
export async function purchaseCreditPacks(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    customerId: string;
    packId: string;
    quantity: number;
    now: Instant;
    /** How it was bought (default `api`). */
    source?: Purchase['source'];
    /** The money a payment provider collected (the cost basis); default the pack's list price. */
    paid?: CostBasis;
    /** More grant metadata (the provider's payment references). */
    metadata?: Readonly<Record<string, unknown>>;
  },
): Promise<{ purchase: Purchase; grant: GrantState; balance: BalanceView }> {
  const { workspaceId, customerId, now } = input;
  await requireCustomer(tx, workspaceId, customerId);
  const pack = await tx.plans.getCreditPack(workspaceId, input.packId);
  if (!pack) throw notFound('credit pack', input.packId);
  const session = await LedgerSession.open(ctx, tx, { workspaceId, customerId }, now);
  const ledger = await session.ledger(pack.creditType);
  const bought = await buyPacks(ctx, tx, {
    workspaceId,
    ledger,
    pack,
    quantity: input.quantity,
    source: input.source ?? 'api',
    ...(input.paid ? { paid: input.paid } : {}),
    ...(input.metadata ? { metadata: input.metadata } : {}),
    now,
  });
  await session.save();
  return { ...bought, balance: ledger.balance(now) };
}

/**
 * Sets (or replaces) a customer's auto top-up rule. Replacing keeps the period anchor and, within
 * the same period, the count already used, so editing the rule cannot reset the cap.
 */
export async function setAutoTopUp(
  tx: WriteOperations,
  input: {
    workspaceId: string;
    customerId: string;
    enabled: boolean;
    threshold: Amount;
    packId: string;
    quantity: number;
    maxPerPeriod: number;
    period: Period;
    provider: AutoTopUp['provider'];
    now: Instant;
  },
): Promise<AutoTopUp> {
  const { workspaceId, customerId, now } = input;
  await requireCustomer(tx, workspaceId, customerId);
  if (!(await tx.plans.getCreditPack(workspaceId, input.packId))) throw notFound('credit pack', input.packId);
  const existing = await tx.plans.getAutoTopUp(workspaceId, customerId);
  const anchorAt = existing && existing.period === input.period ? existing.anchorAt : now;
  const draft: AutoTopUp = {
    workspaceId,
    customerId,
    enabled: input.enabled,
    threshold: input.threshold,
    packId: input.packId,
    quantity: input.quantity,
    maxPerPeriod: input.maxPerPeriod,
    period: input.period,
    provider: input.provider,
    anchorAt,
    periodStart: anchorAt,
    countInPeriod: 0,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  const periodStart = topUpPeriodStart(draft, now);
  const kept =
    existing && existing.anchorAt === anchorAt && existing.periodStart === periodStart
      ? existing.countInPeriod
      : 0;
  const rule: AutoTopUp = { ...draft, periodStart, countInPeriod: kept };
  await tx.plans.putAutoTopUp(rule);
  return rule;
}

/**
 * Removes a customer's auto top-up rule, so no later crossing buys anything. A rule set again
 * afterwards starts afresh (its periods are anniversaries of when it was set again). A customer
 * without a rule is a 404, as GET answers.
 */
export async function removeAutoTopUp(
  tx: WriteOperations,
  input: { workspaceId: string; customerId: string },
): Promise<void> {
  await requireCustomer(tx, input.workspaceId, input.customerId);
  if (!(await tx.plans.deleteAutoTopUp(input.workspaceId, input.customerId))) {
    throw notFound('auto top-up of customer', input.customerId);
  }
}
