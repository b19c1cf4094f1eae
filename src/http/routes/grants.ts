import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import { BurndownError, ErrorCode, notFound } from '../../domain/errors.js';
import { grantCommand, voidGrantCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { requirePositiveAmount } from '../../services/ledger.js';
import { getGrant, listGrants } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentGrant } from '../presenters.js';
import { readMetadata, readTime } from '../route-helpers.js';
import {
  CreateGrantBody,
  errorResponses,
  GrantBody,
  GrantIdParams,
  IdParams,
  ListGrantsQuery,
  ListOf,
  VoidGrantBody,
} from '../schemas.js';

/** Default priority of a grant when the client gives none. */
export const DEFAULT_GRANT_PRIORITY = 10;

/** Grants: credits in; list, read and void. */
export function registerGrantRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreateGrantBody> }>(
    '/v1/customers/:id/grants',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['grants'],
        summary: 'Grant credits to a customer',
        params: IdParams,
        body: CreateGrantBody,
        response: { 201: GrantBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const amount = requirePositiveAmount(body.amount, 'amount');
      const effectiveAt =
        body.effective_at === undefined ? null : readTime(body.effective_at, 'effective_at');
      const expiresAt = body.expires_at == null ? null : readTime(body.expires_at, 'expires_at');
      let costBasis = null;
      if (body.cost_basis) {
        const parsed = Amount.tryParse(body.cost_basis.amount);
        if (typeof parsed === 'string' || parsed.isNegative()) {
          throw new BurndownError(
            ErrorCode.invalidAmount,
            'cost_basis.amount must be a non-negative decimal string',
            {
              field: 'cost_basis.amount',
            },
          );
        }
        costBasis = { amount: parsed, currency: body.cost_basis.currency };
      }
      const metadata = readMetadata(body.metadata);
      const workspaceId = request.auth.workspaceId;
      const grant = grantCommand(ctx, {
        key: {
          workspaceId,
          customerId: request.params.id,
          creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
        },
        grant: {
          amount,
          category: body.category ?? 'paid',
          priority: body.priority ?? DEFAULT_GRANT_PRIORITY,
          effectiveAt,
          expiresAt,
          costBasis,
          appliesTo: body.applies_to ?? null,
          description: body.description ?? null,
          metadata,
        },
      });
      return writer.run(request, reply, grant, (done, now) => ({
        status: 201,
        body: presentGrant(done.grant, now),
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof ListGrantsQuery> }>(
    '/v1/customers/:id/grants',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['grants'],
        summary: "List a customer's grants (oldest first), optionally by status",
        params: IdParams,
        querystring: ListGrantsQuery,
        response: { 200: ListOf(GrantBody), ...errorResponses },
      },
    },
    async (request) => {
      const workspaceId = request.auth.workspaceId;
      const pageRequest = readPageRequest(request.query);
      const { page, now } = await listGrants(
        ctx,
        workspaceId,
        request.params.id,
        { status: request.query.status ?? null, creditType: request.query.credit_type ?? null },
        pageRequest,
      );
      return presentPage(page, (g) => presentGrant(g, now));
    },
  );

  app.get<{ Params: Static<typeof GrantIdParams> }>(
    '/v1/grants/:grant_id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['grants'],
        summary: 'Get a grant',
        params: GrantIdParams,
        response: { 200: GrantBody, ...errorResponses },
      },
    },
    async (request) => {
      const grant = await getGrant(ctx, request.auth.workspaceId, request.params.grant_id);
      if (!grant) throw notFound('grant', request.params.grant_id);
      return presentGrant(grant, ctx.clock.now());
    },
  );

  app.post<{ Params: Static<typeof GrantIdParams>; Body: Static<typeof VoidGrantBody> | undefined }>(
    '/v1/grants/:grant_id/void',
    {
      config: { scope: 'write' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['grants'],
        summary: 'Void a grant: its free remainder leaves the balance now',
        params: GrantIdParams,
        body: VoidGrantBody,
        response: { 200: GrantBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const workspaceId = request.auth.workspaceId;
      const voiding = await voidGrantCommand(ctx, {
        workspaceId,
        grantId: request.params.grant_id,
        reason: request.body?.reason ?? null,
      });
      return writer.run(request, reply, voiding, (grant, now) => ({
        status: 200,
        body: presentGrant(grant, now),
      }));
    },
  );
}
