import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import { invalidRequest } from '../../domain/errors.js';
import type { ReversalRecord } from '../../domain/ledger/credit-ledger.js';
import { formatInstant } from '../../domain/time/instant.js';
import { reverseDebitCommand, reverseEventCommand } from '../../services/commands.js';
import { MAX_REASON_LENGTH, requireReason } from '../../services/corrections.js';
import { requirePositiveAmount } from '../../services/ledger.js';
import { eventKeyOf } from '../../services/metering.js';
import type { RouteDeps } from '../app.js';
import { presentBalance } from '../presenters.js';
import { AmountText, BalanceBody, errorResponses, Nullable, OpaqueId, Time } from '../schemas.js';

const ReverseBody = Type.Object(
  {
    amount: Type.Optional({
      ...AmountText,
      description: 'How much to reverse (default: all that is left); never more than is left',
    }),
    reason: Type.String({
      minLength: 1,
      maxLength: MAX_REASON_LENGTH,
      description: 'Why (kept with the debit)',
    }),
  },
  { additionalProperties: false },
);
const ReverseEventBody = Type.Object(
  {
    reason: Type.String({ minLength: 1, maxLength: MAX_REASON_LENGTH }),
    amount: Type.Optional({
      ...AmountText,
      description: 'Not accepted: an event is reversed whole; reverse part of a burn through its debit',
    }),
  },
  { additionalProperties: false },
);
const ReversalBody = Type.Object({
  id: Type.String(),
  type: Type.Literal('reversal'),
  debit_id: Type.String(),
  customer_id: Type.String(),
  credit_type: Type.String(),
  amount: AmountText,
  overage_cancelled: { ...AmountText, description: 'Overage still owed that this reversal cancelled' },
  overage_refunded: {
    ...AmountText,
    description:
      'Overage already paid (by grants, overage_settled) that went back as credits to those grants',
  },
  returned: Type.Array(
    Type.Object({
      grant_id: Type.String(),
      amount: AmountText,
      kind: Type.Union([Type.Literal('drawdown'), Type.Literal('paid_overage')], {
        description: 'drawdown: credits the debit drew from it; paid_overage: overage debt it had paid',
      }),
      left_again_as: Nullable(Type.Union([Type.Literal('expiry'), Type.Literal('void')])),
    }),
  ),
  usage_returned: Nullable({
    ...AmountText,
    description:
      "The debit's quantity given back to its feature's usage counter (null: the debit stored none)",
  }),
  reason: Type.String(),
  created_at: Time,
});
const DebitReversalBody = Type.Object({ ...ReversalBody.properties, balance_after: BalanceBody });
const EventReversalBody = Type.Object({
  event_id: Type.String(),
  source: Nullable(Type.String()),
  customer_id: Type.String(),
  reversed_at: Time,
  reason: Type.String(),
  reversals: Type.Array(ReversalBody),
});

/** A reversal as the API shows it: the overage it cancelled and what went back to each grant. */
export function presentReversal(r: ReversalRecord) {
  const overage = Amount.sum(r.parts.filter((p) => p.kind === 'owed_overage').map((p) => p.amount));
  const refunded = Amount.sum(r.parts.filter((p) => p.kind === 'paid_overage').map((p) => p.amount));
  const returned = r.parts.flatMap((p) =>
    p.grantId === null || p.kind === 'owed_overage'
      ? []
      : [{ grant_id: p.grantId, amount: p.amount.toString(), kind: p.kind, left_again_as: p.leftAgainAs }],
  );
  return {
    id: r.id,
    type: 'reversal' as const,
    debit_id: r.debitId,
    customer_id: r.customerId,
    credit_type: r.creditType,
    amount: r.amount.toString(),
    overage_cancelled: overage.toString(),
    overage_refunded: refunded.toString(),
    returned,
    usage_returned: r.quantityReturned === null ? null : r.quantityReturned.toString(),
    reason: r.reason,
    created_at: formatInstant(r.createdAt),
  };
}

/**
 * Corrections: reverse (part of) a debit or capture, or a usage event's burns, with a reason.
 * Idempotent through `Idempotency-Key`; never more than was burned (409 beyond).
 */
export function registerCorrectionRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: { id: string }; Body: Static<typeof ReverseBody> }>(
    '/v1/debits/:id/reverse',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['corrections'],
        summary: 'Reverse (part of) a debit or a capture: overage first, then drawdowns last-drawn first',
        description:
          'A capture is reversed through the id of the debit its capture answered with. Credits go back to the grants ' +
          'they were drawn from; a part whose grant has since expired or been voided leaves again at once (expiry/void).',
        params: Type.Object({ id: OpaqueId }),
        body: ReverseBody,
        response: { 201: DebitReversalBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const reason = requireReason(body.reason);
      const amount = body.amount === undefined ? null : requirePositiveAmount(body.amount, 'amount');
      const workspaceId = request.auth.workspaceId;
      const reverse = await reverseDebitCommand(ctx, {
        workspaceId,
        debitId: request.params.id,
        amount,
        reason,
      });
      return writer.run(request, reply, reverse, (done) => ({
        status: 201,
        body: { ...presentReversal(done.reversal), balance_after: presentBalance(done.balance) },
      }));
    },
  );

  app.post<{
    Params: { id: string };
    Querystring: { source?: string };
    Body: Static<typeof ReverseEventBody>;
  }>(
    '/v1/events/:id/reverse',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['corrections'],
        summary: "Reverse a usage event's burns; the event leaves meter usage",
        description:
          'Whole events only (a partial correction reverses part of a burn through its debit, listed by GET /v1/events). ' +
          'A CloudEvent is named by its id and `?source=`.',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }) }),
        querystring: Type.Object(
          { source: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) },
          { additionalProperties: false },
        ),
        body: ReverseEventBody,
        response: { 201: EventReversalBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const reason = requireReason(body.reason);
      if (body.amount !== undefined) {
        throw invalidRequest(
          "an event is reversed whole; to reverse part of its credits, reverse its burn's debit",
          { field: 'amount' },
        );
      }
      const workspaceId = request.auth.workspaceId;
      const eventKey = eventKeyOf({ id: request.params.id, source: request.query.source ?? null });
      const reverse = await reverseEventCommand(ctx, { workspaceId, eventKey, reason }, request.params.id);
      return writer.run(request, reply, reverse, (done, now) => ({
        status: 201,
        body: {
          event_id: done.event.id,
          source: done.event.source,
          customer_id: done.event.customerId,
          reversed_at: formatInstant(now),
          reason,
          reversals: done.reversals.map(presentReversal),
        },
      }));
    },
  );
}
