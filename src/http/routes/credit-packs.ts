import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../domain/errors.js';
import {
  createCreditPackCommand,
  purchaseCommand,
  removeAutoTopUpCommand,
  setAutoTopUpCommand,
} from '../../services/commands.js';
import { getAutoTopUp, getCreditPack, listCreditPacks, listPurchases } from '../../services/queries.js';
import { execute } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readAutoTopUp, readCreditPack } from '../plan-input.js';
import { presentAutoTopUp, presentCreditPack, presentPurchase } from '../plan-presenters.js';
import {
  AutoTopUpBody,
  CreateCreditPackBody,
  CreatePurchaseBody,
  CreditPackBody,
  PurchaseBody,
  PutAutoTopUpBody,
} from '../plan-schemas.js';
import { presentBalance, presentGrant } from '../presenters.js';
import { requestContextOf } from '../route-helpers.js';
import { BalanceBody, errorResponses, GrantBody, IdParams, ListOf, ListQuery } from '../schemas.js';

const PurchaseResponse = Type.Object({
  ...PurchaseBody.properties,
  grant: GrantBody,
  balance_after: BalanceBody,
});

/** Credit packs, purchases of them, and customers' auto top-up rules. */
export function registerCreditPackRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateCreditPackBody> }>(
    '/v1/credit-packs',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['credit packs'],
        summary: 'Create a credit pack, with volume discounts by quantity',
        body: CreateCreditPackBody,
        response: { 201: CreditPackBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = readCreditPack(request.body);
      const ws = request.auth.workspaceId;
      return writer.run(request, reply, createCreditPackCommand(ws, input), (pack) => ({
        status: 201,
        body: presentCreditPack(pack),
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/credit-packs/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['credit packs'],
        summary: 'Get a credit pack',
        params: IdParams,
        response: { 200: CreditPackBody, ...errorResponses },
      },
    },
    async (request) => {
      return presentCreditPack(await getCreditPack(ctx, request.auth.workspaceId, request.params.id));
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/credit-packs',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['credit packs'],
        summary: 'List credit packs',
        querystring: ListQuery,
        response: { 200: ListOf(CreditPackBody), ...errorResponses },
      },
    },
    async (request) => {
      return presentPage(
        await listCreditPacks(ctx, request.auth.workspaceId, readPageRequest(request.query)),
        presentCreditPack,
      );
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreatePurchaseBody> }>(
    '/v1/customers/:id/purchases',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['credit packs'],
        summary: 'Buy packs: a paid grant whose cost basis is the (discounted) price',
        params: IdParams,
        body: CreatePurchaseBody,
        response: { 201: PurchaseResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const ws = request.auth.workspaceId;
      const purchase = purchaseCommand(ctx, {
        workspaceId: ws,
        customerId: request.params.id,
        packId: request.body.pack_id,
        quantity: request.body.quantity ?? 1,
      });
      return writer.run(request, reply, purchase, (bought, now) => ({
        status: 201,
        body: {
          ...presentPurchase(bought.purchase),
          grant: presentGrant(bought.grant, now),
          balance_after: presentBalance(bought.balance),
        },
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof ListQuery> }>(
    '/v1/customers/:id/purchases',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['credit packs'],
        summary: "A customer's purchases (by the API and by auto top-up), oldest first",
        params: IdParams,
        querystring: ListQuery,
        response: { 200: ListOf(PurchaseBody), ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const purchases = await listPurchases(ctx, ws, request.params.id, readPageRequest(request.query));
      return presentPage(purchases, presentPurchase);
    },
  );

  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof PutAutoTopUpBody> }>(
    '/v1/customers/:id/auto-top-up',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['credit packs'],
        summary: 'Set the auto top-up rule: buy packs when the balance crosses below a threshold',
        params: IdParams,
        body: PutAutoTopUpBody,
        response: { 200: AutoTopUpBody, ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const input = readAutoTopUp(request.body);
      const rule = await execute(
        ctx,
        setAutoTopUpCommand({ ...input, workspaceId: ws, customerId: request.params.id }),
        requestContextOf(request),
      );
      return presentAutoTopUp(rule);
    },
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/customers/:id/auto-top-up',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['credit packs'],
        summary: "Remove a customer's auto top-up rule (204); 404 when it has none",
        params: IdParams,
        response: { 204: Type.Null({ description: 'Removed' }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const ws = request.auth.workspaceId;
      await execute(
        ctx,
        removeAutoTopUpCommand({ workspaceId: ws, customerId: request.params.id }),
        requestContextOf(request),
      );
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/customers/:id/auto-top-up',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['credit packs'],
        summary: "A customer's auto top-up rule",
        params: IdParams,
        response: { 200: AutoTopUpBody, ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const rule = await getAutoTopUp(ctx, ws, request.params.id);
      if (!rule) throw notFound('auto top-up of customer', request.params.id);
      return presentAutoTopUp(rule);
    },
  );
}
