import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { debitCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { requirePositiveAmount } from '../../services/ledger.js';
import type { RouteDeps } from '../app.js';
import { presentDebitText } from '../presenters.js';
import { readMetadata } from '../route-helpers.js';
import { CreateDebitBody, DebitBody, ErrorBody, errorResponses, IdParams } from '../schemas.js';

/** Debits: credits out, in burn-down order, never partially. */
export function registerDebitRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreateDebitBody> }>(
    '/v1/customers/:id/debits',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['debits'],
        summary: 'Debit credits in burn-down order (all or nothing; overage when allowed)',
        params: IdParams,
        body: CreateDebitBody,
        response: { 201: DebitBody, 402: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const amount = requirePositiveAmount(body.amount, 'amount');
      const quantity = body.quantity === undefined ? null : requirePositiveAmount(body.quantity, 'quantity');
      if (quantity !== null && !body.feature_id) {
        throw invalidRequest('quantity counts usage of a feature: it needs feature_id', {
          field: 'quantity',
        });
      }
      const metadata = readMetadata(body.metadata);
      const workspaceId = request.auth.workspaceId;
      return writer.run(
        request,
        reply,
        debitCommand(ctx, {
          key: {
            workspaceId,
            customerId: request.params.id,
            creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
          },
          amount,
          allowOverage: body.allow_overage ?? false,
          featureId: body.feature_id ?? null,
          quantity,
          description: body.description ?? null,
          metadata,
          manual: body.manual ?? false,
        }),
        (done) => ({ status: 201, body: presentDebitText(done.debit, done.balance) }),
      );
    },
  );
}
