import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  cancelSubscriptionCommand,
  changeSubscriptionCommand,
  startSubscriptionCommand,
} from '../../services/commands.js';
import { getSubscription, listSubscriptions } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentSubscription } from '../plan-presenters.js';
import {
  CancelSubscriptionBody,
  ChangeSubscriptionBody,
  CreateSubscriptionBody,
  SubscriptionBody,
  SubscriptionIdParams,
} from '../plan-schemas.js';
import { readTime } from '../route-helpers.js';
import { errorResponses, IdParams, ListOf, ListQuery } from '../schemas.js';

/** Subscriptions: a customer on a plan version, with allowances that reset on anniversaries. */
export function registerSubscriptionRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreateSubscriptionBody> }>(
    '/v1/customers/:id/subscriptions',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['subscriptions'],
        summary: 'Start a subscription; its first allowance grants exist when this returns',
        params: IdParams,
        body: CreateSubscriptionBody,
        response: { 201: SubscriptionBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const startAt = body.start_at === undefined ? null : readTime(body.start_at, 'start_at');
      const ws = request.auth.workspaceId;
      const start = startSubscriptionCommand(ctx, {
        workspaceId: ws,
        customerId: request.params.id,
        planId: body.plan_id,
        planVersion: body.plan_version ?? null,
        startAt,
        allowMultiple: body.allow_multiple === true,
      });
      return writer.run(request, reply, start, ({ subscription, plan }, now) => ({
        status: 201,
        body: presentSubscription(subscription, plan, now),
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof ListQuery> }>(
    '/v1/customers/:id/subscriptions',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['subscriptions'],
        summary: "A customer's subscriptions, active and ended, by id",
        params: IdParams,
        querystring: ListQuery,
        response: { 200: ListOf(SubscriptionBody), ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const found = await listSubscriptions(ctx, ws, request.params.id, readPageRequest(request.query));
      return presentPage(found.page, ({ subscription, plan }) =>
        presentSubscription(subscription, plan, found.now),
      );
    },
  );

  app.get<{ Params: Static<typeof SubscriptionIdParams> }>(
    '/v1/subscriptions/:subscription_id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['subscriptions'],
        summary: 'Get a subscription',
        params: SubscriptionIdParams,
        response: { 200: SubscriptionBody, ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const id = request.params.subscription_id;
      const { subscription, plan, now } = await getSubscription(ctx, ws, id);
      return presentSubscription(subscription, plan, now);
    },
  );

  app.post<{ Params: Static<typeof SubscriptionIdParams>; Body: Static<typeof CancelSubscriptionBody> }>(
    '/v1/subscriptions/:subscription_id/cancel',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['subscriptions'],
        summary: 'Cancel now (unused allowance credits leave) or at the end of the billing period',
        params: SubscriptionIdParams,
        body: CancelSubscriptionBody,
        response: { 200: SubscriptionBody, ...errorResponses },
      },
      // No body means the defaults (cancel now); a JSON `null` body is still refused.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const ws = request.auth.workspaceId;
      const id = request.params.subscription_id;
      const cancel = await cancelSubscriptionCommand(ctx, {
        workspaceId: ws,
        subscriptionId: id,
        atPeriodEnd: request.body?.at_period_end ?? false,
      });
      return writer.run(request, reply, cancel, ({ subscription, plan }, now) => ({
        status: 200,
        body: presentSubscription(subscription, plan, now),
      }));
    },
  );

  app.post<{ Params: Static<typeof SubscriptionIdParams>; Body: Static<typeof ChangeSubscriptionBody> }>(
    '/v1/subscriptions/:subscription_id/change',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['subscriptions'],
        summary: 'Change plan: upgrades now with the allowance increase prorated, downgrades at period end',
        params: SubscriptionIdParams,
        body: ChangeSubscriptionBody,
        response: { 200: SubscriptionBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const ws = request.auth.workspaceId;
      const id = request.params.subscription_id;
      const body = request.body;
      const change = await changeSubscriptionCommand(ctx, {
        workspaceId: ws,
        subscriptionId: id,
        planId: body.plan_id,
        planVersion: body.plan_version ?? null,
        when: body.at ?? null,
        allowMultiple: body.allow_multiple === true,
      });
      return writer.run(request, reply, change, ({ subscription, plan }, now) => ({
        status: 200,
        body: presentSubscription(subscription, plan, now),
      }));
    },
  );
}
