import { Amount } from '../domain/amount/amount.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import {
  creditsTakenBack,
  type DisputeStatus,
  disputedCredits,
  fromMinorUnits,
  type PaymentRecord,
  refundClawback,
  type StripeEventRecord,
} from '../domain/payments/payments.js';
import type { Instant } from '../domain/time/instant.js';
import type { Page, PageRequest, WriteOperations } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { LedgerSession } from './ledger-session.js';
import { purchaseCreditPacks } from './purchases.js';
import { execute, type OutboxMessage, type WriteOutcome } from './unit-of-work.js';

/**
 * Payments in from Stripe (docs/design.md, "Payments in"). The transport verifies the signature and
 * hands over the parsed event; this module applies it exactly once by its id: the `stripe_events`
 * row is written in the same transaction as the effect (a purchase and grant, a clawback, a dispute
 * hold), so a redelivered event finds it and changes nothing.
 *
 * Events Burndown cannot act on are answered 200 all the same (Stripe would otherwise retry for
 * days) and recorded: `ignored` (a type not handled, an unpaid session waiting for its async
 * payment, a session already granted) or `failed` with a reason (unknown customer or pack in the
 * metadata, a refund of a payment Burndown never saw), listed by `GET /v1/integrations/stripe/events`.
 */

/** A verified Stripe event as the service needs it: its id, type and `data.object`. */
export interface StripeEventInput {
  readonly id: string;
  readonly type: string;
  readonly object: Readonly<Record<string, unknown>>;
}

/** What became of one delivery: applied now, or already recorded (a redelivery changes nothing). */
export interface StripeEventResult {
  readonly status: StripeEventRecord['status'] | 'duplicate';
  readonly reason: string | null;
}

/** Far enough never to expire: a dispute hold ends when the dispute closes, not by a TTL. */
export const DISPUTE_HOLD_EXPIRES_AT: Instant = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const CHECKOUT_EVENTS = new Set(['checkout.session.completed', 'checkout.session.async_payment_succeeded']);
const CHARGE_EVENTS = new Set(['charge.refunded', 'charge.dispute.created', 'charge.dispute.closed']);

/** The transaction's effect on the event: its status and reason, and the facts for the outbox. */
interface Applied {
  readonly status: StripeEventRecord['status'];
  readonly reason: string | null;
  readonly customerId: string | null;
  readonly facts: readonly OutboxMessage[];
}

/** Thrown inside the transaction when another delivery recorded the event first: rolls back this one. */
class RecordedMeanwhile extends Error {}

/**
 * Applies one verified Stripe event to `workspaceId`, exactly once by its id. The lock is the
 * customer's the event is about (from the session's metadata, or the payment a charge event names),
 * so its ledger writes serialise with every other write of that customer.
 */
export async function handleStripeEvent(
  ctx: ServiceContext,
  input: { readonly workspaceId: string; readonly event: StripeEventInput },
): Promise<StripeEventResult> {
  const { workspaceId, event } = input;
  const known = await ctx.storage.read.payments.getStripeEvent(workspaceId, event.id);
  if (known) return { status: 'duplicate', reason: known.reason };
  const target = await customerOf(ctx, workspaceId, event);
  const lockKey =
    target.customerId === null ? `${workspaceId}/#stripe` : customerLockKey(workspaceId, target.customerId);
  try {
    return await execute(ctx, {
      lockKey,
      work: async (tx, now): Promise<WriteOutcome<StripeEventResult>> => {
        if (await tx.payments.getStripeEvent(workspaceId, event.id)) throw new RecordedMeanwhile();
        const applied = await apply(ctx, tx, workspaceId, event, target.payment, now);
        const inserted = await tx.payments.insertStripeEvent({
          workspaceId,
          id: event.id,
          type: event.type,
          status: applied.status,
          reason: applied.reason,
          customerId: applied.customerId,
          objectId: text(event.object, 'id'),
          receivedAt: now,
        });
        if (!inserted) throw new RecordedMeanwhile();
        return {
          ok: true,
          value: { status: applied.status, reason: applied.reason },
          outbox: applied.facts,
        };
      },
    });
  } catch (error) {
    if (!(error instanceof RecordedMeanwhile)) throw error;
    const recorded = await ctx.storage.read.payments.getStripeEvent(workspaceId, event.id);
    return { status: 'duplicate', reason: recorded?.reason ?? null };
  }
}

/** The Stripe events of a workspace, newest first (what operators look at for failed ones). */
export function listStripeEvents(
  ctx: ServiceContext,
  workspaceId: string,
  status: StripeEventRecord['status'] | null,
  page: PageRequest,
): Promise<Page<StripeEventRecord>> {
  return Promise.resolve(ctx.storage.read.payments.listStripeEvents(workspaceId, { status }, page));
}

/** Which customer an event is about (to lock it), and for charge events the payment they name. */
async function customerOf(
  ctx: ServiceContext,
  workspaceId: string,
  event: StripeEventInput,
): Promise<{ customerId: string | null; payment: PaymentRecord | null }> {
  if (CHECKOUT_EVENTS.has(event.type)) {
    return { customerId: metadataOf(event.object)['burndown_customer_id'] ?? null, payment: null };
  }
  if (CHARGE_EVENTS.has(event.type)) {
    const payment = await ctx.storage.read.payments.findPayment(workspaceId, chargeRefs(event));
    return { customerId: payment?.customerId ?? null, payment };
  }
  return { customerId: null, payment: null };
}

async function apply(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  event: StripeEventInput,
  found: PaymentRecord | null,
  now: Instant,
): Promise<Applied> {
  if (CHECKOUT_EVENTS.has(event.type)) return applyCheckout(ctx, tx, workspaceId, event, now);
  if (!CHARGE_EVENTS.has(event.type)) {
    return {
      status: 'ignored',
      reason: `event type ${event.type} is not handled`,
      customerId: null,
      facts: [],
    };
  }
  // Read again under the customer's lock: an earlier event may have changed it since.
  const payment = found === null ? null : await tx.payments.getPayment(workspaceId, found.id);
  if (payment === null) {
    const refs = chargeRefs(event);
    return failed(
      `no payment of Burndown has payment intent ${refs.paymentIntentId ?? '(none)'} or charge ${refs.chargeId ?? '(none)'}`,
      null,
    );
  }
  if (event.type === 'charge.refunded') return applyRefund(ctx, tx, event, payment, now);
  return applyDispute(ctx, tx, event, payment, now);
}

function failed(reason: string, customerId: string | null): Applied {
  return { status: 'failed', reason, customerId, facts: [] };
}

/** A paid Checkout Session: the purchase of the pack its metadata names, once per session. */
async function applyCheckout(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  event: StripeEventInput,
  now: Instant,
): Promise<Applied> {
  const session = event.object;
  const sessionId = text(session, 'id');
  const metadata = metadataOf(session);
  const customerId = metadata['burndown_customer_id'] ?? null;
  if (sessionId === null) return failed('the checkout session has no id', customerId);
  const paymentStatus = text(session, 'payment_status');
  if (event.type === 'checkout.session.completed' && paymentStatus !== 'paid') {
    return {
      status: 'ignored',
      reason: `payment_status is ${paymentStatus ?? 'missing'}: waiting for checkout.session.async_payment_succeeded`,
      customerId,
      facts: [],
    };
  }
  const granted = await tx.payments.getPayment(workspaceId, sessionId);
  if (granted) {
    return {
      status: 'ignored',
      reason: `checkout session ${sessionId} was granted already (purchase ${granted.purchaseId})`,
      customerId: granted.customerId,
      facts: [],
    };
  }
  if (customerId === null) return failed('metadata.burndown_customer_id is missing', null);
  if (!(await tx.getCustomer(workspaceId, customerId)))
    return failed(`customer "${customerId}" (metadata.burndown_customer_id) not found`, customerId);
  const packId = metadata['burndown_credit_pack_id'];
  if (packId === undefined) return failed('metadata.burndown_credit_pack_id is missing', customerId);
  const pack = await tx.plans.getCreditPack(workspaceId, packId);
  if (!pack)
    return failed(`credit pack "${packId}" (metadata.burndown_credit_pack_id) not found`, customerId);
  const quantityText = metadata['burndown_quantity'] ?? '1';
  const quantity = /^[1-9]\d{0,5}$/.test(quantityText) ? Number(quantityText) : 0;
  if (quantity < 1 || quantity > 100_000)
    return failed(
      `metadata.burndown_quantity "${quantityText}" is not an integer from 1 to 100000`,
      customerId,
    );
  const amountMinor = integer(session, 'amount_total');
  const currency = text(session, 'currency')?.toUpperCase() ?? null;
  if (amountMinor === null || amountMinor < 0n || currency === null)
    return failed('the checkout session has no amount_total or currency', customerId);
  const paymentIntentId = idOf(session['payment_intent']);
  const { purchase, grant } = await purchaseCreditPacks(ctx, tx, {
    workspaceId,
    customerId,
    packId,
    quantity,
    now,
    source: 'stripe_checkout',
    paid: { amount: fromMinorUnits(amountMinor, currency), currency },
    metadata: {
      stripe_checkout_session_id: sessionId,
      ...(paymentIntentId === null ? {} : { stripe_payment_intent_id: paymentIntentId }),
    },
  });
  await tx.payments.putPayment({
    workspaceId,
    id: sessionId,
    customerId,
    purchaseId: purchase.id,
    grantId: grant.id,
    creditType: grant.creditType,
    credits: purchase.credits,
    amountMinor,
    currency,
    paymentIntentId,
    chargeId: null,
    refundedMinor: 0n,
    refundCredits: Amount.ZERO,
    disputeCredits: Amount.ZERO,
    dispute: null,
    createdAt: now,
    updatedAt: now,
  });
  return { status: 'processed', reason: null, customerId, facts: [] };
}

/** The payment's ledger, advanced to now, with its grant loaded (a depleted grant is not loaded by default). */
async function openPaymentLedger(
  ctx: ServiceContext,
  tx: WriteOperations,
  payment: PaymentRecord,
  now: Instant,
): Promise<{ session: LedgerSession; ledger: CreditLedger }> {
  const session = await LedgerSession.open(ctx, tx, payment, now);
  const ledger = await session.ledger(payment.creditType);
  if (!ledger.grants.has(payment.grantId)) {
    for (const grant of await tx.getGrantsByIds(payment.workspaceId, [payment.grantId]))
      ledger.adoptGrant(grant);
  }
  return { session, ledger };
}

/** `charge.refunded`: claws back the credits of what was refunded since the last refund processed. */
async function applyRefund(
  ctx: ServiceContext,
  tx: WriteOperations,
  event: StripeEventInput,
  payment: PaymentRecord,
  now: Instant,
): Promise<Applied> {
  const charge = event.object;
  const cumulative = integer(charge, 'amount_refunded');
  if (cumulative === null) return failed('the charge has no amount_refunded', payment.customerId);
  const chargeId = text(charge, 'id');
  if (payment.chargeId === null && chargeId !== null) payment.chargeId = chargeId;
  const { credits, refundedNowMinor } = refundClawback(payment, cumulative);
  if (refundedNowMinor <= 0n) {
    await tx.payments.putPayment({ ...payment, updatedAt: now });
    return {
      status: 'ignored',
      reason: `amount_refunded ${cumulative} adds nothing to the ${payment.refundedMinor} processed`,
      customerId: payment.customerId,
      facts: [],
    };
  }
  const { session, ledger } = await openPaymentLedger(ctx, tx, payment, now);
  const clawed = credits.isPositive() ? ledger.clawBack(payment.grantId, credits, now) : null;
  await session.save();
  // Never more than was paid (bigint: no Math.min).
  payment.refundedMinor = cumulative;
  if (payment.refundedMinor > payment.amountMinor) payment.refundedMinor = payment.amountMinor;
  payment.refundCredits = payment.refundCredits.plus(credits);
  payment.updatedAt = now;
  await tx.payments.putPayment(payment);
  const fact: OutboxMessage = {
    workspaceId: payment.workspaceId,
    type: 'payment.refunded',
    customerId: payment.customerId,
    data: {
      customer_id: payment.customerId,
      purchase_id: payment.purchaseId,
      grant_id: payment.grantId,
      credit_type: payment.creditType,
      charge_id: payment.chargeId,
      payment_intent_id: payment.paymentIntentId,
      currency: payment.currency,
      amount_refunded: fromMinorUnits(refundedNowMinor, payment.currency).toString(),
      amount_refunded_total: fromMinorUnits(payment.refundedMinor, payment.currency).toString(),
      credits_clawed_back: credits.toString(),
      credits_became_overage: (clawed?.becameOverage ?? Amount.ZERO).toString(),
    },
  };
  return { status: 'processed', reason: null, customerId: payment.customerId, facts: [fact] };
}

/**
 * `charge.dispute.created` holds the disputed credits on the purchase's grant (what is still free
 * of them: consumed credits cannot be held); `charge.dispute.closed` releases the hold, then, when
 * the dispute was lost, claws the disputed credits back (consumed ones become overage).
 * `warning_closed` (an inquiry that closed without a chargeback) counts as won.
 */
async function applyDispute(
  ctx: ServiceContext,
  tx: WriteOperations,
  event: StripeEventInput,
  payment: PaymentRecord,
  now: Instant,
): Promise<Applied> {
  const dispute = event.object;
  const disputeId = text(dispute, 'id');
  const amountMinor = integer(dispute, 'amount');
  if (disputeId === null || amountMinor === null)
    return failed('the dispute has no id or amount', payment.customerId);
  const ignored = (reason: string): Applied => ({
    status: 'ignored',
    reason,
    customerId: payment.customerId,
    facts: [],
  });
  let status: DisputeStatus;
  let creditsMoved = Amount.ZERO;
  let becameOverage = Amount.ZERO;
  if (event.type === 'charge.dispute.created') {
    if (payment.dispute !== null) return ignored(`payment already has dispute ${payment.dispute.id}`);
    const credits = disputedCredits(payment, amountMinor);
    const { session, ledger } = await openPaymentLedger(ctx, tx, payment, now);
    const hold = credits.isPositive()
      ? ledger.holdGrant(
          {
            grantId: payment.grantId,
            amount: credits,
            expiresAt: DISPUTE_HOLD_EXPIRES_AT,
            description: `Stripe dispute ${disputeId}`,
            metadata: { stripe_dispute_id: disputeId, purchase_id: payment.purchaseId },
          },
          now,
        )
      : null;
    await session.save();
    status = 'opened';
    creditsMoved = hold?.amount ?? Amount.ZERO;
    payment.dispute = { id: disputeId, status, amountMinor, credits, holdId: hold?.id ?? null };
  } else {
    const closedAs = text(dispute, 'status');
    if (closedAs !== 'won' && closedAs !== 'lost' && closedAs !== 'warning_closed')
      return ignored(`dispute closed with status ${closedAs ?? 'missing'}`);
    if (payment.dispute !== null && payment.dispute.id === disputeId && payment.dispute.status !== 'opened')
      return ignored(`dispute ${disputeId} was closed already (${payment.dispute.status})`);
    const open =
      payment.dispute?.id === disputeId
        ? payment.dispute
        : {
            id: disputeId,
            status: 'opened' as const,
            amountMinor,
            credits: disputedCredits(payment, amountMinor),
            holdId: null,
          };
    const { session, ledger } = await openPaymentLedger(ctx, tx, payment, now);
    if (open.holdId !== null && ledger.holds.get(open.holdId)?.status === 'active')
      ledger.release(open.holdId, now);
    status = closedAs === 'lost' ? 'lost' : 'won';
    if (status === 'lost') {
      creditsMoved = Amount.min(open.credits, payment.credits.minus(creditsTakenBack(payment)));
      if (creditsMoved.isPositive()) {
        becameOverage = ledger.clawBack(payment.grantId, creditsMoved, now).becameOverage;
        payment.disputeCredits = payment.disputeCredits.plus(creditsMoved);
      }
    }
    await session.save();
    payment.dispute = { ...open, status };
  }
  const chargeId = text(dispute, 'charge');
  if (payment.chargeId === null && chargeId !== null) payment.chargeId = chargeId;
  payment.updatedAt = now;
  await tx.payments.putPayment(payment);
  const fact: OutboxMessage = {
    workspaceId: payment.workspaceId,
    type: 'payment.disputed',
    customerId: payment.customerId,
    data: {
      customer_id: payment.customerId,
      purchase_id: payment.purchaseId,
      grant_id: payment.grantId,
      credit_type: payment.creditType,
      dispute_id: disputeId,
      status,
      charge_id: payment.chargeId,
      payment_intent_id: payment.paymentIntentId,
      currency: payment.currency,
      amount_disputed: fromMinorUnits(amountMinor, payment.currency).toString(),
      credits_disputed: payment.dispute.credits.toString(),
      credits_held: status === 'opened' ? creditsMoved.toString() : '0',
      credits_clawed_back: status === 'lost' ? creditsMoved.toString() : '0',
      credits_became_overage: becameOverage.toString(),
    },
  };
  return { status: 'processed', reason: null, customerId: payment.customerId, facts: [fact] };
}

/** The payment intent and charge a charge or dispute event names. */
function chargeRefs(event: StripeEventInput): { paymentIntentId: string | null; chargeId: string | null } {
  const o = event.object;
  const chargeId = event.type === 'charge.refunded' ? text(o, 'id') : idOf(o['charge']);
  return { paymentIntentId: idOf(o['payment_intent']), chargeId };
}

/** A Stripe object's metadata, string values only (Stripe's metadata values are strings). */
function metadataOf(o: Readonly<Record<string, unknown>>): Readonly<Record<string, string>> {
  const m = o['metadata'];
  if (typeof m !== 'object' || m === null) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'string' && v !== '') out[k] = v;
  return out;
}

function text(o: Readonly<Record<string, unknown>>, key: string): string | null {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** An id field, whether Stripe sent it as an id or as the expanded object. */
function idOf(v: unknown): string | null {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string')
    return (v as { id: string }).id;
  return null;
}

/** An integer amount in minor units (Stripe's amounts are JSON integers). */
function integer(o: Readonly<Record<string, unknown>>, key: string): bigint | null {
  const v = o[key];
  return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : null;
}
