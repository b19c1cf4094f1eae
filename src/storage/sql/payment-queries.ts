import { Amount } from '../../domain/amount/amount.js';
import type {
  DisputeStatus,
  PaymentRecord,
  PendingTopUp,
  StripeEventRecord,
} from '../../domain/payments/payments.js';
import type {
  Page,
  PageRequest,
  PaymentReadOperations,
  PaymentWriteOperations,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';
import { instantPart, keyParts, pageOf } from './paging.js';

/** SQL of payments in (both dialects). Payments and top-ups keep their mutable fields in a JSON body. */
export const PAYQ = {
  getEvent: 'SELECT * FROM stripe_events WHERE workspace_id = ? AND id = ?',
  insertEvent: `INSERT INTO stripe_events (workspace_id, id, type, status, reason, customer_id, object_id, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  getPayment: 'SELECT body FROM stripe_payments WHERE workspace_id = ? AND id = ?',
  paymentByIntent:
    'SELECT body FROM stripe_payments WHERE workspace_id = ? AND payment_intent_id = ? LIMIT 1',
  paymentByCharge: 'SELECT body FROM stripe_payments WHERE workspace_id = ? AND charge_id = ? LIMIT 1',
  putPayment: `INSERT INTO stripe_payments (workspace_id, id, customer_id, payment_intent_id, charge_id, body)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, id) DO UPDATE SET payment_intent_id = excluded.payment_intent_id,
       charge_id = excluded.charge_id, body = excluded.body`,
  getTopUp: 'SELECT body FROM pending_top_ups WHERE workspace_id = ? AND id = ?',
  waitingTopUps: `SELECT body FROM pending_top_ups WHERE status = 'pending' ORDER BY created_at, id LIMIT ?`,
  putTopUp: `INSERT INTO pending_top_ups (workspace_id, id, customer_id, status, created_at, body)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, id) DO UPDATE SET status = excluded.status, body = excluded.body`,
} as const;

/** `GET /v1/integrations/stripe/events`: newest first, optionally one status, resumed after (received_at, id). */
function listEventsSql(withStatus: boolean, resumed: boolean): string {
  return `SELECT * FROM stripe_events WHERE workspace_id = ?${withStatus ? ' AND status = ?' : ''}${
    resumed ? ' AND (received_at < ? OR (received_at = ? AND id < ?))' : ''
  } ORDER BY received_at DESC, id DESC LIMIT ?`;
}

interface EventRow {
  workspace_id: string;
  id: string;
  type: string;
  status: string;
  reason: string | null;
  customer_id: string | null;
  object_id: string | null;
  received_at: number | string;
}

function eventFromRow(r: EventRow): StripeEventRecord {
  return {
    workspaceId: r.workspace_id,
    id: r.id,
    type: r.type,
    status: r.status as StripeEventRecord['status'],
    reason: r.reason,
    customerId: r.customer_id,
    objectId: r.object_id,
    receivedAt: Number(r.received_at),
  };
}

type Json = Record<string, unknown>;

function paymentToJson(p: PaymentRecord): string {
  return JSON.stringify({
    workspace_id: p.workspaceId,
    id: p.id,
    customer_id: p.customerId,
    purchase_id: p.purchaseId,
    grant_id: p.grantId,
    credit_type: p.creditType,
    credits: p.credits.toString(),
    amount_minor: p.amountMinor.toString(),
    currency: p.currency,
    payment_intent_id: p.paymentIntentId,
    charge_id: p.chargeId,
    refunded_minor: p.refundedMinor.toString(),
    refund_credits: p.refundCredits.toString(),
    dispute_credits: p.disputeCredits.toString(),
    dispute:
      p.dispute === null
        ? null
        : {
            id: p.dispute.id,
            status: p.dispute.status,
            amount_minor: p.dispute.amountMinor.toString(),
            credits: p.dispute.credits.toString(),
            hold_id: p.dispute.holdId,
          },
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  });
}

function paymentFromJson(body: string): PaymentRecord {
  const j = JSON.parse(body) as Json;
  const d = j['dispute'] as Json | null;
  return {
    workspaceId: String(j['workspace_id']),
    id: String(j['id']),
    customerId: String(j['customer_id']),
    purchaseId: String(j['purchase_id']),
    grantId: String(j['grant_id']),
    creditType: String(j['credit_type']),
    credits: Amount.parse(String(j['credits'])),
    amountMinor: BigInt(String(j['amount_minor'])),
    currency: String(j['currency']),
    paymentIntentId: (j['payment_intent_id'] as string | null) ?? null,
    chargeId: (j['charge_id'] as string | null) ?? null,
    refundedMinor: BigInt(String(j['refunded_minor'])),
    refundCredits: Amount.parse(String(j['refund_credits'])),
    disputeCredits: Amount.parse(String(j['dispute_credits'])),
    dispute:
      d === null
        ? null
        : {
            id: String(d['id']),
            status: d['status'] as DisputeStatus,
            amountMinor: BigInt(String(d['amount_minor'])),
            credits: Amount.parse(String(d['credits'])),
            holdId: (d['hold_id'] as string | null) ?? null,
          },
    createdAt: Number(j['created_at']),
    updatedAt: Number(j['updated_at']),
  };
}

function topUpToJson(t: PendingTopUp): string {
  return JSON.stringify({
    workspace_id: t.workspaceId,
    id: t.id,
    customer_id: t.customerId,
    pack_id: t.packId,
    quantity: t.quantity,
    credit_type: t.creditType,
    price_amount: t.priceAmount.toString(),
    currency: t.currency,
    status: t.status,
    reason: t.reason,
    provider_ref: t.providerRef,
    purchase_id: t.purchaseId,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  });
}

function topUpFromJson(body: string): PendingTopUp {
  const j = JSON.parse(body) as Json;
  return {
    workspaceId: String(j['workspace_id']),
    id: String(j['id']),
    customerId: String(j['customer_id']),
    packId: String(j['pack_id']),
    quantity: Number(j['quantity']),
    creditType: String(j['credit_type']),
    priceAmount: Amount.parse(String(j['price_amount'])),
    currency: String(j['currency']),
    status: j['status'] as PendingTopUp['status'],
    reason: (j['reason'] as string | null) ?? null,
    providerRef: (j['provider_ref'] as string | null) ?? null,
    purchaseId: (j['purchase_id'] as string | null) ?? null,
    createdAt: Number(j['created_at']),
    updatedAt: Number(j['updated_at']),
  };
}

/** Reads of payments in over one executor. */
export class PaymentReads implements PaymentReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async getStripeEvent(workspaceId: string, id: string): Promise<StripeEventRecord | null> {
    const row = await this.db.get<EventRow>(PAYQ.getEvent, [workspaceId, id]);
    return row ? eventFromRow(row) : null;
  }

  async listStripeEvents(
    workspaceId: string,
    filter: { readonly status: StripeEventRecord['status'] | null },
    page: PageRequest,
  ): Promise<Page<StripeEventRecord>> {
    const params: unknown[] = [workspaceId];
    if (filter.status !== null) params.push(filter.status);
    const after = keyParts(page, 2);
    if (after !== null) {
      const at = instantPart(after[0] ?? '');
      params.push(at, at, after[1] ?? '');
    }
    params.push(page.limit + 1);
    const rows = await this.db.all<EventRow>(listEventsSql(filter.status !== null, after !== null), params);
    return pageOf(rows.map(eventFromRow), page.limit, (e) => [String(e.receivedAt), e.id]);
  }

  async getPayment(workspaceId: string, id: string): Promise<PaymentRecord | null> {
    const row = await this.db.get<{ body: string }>(PAYQ.getPayment, [workspaceId, id]);
    return row ? paymentFromJson(row.body) : null;
  }

  async findPayment(
    workspaceId: string,
    ref: { readonly paymentIntentId: string | null; readonly chargeId: string | null },
  ): Promise<PaymentRecord | null> {
    if (ref.paymentIntentId !== null) {
      const row = await this.db.get<{ body: string }>(PAYQ.paymentByIntent, [
        workspaceId,
        ref.paymentIntentId,
      ]);
      if (row) return paymentFromJson(row.body);
    }
    if (ref.chargeId !== null) {
      const row = await this.db.get<{ body: string }>(PAYQ.paymentByCharge, [workspaceId, ref.chargeId]);
      if (row) return paymentFromJson(row.body);
    }
    return null;
  }

  async getTopUp(workspaceId: string, id: string): Promise<PendingTopUp | null> {
    const row = await this.db.get<{ body: string }>(PAYQ.getTopUp, [workspaceId, id]);
    return row ? topUpFromJson(row.body) : null;
  }

  async listWaitingTopUps(limit: number): Promise<readonly PendingTopUp[]> {
    const rows = await this.db.all<{ body: string }>(PAYQ.waitingTopUps, [limit]);
    return rows.map((r) => topUpFromJson(r.body));
  }
}

/** Writes of payments in, inside the caller's transaction. */
export class PaymentWrites extends PaymentReads implements PaymentWriteOperations {
  async insertStripeEvent(e: StripeEventRecord): Promise<boolean> {
    const changed = await this.db.run(PAYQ.insertEvent, [
      e.workspaceId,
      e.id,
      e.type,
      e.status,
      e.reason,
      e.customerId,
      e.objectId,
      e.receivedAt,
    ]);
    return changed > 0;
  }

  async putPayment(p: PaymentRecord): Promise<void> {
    await this.db.run(PAYQ.putPayment, [
      p.workspaceId,
      p.id,
      p.customerId,
      p.paymentIntentId,
      p.chargeId,
      paymentToJson(p),
    ]);
  }

  async putTopUp(t: PendingTopUp): Promise<void> {
    await this.db.run(PAYQ.putTopUp, [
      t.workspaceId,
      t.id,
      t.customerId,
      t.status,
      t.createdAt,
      topUpToJson(t),
    ]);
  }
}
