import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import { isValidTimeZone, type WindowUnit } from '../../domain/time/zoned.js';
import type { MeterRecord, RateRecord, StoredPricing } from '../../ports/storage.js';
import { createMeterCommand, createRateCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { backfillRate, meterUsage, quoteEvents, USAGE_PAGE } from '../../services/metering.js';
import { getMeter, getRate, listMeters, listRates } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { decodeUsageCursor, encodeUsageCursor, presentPage, readPageRequest } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import { AmountText, errorResponses, Id, IdParams, ListOf, ListQuery, MoneyText, Time } from '../schemas.js';

const JsonPathText = Type.String({
  minLength: 2,
  maxLength: 256,
  description: 'JSONPath such as "$.tokens"',
});
const EventType = Type.String({ minLength: 1, maxLength: 256 });

const CreateMeterBody = Type.Object(
  {
    id: Id,
    event_type: EventType,
    aggregation: Type.Union(['sum', 'count', 'max', 'unique_count'].map((a) => Type.Literal(a))),
    value_property: Type.Optional(Type.Union([JsonPathText, Type.Null()])),
    group_by: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), JsonPathText, { maxProperties: 16 }),
    ),
  },
  { additionalProperties: false },
);
const MeterBody = Type.Object({
  id: Type.String(),
  event_type: Type.String(),
  aggregation: Type.String(),
  value_property: Type.Union([Type.String(), Type.Null()]),
  group_by: Type.Record(Type.String(), Type.String()),
  created_at: Time,
});

const UnitPrice = Type.String({ ...MoneyText, description: 'Credits per unit (decimal string)' });
const CreateRateBody = Type.Object(
  {
    id: Id,
    meter_id: Id,
    filter: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 256 }), { maxProperties: 16 })),
    credit_type: Type.Optional(Id),
    credits_per_unit: Type.Optional(UnitPrice),
    package: Type.Optional(
      Type.Object({ size: MoneyText, credits: MoneyText }, { additionalProperties: false }),
    ),
    tiers: Type.Optional(
      Type.Array(
        Type.Object(
          { up_to: Type.Union([MoneyText, Type.Null()]), credits_per_unit: UnitPrice },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 32 },
      ),
    ),
  },
  { additionalProperties: false },
);
export const RateBody = Type.Object({
  id: Type.String(),
  meter_id: Type.String(),
  filter: Type.Record(Type.String(), Type.String()),
  credit_type: Type.String(),
  credits_per_unit: Type.Optional(Type.String()),
  package: Type.Optional(Type.Object({ size: Type.String(), credits: Type.String() })),
  tiers: Type.Optional(
    Type.Array(
      Type.Object({ up_to: Type.Union([Type.String(), Type.Null()]), credits_per_unit: Type.String() }),
    ),
  ),
  created_at: Time,
});

const UsageQuery = Type.Object(
  {
    customer_id: Type.Optional(Id),
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    window: Type.Optional(Type.Union(['hour', 'day', 'month'].map((w) => Type.Literal(w)))),
    group_by: Type.Optional(Type.String({ maxLength: 1024, description: 'Comma-separated dimension names' })),
    time_zone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone, default UTC' })),
    limit: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,4}$', description: 'Rows per page, 1–1000, default 100' }),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 256, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);
const UsageBody = Type.Object({
  data: Type.Array(
    Type.Object({
      window_start: Time,
      window_end: Time,
      value: AmountText,
      group: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])),
    }),
  ),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

const QuoteBody = Type.Object(
  {
    customer_id: Id,
    events: Type.Array(
      Type.Object(
        { type: EventType, time: Type.Optional(Time), data: Type.Record(Type.String(), Type.Unknown()) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);
const QuoteResult = Type.Object({
  credits: AmountText,
  credit_type: Type.String(),
  lines: Type.Array(Type.Object({ rate_id: Type.String(), quantity: AmountText, credits: AmountText })),
  available: AmountText,
  allowed: Type.Boolean(),
});

const BackfillBody = Type.Object(
  { rate_id: Id, from: Type.Optional(Time), to: Type.Optional(Time) },
  { additionalProperties: false },
);
const BackfillResult = Type.Object({
  rate_id: Type.String(),
  scanned: Type.Integer(),
  burned: Type.Integer(),
  already_burned: Type.Integer(),
});

function presentMeter(m: MeterRecord) {
  return {
    id: m.id,
    event_type: m.eventType,
    aggregation: m.aggregation,
    value_property: m.valueProperty,
    group_by: m.groupBy,
    created_at: formatInstant(m.createdAt),
  };
}

export function presentRate(r: RateRecord) {
  return {
    id: r.id,
    meter_id: r.meterId,
    filter: r.filter,
    credit_type: r.creditType,
    ...r.pricing,
    created_at: formatInstant(r.createdAt),
  };
}

/** Meters, rates, quotes and backfills. */
export function registerMeteringRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateMeterBody> }>(
    '/v1/meters',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['metering'],
        summary: 'Create a meter',
        body: CreateMeterBody,
        response: { 201: MeterBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(
        request,
        reply,
        createMeterCommand({
          workspaceId: request.auth.workspaceId,
          id: request.body.id,
          eventType: request.body.event_type,
          aggregation: request.body.aggregation as MeterRecord['aggregation'],
          valueProperty: request.body.value_property ?? null,
          groupBy: request.body.group_by ?? {},
        }),
        (meter) => ({ status: 201, body: presentMeter(meter) }),
      ),
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/meters',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'List meters',
        querystring: ListQuery,
        response: { 200: ListOf(MeterBody), ...errorResponses },
      },
    },
    async (request) =>
      presentPage(
        await listMeters(ctx, request.auth.workspaceId, readPageRequest(request.query)),
        presentMeter,
      ),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/meters/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'Get a meter',
        params: IdParams,
        response: { 200: MeterBody, ...errorResponses },
      },
    },
    async (request) => {
      return presentMeter(await getMeter(ctx, request.auth.workspaceId, request.params.id));
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof UsageQuery> }>(
    '/v1/meters/:id/usage',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary:
          "A meter's usage by window (aligned in time_zone) and group, paged (limit, cursor → next_cursor)",
        params: IdParams,
        querystring: UsageQuery,
        response: { 200: UsageBody, ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const timeZone = q.time_zone ?? 'UTC';
      if (!isValidTimeZone(timeZone))
        throw invalidRequest('time_zone must be an IANA time zone such as Europe/Berlin', {
          field: 'time_zone',
        });
      const groupBy = q.group_by
        ? q.group_by
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
      const limit = q.limit === undefined ? USAGE_PAGE.defaultLimit : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > USAGE_PAGE.maxLimit) {
        throw invalidRequest(`limit must be an integer from 1 to ${USAGE_PAGE.maxLimit}`, { field: 'limit' });
      }
      const page = await meterUsage(ctx, {
        workspaceId: request.auth.workspaceId,
        meterId: request.params.id,
        customerId: q.customer_id ?? null,
        from: q.from === undefined ? null : readTime(q.from, 'from'),
        to: q.to === undefined ? null : readTime(q.to, 'to'),
        window: (q.window ?? 'day') as WindowUnit,
        groupBy,
        timeZone,
        limit,
        after: decodeUsageCursor(q.cursor),
      });
      return {
        data: page.rows.map((r) => ({
          window_start: formatInstant(r.windowStart),
          window_end: formatInstant(r.windowEnd),
          value: r.value.toString(),
          group: r.group,
        })),
        next_cursor: page.next === null ? null : encodeUsageCursor(page.next),
      };
    },
  );

  app.post<{ Body: Static<typeof CreateRateBody> }>(
    '/v1/rates',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['metering'],
        summary:
          'Create a rate: credits per unit, per package (rounded up per event) or graduated tiers per period',
        body: CreateRateBody,
        response: { 201: RateBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const given = [b.credits_per_unit, b.package, b.tiers].filter((x) => x !== undefined).length;
      if (given !== 1)
        throw invalidRequest('give exactly one of credits_per_unit, package or tiers', { field: 'pricing' });
      const pricing: StoredPricing =
        b.credits_per_unit !== undefined
          ? { credits_per_unit: b.credits_per_unit }
          : b.package !== undefined
            ? { package: b.package }
            : { tiers: b.tiers ?? [] };
      const create = createRateCommand({
        workspaceId: request.auth.workspaceId,
        id: b.id,
        meterId: b.meter_id,
        filter: b.filter ?? {},
        creditType: b.credit_type ?? DEFAULT_CREDIT_TYPE,
        pricing,
      });
      return writer.run(request, reply, create, (rate) => ({ status: 201, body: presentRate(rate) }));
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/rates',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'List rates',
        querystring: ListQuery,
        response: { 200: ListOf(RateBody), ...errorResponses },
      },
    },
    async (request) =>
      presentPage(
        await listRates(ctx, request.auth.workspaceId, readPageRequest(request.query)),
        presentRate,
      ),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/rates/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'Get a rate',
        params: IdParams,
        response: { 200: RateBody, ...errorResponses },
      },
    },
    async (request) => {
      const rate = await getRate(ctx, request.auth.workspaceId, request.params.id);
      return presentRate(rate);
    },
  );

  app.post<{ Body: Static<typeof QuoteBody> }>(
    '/v1/quote',
    {
      config: { scope: 'balance' },
      schema: {
        tags: ['metering'],
        summary: 'What hypothetical events would cost this customer now (tiers included); writes nothing',
        body: QuoteBody,
        response: { 200: QuoteResult, ...errorResponses },
      },
    },
    async (request) => {
      const quote = await quoteEvents(ctx, {
        workspaceId: request.auth.workspaceId,
        customerId: request.body.customer_id,
        events: request.body.events.map((e, i) => ({
          type: e.type,
          time: e.time === undefined ? null : readTime(e.time, `events[${i}].time`),
          data: e.data,
        })),
      });
      return {
        credits: quote.credits.toString(),
        credit_type: quote.creditType,
        lines: quote.lines.map((l) => ({
          rate_id: l.rateId,
          quantity: l.quantity.toString(),
          credits: l.credits.toString(),
        })),
        available: quote.available.toString(),
        allowed: quote.allowed,
      };
    },
  );

  app.post<{ Body: Static<typeof BackfillBody> }>(
    '/v1/backfills',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['metering'],
        summary: 'Apply a rate to stored events it has not burned yet (idempotent)',
        body: BackfillBody,
        response: { 200: BackfillResult, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.runSeparately(request, reply, async () => {
        const result = await backfillRate(ctx, {
          workspaceId: request.auth.workspaceId,
          rateId: request.body.rate_id,
          from: request.body.from === undefined ? null : readTime(request.body.from, 'from'),
          to: request.body.to === undefined ? null : readTime(request.body.to, 'to'),
        });
        return {
          status: 200,
          body: {
            rate_id: request.body.rate_id,
            scanned: result.scanned,
            burned: result.burned,
            already_burned: result.alreadyBurned,
          },
        };
      }),
  );
}
