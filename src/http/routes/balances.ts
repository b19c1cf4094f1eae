import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { formatInstant } from '../../domain/time/instant.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { readBalance, readBalanceSeries } from '../../services/ledger.js';
import { listEntries } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentBalance, presentEntry } from '../presenters.js';
import { readTime } from '../route-helpers.js';
import {
  BalanceBody,
  BalanceQuery,
  BalanceSeriesBody,
  BalanceSeriesQuery,
  EntryBody,
  errorResponses,
  IdParams,
  LedgerQuery,
  ListOf,
} from '../schemas.js';

/** Balances now or at a past instant, and the ledger entries behind them. */
export function registerBalanceRoutes(app: FastifyInstance, { ctx }: RouteDeps): void {
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof BalanceQuery> }>(
    '/v1/customers/:id/balance',
    {
      config: { scope: 'balance' },
      schema: {
        tags: ['balances'],
        summary: 'Balance now, or as it was at a past instant (`at`)',
        params: IdParams,
        querystring: BalanceQuery,
        response: { 200: BalanceBody, ...errorResponses },
      },
    },
    async (request) => {
      const at = request.query.at === undefined ? null : readTime(request.query.at, 'at');
      const balance = await readBalance(ctx, {
        key: {
          workspaceId: request.auth.workspaceId,
          customerId: request.params.id,
          creditType: request.query.credit_type ?? DEFAULT_CREDIT_TYPE,
        },
        at,
        featureId: request.query.feature_id ?? null,
      });
      return presentBalance(balance);
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof BalanceSeriesQuery> }>(
    '/v1/customers/:id/balance-series',
    {
      config: { scope: 'balance' },
      schema: {
        tags: ['balances'],
        summary:
          'Balances at evenly spaced past instants (a burn-down chart): from, from + step, … up to `to` (default now), at most 1,000 points',
        params: IdParams,
        querystring: BalanceSeriesQuery,
        response: { 200: BalanceSeriesBody, ...errorResponses },
      },
    },
    async (request) => {
      const from = readTime(request.query.from, 'from');
      const to = request.query.to === undefined ? ctx.clock.now() : readTime(request.query.to, 'to');
      const creditType = request.query.credit_type ?? DEFAULT_CREDIT_TYPE;
      const series = await readBalanceSeries(ctx, {
        key: { workspaceId: request.auth.workspaceId, customerId: request.params.id, creditType },
        from,
        to,
        step: request.query.step,
      });
      return {
        customer_id: request.params.id,
        credit_type: creditType,
        step: request.query.step,
        points: series.map((b) => ({
          at: formatInstant(b.at),
          available: b.available.toString(),
          held: b.held.toString(),
          overage: b.overage.toString(),
        })),
      };
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LedgerQuery> }>(
    '/v1/customers/:id/ledger',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['balances'],
        summary:
          'Ledger entries, oldest first (by effective instant, then recording order), or newest first with order=desc',
        params: IdParams,
        querystring: LedgerQuery,
        response: { 200: ListOf(EntryBody), ...errorResponses },
      },
    },
    async (request) => {
      const { query } = request;
      const pageRequest = readPageRequest(query);
      const from = query.from === undefined ? null : readTime(query.from, 'from');
      const to = query.to === undefined ? null : readTime(query.to, 'to');
      const key = {
        workspaceId: request.auth.workspaceId,
        customerId: request.params.id,
        creditType: query.credit_type ?? DEFAULT_CREDIT_TYPE,
      };
      const order = query.order ?? 'asc';
      const page = await listEntries(ctx, key, { from, to, order }, pageRequest);
      return presentPage(page, presentEntry);
    },
  );
}
