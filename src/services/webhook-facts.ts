import type { GrantState } from '../domain/ledger/types.js';
import type { Purchase, Subscription } from '../domain/plans/subscription.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { OutboxMessage } from './outbox.js';

/**
 * The facts the core services emit to the outbox, one builder per event type, so each `data`
 * shape lives in one place (its JSON Schema is in src/http/webhook-events/core.ts, and a test
 * checks every emitted fact against it). Amounts are decimal strings, instants RFC 3339.
 */

const time = (t: Instant | null) => (t === null ? null : formatInstant(t));

/** `grant.created`: credits entered a customer's ledger (API, purchase, auto top-up, allowance). */
export function grantCreatedFact(workspaceId: string, g: GrantState): OutboxMessage {
  return {
    workspaceId,
    type: 'grant.created',
    customerId: g.customerId,
    data: {
      grant_id: g.id,
      customer_id: g.customerId,
      credit_type: g.creditType,
      category: g.category,
      amount: g.amount.toString(),
      priority: g.priority,
      effective_at: formatInstant(g.effectiveAt),
      expires_at: time(g.expiresAt),
      cost_basis: g.costBasis
        ? { amount: g.costBasis.amount.toString(), currency: g.costBasis.currency }
        : null,
      description: g.description,
      metadata: g.metadata,
    },
  };
}

/** `grant.voided`: a grant's free remainder left the ledger (`amount_voided`); pinned credits stay capturable. */
export function grantVoidedFact(
  workspaceId: string,
  g: GrantState,
  amountVoided: string,
  reason: string | null,
  now: Instant,
): OutboxMessage {
  return {
    workspaceId,
    type: 'grant.voided',
    customerId: g.customerId,
    data: {
      grant_id: g.id,
      customer_id: g.customerId,
      credit_type: g.creditType,
      amount_voided: amountVoided,
      reason,
      voided_at: formatInstant(now),
    },
  };
}

/** `purchase.created`: packs were bought (by the API or by auto top-up). */
export function purchaseCreatedFact(p: Purchase): OutboxMessage {
  return {
    workspaceId: p.workspaceId,
    type: 'purchase.created',
    customerId: p.customerId,
    data: {
      purchase_id: p.id,
      customer_id: p.customerId,
      pack_id: p.packId,
      quantity: p.quantity,
      credits: p.credits.toString(),
      price: { amount: p.priceAmount.toString(), currency: p.currency },
      grant_id: p.grantId,
      source: p.source,
    },
  };
}

/** `subscription.renewed`: a subscription's allowances were reset for a new period. */
export function subscriptionRenewedFact(
  s: Subscription,
  period: { readonly start: Instant; readonly end: Instant },
): OutboxMessage {
  return {
    workspaceId: s.workspaceId,
    type: 'subscription.renewed',
    customerId: s.customerId,
    data: {
      subscription_id: s.id,
      customer_id: s.customerId,
      plan_id: s.planId,
      plan_version: s.planVersion,
      period_start: formatInstant(period.start),
      period_end: formatInstant(period.end),
    },
  };
}

/** `subscription.canceled`: a cancellation was made, effective now or at the period end (`ends_at`). */
export function subscriptionCanceledFact(s: Subscription, now: Instant): OutboxMessage {
  return {
    workspaceId: s.workspaceId,
    type: 'subscription.canceled',
    customerId: s.customerId,
    data: {
      subscription_id: s.id,
      customer_id: s.customerId,
      plan_id: s.planId,
      at_period_end: s.cancelAt !== null && s.endedAt === null,
      canceled_at: formatInstant(now),
      ends_at: formatInstant(s.endedAt ?? s.cancelAt ?? now),
    },
  };
}
