import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createCreditTypeCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { listCreditTypes } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentCreditType } from '../presenters.js';
import { CreateCreditTypeBody, CreditTypeBody, errorResponses, ListOf, ListQuery } from '../schemas.js';

/** Credit types: the units balances are kept in (`credits` always exists). */
export function registerCreditTypeRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateCreditTypeBody> }>(
    '/v1/credit-types',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['credit types'],
        summary: 'Create a credit type',
        body: CreateCreditTypeBody,
        response: { 201: CreditTypeBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(
        request,
        reply,
        createCreditTypeCommand({
          workspaceId: request.auth.workspaceId,
          id: request.body.id,
          name: request.body.name ?? null,
        }),
        (creditType) => ({ status: 201, body: presentCreditType(creditType) }),
      ),
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/credit-types',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['credit types'],
        summary: 'List credit types (including the built-in `credits`)',
        querystring: ListQuery,
        response: { 200: ListOf(CreditTypeBody), ...errorResponses },
      },
    },
    async (request) => {
      const pageRequest = readPageRequest(request.query);
      const page = await listCreditTypes(ctx, request.auth.workspaceId, pageRequest);
      const body = presentPage(page, presentCreditType);
      if (pageRequest.after === null) {
        body.data.unshift({
          id: DEFAULT_CREDIT_TYPE,
          name: 'Credits',
          created_at: new Date(0).toISOString(),
        });
      }
      return body;
    },
  );
}
