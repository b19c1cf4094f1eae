import { Amount } from '../domain/amount/amount.js';
import { fromMinorUnits, type PendingTopUp } from '../domain/payments/payments.js';
import type { ChargeOutcome, PaymentProvider } from '../ports/payments.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { buyPacks } from './credit-packs.js';
import { LedgerSession } from './ledger-session.js';
import { execute, type OutboxMessage } from './unit-of-work.js';

/**
 * Auto top-ups charged through a payment provider (docs/design.md, "Payments in").
 *
 * 1. A burn that crosses the threshold of a rule with a provider records a **pending top-up** in
 *    its own transaction (src/services/credit-packs.ts), like an outbox row: it exists exactly when
 *    the burn committed, and nothing slow ran under the customer's lock.
 * 2. This worker reads waiting top-ups and **charges** each through the {@link PaymentProvider},
 *    outside any transaction or lock, with the top-up id as the idempotency key.
 * 3. It then **settles** the top-up in a second transaction under the customer's lock, once: only
 *    a top-up still `pending` is settled. Success buys the packs (purchase and paid grant, the
 *    money collected as cost basis), records the payment so refunds and disputes find it, and
 *    emits `topup.succeeded`; failure grants nothing and emits `topup.failed`.
 *
 * A crash between 2 and 3 leaves the top-up pending: the next run charges again with the same
 * idempotency key, which the provider answers with the first charge's outcome (Stripe keeps keys
 * for 24 hours), so the customer pays once and is granted once. A charge whose outcome is unknown
 * (the provider call threw) is retried at the next run. Two workers on one database may both
 * charge the same top-up (same key: one charge) but only one settles it.
 */
export async function chargeWaitingTopUps(
  ctx: ServiceContext,
  provider: PaymentProvider,
  options: { readonly limit?: number } = {},
): Promise<{ readonly succeeded: number; readonly failed: number; readonly unknown: number }> {
  const waiting = await ctx.storage.read.payments.listWaitingTopUps(options.limit ?? 100);
  let succeeded = 0;
  let failed = 0;
  let unknown = 0;
  for (const topUp of waiting) {
    const customer = await ctx.storage.read.getCustomer(topUp.workspaceId, topUp.customerId);
    let outcome: ChargeOutcome;
    try {
      outcome = await provider.charge({
        idempotencyKey: topUp.id,
        workspaceId: topUp.workspaceId,
        customerId: topUp.customerId,
        customerMetadata: customer?.metadata ?? {},
        amount: topUp.priceAmount,
        currency: topUp.currency,
        description: `Burndown auto top-up ${topUp.id}: ${topUp.quantity} × credit pack ${topUp.packId}`,
      });
    } catch {
      unknown += 1;
      continue;
    }
    const settled = await settleTopUp(ctx, topUp, outcome);
    if (settled === 'succeeded') succeeded += 1;
    else if (settled === 'failed') failed += 1;
  }
  return { succeeded, failed, unknown };
}

/** Step 3: grants (or records the failure of) one charged top-up, once; null when it was settled already. */
async function settleTopUp(
  ctx: ServiceContext,
  charged: PendingTopUp,
  outcome: ChargeOutcome,
): Promise<PendingTopUp['status'] | null> {
  return execute(ctx, {
    lockKey: customerLockKey(charged.workspaceId, charged.customerId),
    work: async (tx, now) => {
      const topUp = await tx.payments.getTopUp(charged.workspaceId, charged.id);
      if (topUp?.status !== 'pending') return { ok: true, value: null };
      const base = {
        customer_id: topUp.customerId,
        top_up_id: topUp.id,
        pack_id: topUp.packId,
        quantity: topUp.quantity,
        credit_type: topUp.creditType,
        amount: topUp.priceAmount.toString(),
        currency: topUp.currency,
      };
      topUp.updatedAt = now;
      topUp.providerRef = outcome.paymentIntentId;
      const pack =
        outcome.status === 'succeeded' ? await tx.plans.getCreditPack(topUp.workspaceId, topUp.packId) : null;
      if (outcome.status === 'failed' || pack === null) {
        topUp.status = 'failed';
        topUp.reason =
          outcome.status === 'failed' ? outcome.reason : `credit pack "${topUp.packId}" no longer exists`;
        await tx.payments.putTopUp(topUp);
        const fact: OutboxMessage = {
          workspaceId: topUp.workspaceId,
          type: 'topup.failed',
          customerId: topUp.customerId,
          data: { ...base, reason: topUp.reason, payment_intent_id: topUp.providerRef },
        };
        return { ok: true, value: 'failed' as const, outbox: [fact] };
      }
      if (outcome.status !== 'succeeded') throw new Error('unreachable: a failed charge was settled above');
      const session = await LedgerSession.open(ctx, tx, topUp, now);
      const ledger = await session.ledger(topUp.creditType);
      const paid = fromMinorUnits(outcome.amountMinor, topUp.currency);
      const { purchase, grant } = await buyPacks(ctx, tx, {
        workspaceId: topUp.workspaceId,
        ledger,
        pack,
        quantity: topUp.quantity,
        source: 'auto_top_up',
        paid: { amount: paid, currency: topUp.currency },
        metadata: { top_up_id: topUp.id, stripe_payment_intent_id: outcome.paymentIntentId },
        now,
      });
      await session.save();
      // Recorded like a Checkout payment, so a refund or dispute of the charge claws it back.
      await tx.payments.putPayment({
        workspaceId: topUp.workspaceId,
        id: topUp.id,
        customerId: topUp.customerId,
        purchaseId: purchase.id,
        grantId: grant.id,
        creditType: grant.creditType,
        credits: purchase.credits,
        amountMinor: outcome.amountMinor,
        currency: topUp.currency,
        paymentIntentId: outcome.paymentIntentId,
        chargeId: outcome.chargeId,
        refundedMinor: 0n,
        refundCredits: Amount.ZERO,
        disputeCredits: Amount.ZERO,
        dispute: null,
        createdAt: now,
        updatedAt: now,
      });
      topUp.status = 'succeeded';
      topUp.purchaseId = purchase.id;
      await tx.payments.putTopUp(topUp);
      const fact: OutboxMessage = {
        workspaceId: topUp.workspaceId,
        type: 'topup.succeeded',
        customerId: topUp.customerId,
        data: {
          ...base,
          amount: paid.toString(),
          purchase_id: purchase.id,
          grant_id: grant.id,
          credits: purchase.credits.toString(),
          payment_intent_id: outcome.paymentIntentId,
        },
      };
      return { ok: true, value: 'succeeded' as const, outbox: [fact] };
    },
  });
}

/** A customer's top-up as stored (for tests and operators). */
export async function getTopUp(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
): Promise<PendingTopUp | null> {
  return ctx.storage.read.payments.getTopUp(workspaceId, id);
}
