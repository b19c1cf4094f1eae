import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import {
  listCustomerSummaries,
  listSortedSummaries,
  type SummarySort,
  summaryTotals,
} from '../../services/customer-summaries.js';
import {
  type CustomerForecast,
  estimateAmount,
  forecastCustomer,
  runwaySeconds,
} from '../../services/forecast.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentCustomer } from '../presenters.js';
import {
  CustomerSummariesQuery,
  CustomerSummaryBody,
  errorResponses,
  ForecastBody,
  ForecastQuery,
  IdParams,
  ListOf,
  SummaryTotalsBody,
  SummaryTotalsQuery,
} from '../schemas.js';

/** How the method is described in every answer (docs/forecast.md has the detail and the backtest). */
const METHOD_DESCRIPTION =
  'Daily consumption over the trailing 28 full UTC days; least-squares level with a damped trend (used only when |t| ≥ 3); ' +
  'weekday factors shrunk halfway to 1; interval from 400 simulated futures resampling the residuals (fixed seed); ' +
  'scheduled expiries, allowance resets and auto top-ups applied in burn-down order; holds count as spent.';

/** The answer of `GET /v1/customers/{id}/forecast`, shared with the portal. */
export function presentForecast(f: CustomerForecast): Static<typeof ForecastBody> {
  const r = f.result;
  const iso = (at: number | null) => (at === null ? null : formatInstant(at));
  const dec = (v: number) => estimateAmount(v).toString();
  const forecast = r.status === 'forecast' ? r : null;
  const model = r.status === 'no_recent_usage' ? null : r.model;
  return {
    customer_id: f.key.customerId,
    credit_type: f.key.creditType,
    at: formatInstant(f.now),
    status: r.status,
    available: dec(r.available),
    held: f.held.toString(),
    overage: f.overage.toString(),
    depletion: forecast
      ? {
          expected_at: iso(forecast.expectedAt),
          p10: iso(forecast.p10),
          p50: iso(forecast.p50),
          p90: iso(forecast.p90),
          horizon_end: formatInstant(forecast.horizonEnd),
        }
      : null,
    runway_seconds: runwaySeconds(f),
    model: model
      ? {
          method: model.method,
          description: METHOD_DESCRIPTION,
          window_days: model.windowDays,
          mean_per_day: dec(model.meanPerDay),
          level_per_day: dec(model.levelPerDay),
          trend_per_day: dec(model.trendPerDay),
          weekday_factors: model.weekdayFactors.map((x) => Math.trunc(x * 1000) / 1000),
        }
      : null,
    daily_consumption: f.daily.map((d) => ({ day: formatInstant(d.day), consumed: d.consumed.toString() })),
    balance_band: (forecast?.balancePath ?? []).map((p) => ({
      at: formatInstant(p.at),
      p10: dec(p.p10),
      p50: dec(p.p50),
      p90: dec(p.p90),
    })),
    known_future: {
      holds: f.holds.map((h) => ({
        hold_id: h.id,
        amount: h.amount.toString(),
        expires_at: formatInstant(h.expiresAt),
      })),
      expiries: f.expiries.map((e) => ({
        grant_id: e.grantId,
        at: formatInstant(e.at),
        remaining: e.remaining.toString(),
      })),
      allowance_resets: f.resets.map((s) => ({
        at: formatInstant(s.at),
        amount: dec(s.amount),
        subscription_id: s.subscriptionId,
        expires_at: iso(s.expiresAt),
      })),
      auto_top_up: f.autoTopUp
        ? {
            pack_id: f.autoTopUp.packId,
            quantity: f.autoTopUp.quantity,
            threshold: dec(f.autoTopUp.threshold),
            credits: dec(f.autoTopUp.credits),
            fires_at: (forecast?.projected ?? [])
              .filter((e) => e.kind === 'auto_top_up')
              .map((e) => formatInstant(e.at)),
          }
        : null,
      projected_expiries: (forecast?.projected ?? [])
        .filter((e) => e.kind === 'expiry' && !e.ref.includes('@') && !e.ref.startsWith('auto_top_up'))
        .map((e) => ({ grant_id: e.ref, at: formatInstant(e.at), unused: dec(e.amount) })),
    },
  };
}

/** A sorted summaries cursor (`[sort, order, value, id]`), refused when made for another sort or order. */
function readSortedCursor(
  after: readonly string[] | null,
  sort: string,
  order: string,
): { value: string; id: string } | null {
  if (after === null) return null;
  const [s, o, value, id] = after;
  if (after.length !== 4 || s !== sort || o !== order || !/^-?[0-9]{1,40}$/.test(value ?? '') || !id) {
    throw invalidRequest('cursor is not one this server issued for this sort and order', { field: 'cursor' });
  }
  return { value: value!, id };
}

/** The depletion forecast of a customer's credit type. */
export function registerForecastRoutes(app: FastifyInstance, { ctx }: RouteDeps): void {
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof ForecastQuery> }>(
    '/v1/customers/:id/forecast',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['balances'],
        summary:
          'When the balance is expected to run out (p10/p50/p90), the burn model used and the known future (holds, expiries, allowance resets, auto top-ups)',
        params: IdParams,
        querystring: ForecastQuery,
        response: { 200: ForecastBody, ...errorResponses },
      },
    },
    async (request) => {
      const forecast = await forecastCustomer(ctx, {
        workspaceId: request.auth.workspaceId,
        customerId: request.params.id,
        creditType: request.query.credit_type ?? DEFAULT_CREDIT_TYPE,
      });
      return presentForecast(forecast);
    },
  );

  app.get<{ Querystring: Static<typeof SummaryTotalsQuery> }>(
    '/v1/customer-summaries/totals',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['balances'],
        summary:
          "Totals of one credit type over every customer: outstanding, held, owed, expiring soon and consumption per day (reads every customer's summary)",
        querystring: SummaryTotalsQuery,
        response: { 200: SummaryTotalsBody, ...errorResponses },
      },
    },
    async (request) => {
      const creditType = request.query.credit_type ?? DEFAULT_CREDIT_TYPE;
      const t = await summaryTotals(ctx, request.auth.workspaceId, creditType);
      return {
        credit_type: creditType,
        customers: t.customers,
        available: t.available.toString(),
        held: t.held.toString(),
        overage: t.overage.toString(),
        expiring_soon: t.expiringSoon.toString(),
        daily_consumption: t.daily.map((d) => ({
          day: formatInstant(d.day),
          consumed: d.consumed.toString(),
        })),
      };
    },
  );

  app.get<{ Querystring: Static<typeof CustomerSummariesQuery> }>(
    '/v1/customer-summaries',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['balances'],
        summary:
          'A page of customers (by id) with balance, 7-day burn rate, runway and expiring credits of one credit type',
        querystring: CustomerSummariesQuery,
        response: { 200: ListOf(CustomerSummaryBody), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const creditType = q.credit_type ?? DEFAULT_CREDIT_TYPE;
      const sort = (q.sort ?? 'id') as SummarySort;
      const order = q.order ?? 'asc';
      const search = q.q?.trim() ? q.q.trim() : null;
      const burningOnly = q.burning === 'true';
      const request_ = readPageRequest(q);
      const page =
        sort === 'id' && order === 'asc' && search === null && !burningOnly
          ? await listCustomerSummaries(ctx, request.auth.workspaceId, creditType, request_)
          : await listSortedSummaries(ctx, request.auth.workspaceId, creditType, {
              sort,
              order,
              search,
              burningOnly,
              after: readSortedCursor(request_.after, sort, order),
              limit: request_.limit,
            });
      return presentPage(page, (s) => ({
        customer: presentCustomer(s.customer),
        credit_type: creditType,
        available: s.available.toString(),
        held: s.held.toString(),
        overage: s.overage.toString(),
        burn_per_day: s.burnPerDay.toString(),
        runway_seconds: s.runwaySeconds,
        daily_consumption: s.daily.map((d) => ({
          day: formatInstant(d.day),
          consumed: d.consumed.toString(),
        })),
        expiring_soon: s.expiringSoon.toString(),
        next_expiry:
          s.nextExpiry === null
            ? null
            : { at: formatInstant(s.nextExpiry.at), amount: s.nextExpiry.amount.toString() },
      }));
    },
  );
}
