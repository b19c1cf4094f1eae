import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { BurndownError, ErrorCode } from '../../domain/errors.js';
import { customerLockKey, DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { debitCredits, grantCredits, requirePositiveAmount } from '../../services/ledger.js';
import { audited, command } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { presentDebit, presentGrant } from '../presenters.js';
import {
  AmountText,
  DebitBody,
  ErrorBody,
  errorResponses,
  GrantBody,
  IdParams,
  Nullable,
} from '../schemas.js';
import { DEFAULT_GRANT_PRIORITY } from './grants.js';

/** Body of `POST /v1/customers/{id}/adjustments`. */
export const CreateAdjustmentBody = Type.Object(
  {
    amount: {
      ...AmountText,
      description:
        'Signed decimal, not 0: positive adds credits (a promotional grant), negative removes them (a debit)',
    },
    reason: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'Why: kept on the entry and in the audit log',
    }),
    credit_type: Type.Optional(Type.String({ maxLength: 64, description: 'Default "credits"' })),
    allow_overage: Type.Optional(
      Type.Boolean({
        description: 'A removal larger than the balance becomes overage instead of a 402 (default false)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** An adjustment as the API shows it: the grant or the debit it made, with its reason. */
export const AdjustmentBody = Type.Object({
  direction: Type.Union([Type.Literal('credit'), Type.Literal('debit')]),
  amount: AmountText,
  reason: Type.String(),
  grant: Nullable(GrantBody),
  debit: Nullable(DebitBody),
});

/**
 * Manual adjustments: one call, audited (`adjustment.created`, with the reason), that either
 * grants (positive: a promotional grant, no expiry) or debits (negative: in burn-down order, all
 * or nothing, overage only when allowed). No new ledger concept: the entry is an ordinary grant or
 * debit whose description and metadata carry the reason.
 */
export function registerAdjustmentRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreateAdjustmentBody> }>(
    '/v1/customers/:id/adjustments',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['grants'],
        summary:
          'Adjust a balance with a reason (audited): a positive amount grants (promotional), a negative one debits',
        params: IdParams,
        body: CreateAdjustmentBody,
        response: { 201: AdjustmentBody, 402: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const text = body.amount.trim();
      const negative = text.startsWith('-');
      const amount = requirePositiveAmount(negative ? text.slice(1) : text, 'amount');
      const reason = body.reason.trim();
      if (reason === '') {
        throw new BurndownError(ErrorCode.invalidRequest, 'reason must not be blank', { field: 'reason' });
      }
      const workspaceId = request.auth.workspaceId;
      const key = {
        workspaceId,
        customerId: request.params.id,
        creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
      };
      const description = `Adjustment: ${reason}`;
      const metadata = { adjustment_reason: reason };
      const work = command(customerLockKey(workspaceId, key.customerId), async (tx, now) => {
        if (!negative) {
          const done = await grantCredits(ctx, tx, {
            key,
            grant: {
              amount,
              category: 'promotional',
              priority: DEFAULT_GRANT_PRIORITY,
              effectiveAt: now,
              expiresAt: null,
              costBasis: null,
              appliesTo: null,
              description,
              metadata,
            },
            now,
          });
          return { kind: 'credit' as const, grant: done.grant, debit: null, balance: done.balance, now };
        }
        const done = await debitCredits(ctx, tx, {
          key,
          amount,
          allowOverage: body.allow_overage ?? false,
          description,
          metadata,
          now,
        });
        if ('refused' in done) return done;
        return { kind: 'debit' as const, grant: null, debit: done.debit, balance: done.balance, now };
      });
      const adjust = audited(work, (done) => ({
        workspaceId,
        action: 'adjustment.created',
        targetType: done.kind === 'credit' ? 'grant' : 'debit',
        targetId: done.kind === 'credit' ? done.grant!.id : done.debit!.id,
        before: null,
        after: {
          customer_id: key.customerId,
          credit_type: key.creditType,
          direction: done.kind,
          amount: `${negative ? '-' : ''}${amount.toString()}`,
          reason,
          available_after: done.balance.available.toString(),
        },
      }));
      return writer.run(request, reply, adjust, (done, now) => ({
        status: 201,
        body: {
          direction: done.kind,
          amount: `${negative ? '-' : ''}${amount.toString()}`,
          reason,
          grant: done.grant ? presentGrant(done.grant, now) : null,
          debit: done.debit ? presentDebit(done.debit, done.balance) : null,
        },
      }));
    },
  );
}
