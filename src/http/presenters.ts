import { grantStatusAt } from '../domain/ledger/burn-down.js';
import type { DebitRecord } from '../domain/ledger/credit-ledger.js';
import type { BalanceView, Drawdown, GrantState, HoldState } from '../domain/ledger/types.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { CreditType, Customer, StoredEntry } from '../ports/storage.js';
import { balanceJson, presentBalance } from '../services/balance-document.js';
import { JsonText, jsonWithEmbedded } from '../services/json-text.js';

/** Domain objects to the JSON shapes of docs/api.md. Amounts become canonical decimal strings here. */

// The balance shape is shared with the CLI, so it lives outside the transport.
export { presentBalance };

const time = (instant: Instant | null) => (instant === null ? null : formatInstant(instant));

export function presentCustomer(c: Customer) {
  return { id: c.id, name: c.name, metadata: c.metadata, created_at: formatInstant(c.createdAt) };
}

export function presentCreditType(c: CreditType) {
  return { id: c.id, name: c.name, created_at: formatInstant(c.createdAt) };
}

export function presentGrant(g: Readonly<GrantState>, now: Instant) {
  const status = grantStatusAt(g, now);
  // A grant past its expiry whose expiry entry is not yet written shows nothing left.
  const expiredUnrecorded = status === 'expired' && g.closedReason === null;
  return {
    id: g.id,
    customer_id: g.customerId,
    credit_type: g.creditType,
    category: g.category,
    amount: g.amount.toString(),
    remaining: (expiredUnrecorded ? g.held : g.available.plus(g.held)).toString(),
    held: g.held.toString(),
    priority: g.priority,
    effective_at: formatInstant(g.effectiveAt),
    expires_at: time(g.expiresAt),
    status,
    cost_basis: g.costBasis
      ? { amount: g.costBasis.amount.toString(), currency: g.costBasis.currency }
      : null,
    applies_to: g.appliesTo,
    description: g.description,
    metadata: g.metadata,
    created_at: formatInstant(g.createdAt),
    voided_at: g.closedReason === 'voided' ? time(g.closedAt) : null,
    expired_at: status === 'expired' ? time(g.closedAt ?? g.expiresAt) : null,
  };
}

function presentDrawdowns(drawdowns: readonly Drawdown[]) {
  return drawdowns.map((d) => ({ grant_id: d.grantId, amount: d.amount.toString() }));
}

export function presentDebit(d: DebitRecord, balance: BalanceView) {
  return Object.assign(debitHead(d), { balance_after: presentBalance(balance) }, debitTail(d));
}

/**
 * {@link presentDebit} as JSON text, the same byte for byte: the balance's text is built by
 * {@link balanceJson}, which reuses the text of the grants unchanged since an earlier answer.
 * For a debit or capture answered on its own (a body, not a part of one).
 */
export function presentDebitText(d: DebitRecord, balance: BalanceView): JsonText {
  return new JsonText(jsonWithEmbedded(debitHead(d), 'balance_after', balanceJson(balance), debitTail(d)));
}

/** The fields of a debit document before `balance_after` (in the documented order). */
function debitHead(d: DebitRecord) {
  return {
    id: d.id,
    customer_id: d.customerId,
    credit_type: d.creditType,
    amount: d.amount.toString(),
    drawdowns: presentDrawdowns(d.drawdowns),
    overage: d.overage.toString(),
    hold_id: d.holdId,
    feature_id: d.featureId,
  };
}

/** The fields of a debit document after `balance_after`. */
function debitTail(d: DebitRecord) {
  return { description: d.description, metadata: d.metadata, created_at: formatInstant(d.createdAt) };
}

export function presentHold(h: HoldState, now: Instant) {
  // An active hold past its expiry has released itself, whether or not that is recorded yet.
  const expired = h.status === 'active' && h.expiresAt <= now;
  return {
    id: h.id,
    customer_id: h.customerId,
    credit_type: h.creditType,
    amount: h.amount.toString(),
    status: expired ? 'expired' : h.status,
    expires_at: formatInstant(h.expiresAt),
    drawdowns: presentDrawdowns(h.drawdowns),
    captured_amount: h.capturedAmount?.toString() ?? null,
    feature_id: h.featureId,
    closed_at: expired ? formatInstant(h.expiresAt) : time(h.closedAt),
    description: h.description,
    metadata: h.metadata,
    created_at: formatInstant(h.createdAt),
  };
}

export function presentEntry(e: StoredEntry) {
  return {
    id: e.id,
    type: e.type,
    amount: e.amount.toString(),
    credit_type: e.creditType,
    grant_id: e.grantId,
    ref: e.ref,
    at: formatInstant(e.at),
    balance_after: e.balanceAfter.toString(),
    from_account: e.fromAccount,
    to_account: e.toAccount,
    recorded_at: formatInstant(e.recordedAt),
  };
}
