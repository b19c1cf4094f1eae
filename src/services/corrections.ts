import { Amount } from '../domain/amount/amount.js';
import { invalidRequest, notFound } from '../domain/errors.js';
import type { CreditLedger, ReversalRecord, ReversalRefused } from '../domain/ledger/credit-ledger.js';
import type { BalanceView } from '../domain/ledger/types.js';
import { pricingUsesPeriodUsage, ratingPeriodStart } from '../domain/rating/rate.js';
import type { Instant } from '../domain/time/instant.js';
import type { LedgerKey, ListedEvent, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { recordFeatureUsage } from './entitlements.js';
import { openCustomerSession } from './ledger.js';
import type { LedgerSession } from './ledger-session.js';
import { featuresByRate } from './metering.js';
import { compilePricing } from './pricing.js';

/** Longest reason a correction may carry (it is kept with the debit as its audit trail). */
export const MAX_REASON_LENGTH = 1000;

/** A reversal needs a reason: corrections are audited, so a blank one is a 400. */
export function requireReason(reason: string | undefined): string {
  if (reason === undefined || reason.trim().length === 0) {
    throw invalidRequest('reason is required', { field: 'reason' });
  }
  if (reason.length > MAX_REASON_LENGTH) {
    throw invalidRequest(`reason must be at most ${MAX_REASON_LENGTH} characters`, { field: 'reason' });
  }
  return reason;
}

/**
 * Opens the ledger of `key` for corrections: every grant `grantIds` names and every grant that
 * paid overage debt loaded, depleted ones too (a reversal returns credits to them), what is due
 * applied again (a loaded grant past its expiry is closed before anything returns to it), and the
 * settlement history loaded (what paid overage may be refunded to which grant).
 */
async function openLedgerForCorrection(
  ctx: ServiceContext,
  tx: WriteOperations,
  key: LedgerKey,
  grantIds: readonly string[],
  now: Instant,
): Promise<{ session: LedgerSession; ledger: CreditLedger }> {
  const { session, ledger } = await openCustomerSession(ctx, tx, key, now);
  // Read once the ledger is open (its writers serialised); what opening recorded is not stored
  // yet, and loadSettlements adds it.
  const history = await tx.settlementHistoryOf(key);
  await loadGrants(
    tx,
    ledger,
    key.workspaceId,
    [...grantIds, ...history.settlements.map((s) => s.grantId)],
    now,
  );
  ledger.loadSettlements(history);
  return { session, ledger };
}

/** Loads the grants of `grantIds` the ledger does not hold yet, then applies what is due. */
async function loadGrants(
  tx: WriteOperations,
  ledger: CreditLedger,
  workspaceId: string,
  grantIds: readonly string[],
  now: Instant,
): Promise<void> {
  const missing = [...new Set(grantIds)].filter((id) => !ledger.grants.has(id));
  for (const grant of await tx.getGrantsByIds(workspaceId, missing)) ledger.adoptGrant(grant);
  ledger.advanceTo(now);
}

/**
 * Reverses `amount` (default: all that is left) of a debit or a capture; see
 * {@link CreditLedger.reverse} for the order. A refusal (`nothing_to_reverse`,
 * `reversal_exceeds_burn`) is a value and writes nothing.
 */
export async function reverseDebit(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; debitId: string; amount: Amount | null; reason: string; now: Instant },
): Promise<{ reversal: ReversalRecord; balance: BalanceView } | ReversalRefused> {
  const { workspaceId, now } = input;
  const target = await tx.getDebit(workspaceId, input.debitId);
  if (!target) throw notFound('debit', input.debitId);
  const key = { workspaceId, customerId: target.debit.customerId, creditType: target.debit.creditType };
  const grantIds = target.debit.drawdowns.map((d) => d.grantId);
  const { session, ledger } = await openLedgerForCorrection(ctx, tx, key, grantIds, now);
  const outcome = ledger.reverse({ target, amount: input.amount, reason: input.reason }, now);
  if ('refused' in outcome) return outcome;
  await session.save();
  const { featureId } = target.debit;
  if (featureId !== null && outcome.quantityReturned?.isPositive()) {
    // The use goes back to the usage counter of the period it was counted in: the debit's time,
    // or for a capture, the period its held check counted it in (the hold may have been taken in
    // an earlier period than the capture).
    const hold = target.debit.holdId === null ? null : await tx.getHold(workspaceId, target.debit.holdId);
    await recordFeatureUsage(ctx, tx, {
      workspaceId,
      customerId: target.debit.customerId,
      featureId,
      uses: [{ at: hold?.usage?.periodStart ?? target.debit.createdAt, quantity: outcome.quantityReturned }],
      giveBack: true,
    });
  }
  return { reversal: outcome, balance: ledger.balance(now) };
}

/**
 * Reverses a usage event: every burn of it (what is left of each, if some was reversed through its
 * debit already) goes back, and the event leaves meter usage, the rating-period usage of its rates
 * (so tiers price later events as if it never came) and the usage-limit counters of the features
 * those rates price. Whole events only: a partial credit correction is a reversal of the burn's
 * debit. An event already reversed is `nothing_to_reverse`.
 */
export async function reverseEvent(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; eventKey: string; reason: string; now: Instant },
): Promise<{ event: ListedEvent; reversals: ReversalRecord[] } | ReversalRefused> {
  const { workspaceId, now } = input;
  const event = await tx.getEvent(workspaceId, input.eventKey);
  if (!event) throw notFound('event', input.eventKey);
  if (event.reversedAt !== null)
    return { refused: 'nothing_to_reverse', reversible: Amount.ZERO, requested: null };
  const burns = await tx.burnsOfEvents(workspaceId, [event.eventKey]);
  const opened = new Map<string, { session: LedgerSession; ledger: CreditLedger }>();
  const reversals: ReversalRecord[] = [];
  for (const burn of burns) {
    if (burn.debitId === null) continue;
    const target = await tx.getDebit(workspaceId, burn.debitId);
    if (!target) throw new Error(`burn of ${event.eventKey} by ${burn.rateId} names a missing debit`);
    const creditType = target.debit.creditType;
    let open = opened.get(creditType);
    const grantIds = target.debit.drawdowns.map((d) => d.grantId);
    if (!open) {
      open = await openLedgerForCorrection(
        ctx,
        tx,
        { workspaceId, customerId: event.customerId, creditType },
        grantIds,
        now,
      );
      opened.set(creditType, open);
    } else {
      await loadGrants(tx, open.ledger, workspaceId, grantIds, now);
    }
    const { ledger } = open;
    if (!ledger.reversibleOf(target).isPositive()) continue;
    const outcome = ledger.reverse({ target, amount: null, reason: input.reason }, now);
    if ('refused' in outcome) throw new Error('a reversal of all that is left cannot be refused');
    reversals.push(outcome);
  }
  if (!(await tx.markEventReversed(workspaceId, event.eventKey, now))) {
    return { refused: 'nothing_to_reverse', reversible: Amount.ZERO, requested: null };
  }
  for (const { session } of opened.values()) await session.save();
  const features = burns.length > 0 ? await featuresByRate(tx, workspaceId) : new Map<string, string>();
  const period = ratingPeriodStart(event.time);
  for (const burn of burns) {
    if (!burn.quantity.isPositive()) continue;
    const rate = await tx.getRate(workspaceId, burn.rateId);
    // Only graduated rates count period usage (see pricingUsesPeriodUsage); a counter some older
    // version kept for a flat rate is read by nothing, so it is left as it is.
    if (rate === null || pricingUsesPeriodUsage(compilePricing(rate.pricing))) {
      const used = await tx.getRateUsage(workspaceId, event.customerId, burn.rateId, period);
      const left = Amount.max(Amount.ZERO, used.minus(burn.quantity));
      await tx.setRateUsage(workspaceId, event.customerId, burn.rateId, period, left);
    }
    const featureId = features.get(burn.rateId);
    if (featureId === undefined) continue;
    await recordFeatureUsage(ctx, tx, {
      workspaceId,
      customerId: event.customerId,
      featureId,
      uses: [{ at: event.time, quantity: burn.quantity }],
      giveBack: true,
    });
  }
  return { event: { ...event, reversedAt: now }, reversals };
}
