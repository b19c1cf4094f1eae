import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import { BurndownError, ErrorCode, invalidRequest } from '../../domain/errors.js';
import type { ReversibleDebit } from '../../domain/ledger/credit-ledger.js';
import { formatInstant } from '../../domain/time/instant.js';
import type { EventBurn, ListedEvent } from '../../ports/storage.js';
import { type IncomingEvent, ingestEvents } from '../../services/metering.js';
import { listEvents } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import {
  type EventRejection,
  parseBinaryCloudEvent,
  parseCloudEvent,
  parseNativeEvent,
} from '../event-parsing.js';
import { errorBody } from '../idempotent-write.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import {
  AmountText,
  ErrorBody,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Metadata,
  Nullable,
  Time,
} from '../schemas.js';

/** Most events in one request; more is refused whole with 413. */
export const MAX_EVENTS_PER_BATCH = 10_000;

const IngestResult = Type.Object({
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  unmetered: Type.Integer({ description: 'Accepted events no meter could read (stored; nothing burned)' }),
  rejected: Type.Array(
    Type.Object({
      index: Type.Integer(),
      error: Type.Object({ code: Type.String(), message: Type.String() }),
    }),
  ),
});

const EventStatus = Type.Union([
  Type.Literal('burned'),
  Type.Literal('unmetered'),
  Type.Literal('duplicate'),
]);
const ListEventsQuery = Type.Object(
  {
    ...ListQuery.properties,
    customer_id: Type.Optional(Id),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    status: Type.Optional(EventStatus),
  },
  { additionalProperties: false },
);
const EventItem = Type.Object({
  id: Type.String(),
  source: Nullable(Type.String()),
  type: Type.String(),
  customer_id: Type.String(),
  time: Time,
  received_at: Time,
  data: Metadata,
  status: Type.Union([Type.Literal('burned'), Type.Literal('unmetered')], {
    description:
      'burned: a meter read it (its burns may be empty when no rate priced it); unmetered: no meter could',
  }),
  duplicates: Type.Integer({ description: 'How many times its id was delivered again' }),
  reversed_at: Nullable(Time),
  burns: Type.Array(
    Type.Object({
      rate_id: Type.String(),
      quantity: AmountText,
      credits: AmountText,
      debit_id: Nullable(Type.String()),
      drawdowns: Type.Array(Type.Object({ grant_id: Type.String(), amount: AmountText })),
      overage: AmountText,
      reversed: AmountText,
    }),
  ),
});

/** Every event rejected: the error envelope (`invalid_batch`) together with the ingest counts. */
const IngestRefused = Type.Intersect([ErrorBody, IngestResult]);

/**
 * `POST /v1/events`: native events (one or an array) or CloudEvents 1.0 (structured, batched or
 * binary mode). Each event is validated on its own; valid events are kept even when others are
 * rejected. The answer comes after every accepted event is durably stored and burned.
 */
export function registerEventRoutes(app: FastifyInstance, deps: RouteDeps, bodyLimit: number): void {
  const { ctx, writer } = deps;
  registerEventListRoute(app, deps);
  app.post(
    '/v1/events',
    {
      config: { scope: 'write' },
      bodyLimit,
      schema: {
        tags: ['metering'],
        summary: 'Ingest usage events (native JSON, or CloudEvents structured/batched/binary)',
        description:
          'Body: one event `{"id","type","customer_id","time"?,"data"}` (time defaults to when the batch arrived) or an array of up to 10,000; or a CloudEvent ' +
          '(`application/cloudevents+json`), a batch (`application/cloudevents-batch+json`), or binary mode (`ce-*` headers, ' +
          'body = data). An event is identified by its id (CloudEvents: source and id) within the workspace; re-sending it ' +
          'is a duplicate and changes nothing. 202 when at least one event was accepted or was a duplicate; when every ' +
          'event was rejected, 400 `invalid_batch` with the same counts.',
        response: { ...errorResponses, 202: IngestResult, 400: IngestRefused },
      },
    },
    async (request, reply) =>
      writer.runSeparately(request, reply, async () => {
        const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const now = ctx.clock.now();
        let parsed: (IncomingEvent | EventRejection)[];
        const body = request.body;
        if (contentType === 'application/cloudevents-batch+json') {
          if (!Array.isArray(body)) throw invalidRequest('a CloudEvents batch must be a JSON array');
          checkSize(body.length);
          parsed = body.map((raw) => parseCloudEvent(raw, now));
        } else if (contentType === 'application/cloudevents+json') {
          parsed = [parseCloudEvent(body, now)];
        } else if (request.headers['ce-specversion'] !== undefined) {
          parsed = [parseBinaryCloudEvent(request.headers, body, now)];
        } else if (Array.isArray(body)) {
          checkSize(body.length);
          parsed = body.map((raw) => parseNativeEvent(raw, now));
        } else if (body !== undefined) {
          parsed = [parseNativeEvent(body, now)];
        } else {
          throw invalidRequest('the body must be an event or an array of events');
        }
        const valid: IncomingEvent[] = [];
        const validIndex: number[] = [];
        const rejected: { index: number; error: EventRejection }[] = [];
        parsed.forEach((p, index) => {
          if ('code' in p) rejected.push({ index, error: p });
          else {
            valid.push(p);
            validIndex.push(index);
          }
        });
        const outcomes = await ingestEvents(ctx, request.auth.workspaceId, valid, (error) =>
          request.log.error({ err: error }, 'a customer group of an event batch failed and was rolled back'),
        );
        let accepted = 0;
        let duplicates = 0;
        let unmetered = 0;
        outcomes.forEach((outcome, i) => {
          if (outcome === 'accepted') accepted += 1;
          else if (outcome === 'unmetered') {
            accepted += 1;
            unmetered += 1;
          } else if (outcome === 'duplicate') duplicates += 1;
          else rejected.push({ index: validIndex[i]!, error: rejectionOf(outcome, valid[i]!) });
        });
        rejected.sort((a, b) => a.index - b.index);
        const result = { accepted, duplicates, unmetered, rejected };
        if (accepted + duplicates > 0) return { status: 202, body: result };
        // Nothing stored: a client that checks only the status still learns that usage was dropped.
        // If a server error is among the causes, say so (5xx: retry as is; events are deduplicated).
        const serverFault = rejected.some((r) => r.error.code === 'internal_error');
        const error = serverFault
          ? new BurndownError(ErrorCode.internalError, 'no event of the batch was stored; send it again', {
              rejected: rejected.length,
            })
          : new BurndownError(ErrorCode.invalidBatch, 'every event of the batch was rejected', {
              rejected: rejected.length,
            });
        return { status: serverFault ? 500 : 400, body: { ...errorBody(error), ...result } };
      }),
  );
}

/** `GET /v1/events`: stored events with what each burned (per rate: credits, debit, drawdowns). */
function registerEventListRoute(app: FastifyInstance, { ctx }: RouteDeps): void {
  app.get<{ Querystring: Static<typeof ListEventsQuery> }>(
    '/v1/events',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'List stored events with their burns (filters: customer, type, time range, status)',
        description:
          'Oldest first by event time. status=burned: a meter read the event; unmetered: no meter could read it ' +
          '(as the meters were when it arrived); duplicate: its id was delivered again at least once.',
        querystring: ListEventsQuery,
        response: { 200: ListOf(EventItem), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const workspaceId = request.auth.workspaceId;
      const from = q.from === undefined ? null : readTime(q.from, 'from');
      const to = q.to === undefined ? null : readTime(q.to, 'to');
      const { page, burnsByEvent, debits } = await listEvents(
        ctx,
        {
          workspaceId,
          customerId: q.customer_id ?? null,
          type: q.type ?? null,
          from,
          to,
          status: q.status ?? null,
        },
        readPageRequest(q),
      );
      return presentPage(page, (event) =>
        presentEvent(event, burnsByEvent.get(event.eventKey) ?? [], debits),
      );
    },
  );
}

function presentEvent(
  event: ListedEvent,
  burns: readonly EventBurn[],
  debits: ReadonlyMap<string, ReversibleDebit>,
) {
  return {
    id: event.id,
    source: event.source,
    type: event.type,
    customer_id: event.customerId,
    time: formatInstant(event.time),
    received_at: formatInstant(event.receivedAt),
    data: event.data as Record<string, unknown>,
    status: event.unmetered ? ('unmetered' as const) : ('burned' as const),
    duplicates: event.duplicates,
    reversed_at: event.reversedAt === null ? null : formatInstant(event.reversedAt),
    burns: [...burns]
      .sort((a, b) => (a.rateId < b.rateId ? -1 : a.rateId > b.rateId ? 1 : 0))
      .map((burn) => {
        const debit = burn.debitId === null ? undefined : debits.get(burn.debitId);
        return {
          rate_id: burn.rateId,
          quantity: burn.quantity.toString(),
          credits: burn.credits.toString(),
          debit_id: burn.debitId,
          drawdowns: (debit?.debit.drawdowns ?? []).map((d) => ({
            grant_id: d.grantId,
            amount: d.amount.toString(),
          })),
          overage: (debit?.debit.overage ?? Amount.ZERO).toString(),
          reversed: Amount.sum((debit?.reversed.history ?? []).map((r) => r.amount)).toString(),
        };
      }),
  };
}

function checkSize(count: number): void {
  if (count > MAX_EVENTS_PER_BATCH) {
    throw new BurndownError(
      ErrorCode.payloadTooLarge,
      `a batch holds at most ${MAX_EVENTS_PER_BATCH} events`,
      {
        count,
        max: MAX_EVENTS_PER_BATCH,
      },
    );
  }
  if (count === 0) throw invalidRequest('the batch is empty');
}

function rejectionOf(
  outcome: 'customer_not_found' | 'negative_usage' | 'value_out_of_range' | 'failed',
  event: IncomingEvent,
): EventRejection {
  switch (outcome) {
    case 'customer_not_found':
      return { code: 'customer_not_found', message: `customer "${event.customerId}" not found` };
    case 'negative_usage':
      return {
        code: 'invalid_event',
        message: 'a meter of this event type reads a negative value from its data',
      };
    case 'value_out_of_range':
      return {
        code: 'value_out_of_range',
        message:
          'a usage value or a price of this event is past the value range (at most 20 integer digits), ' +
          "or its burn would carry one of its customer's running totals past 10^30",
      };
    case 'failed':
      return {
        code: 'internal_error',
        message: 'this event was not stored because of a server error; send it again',
      };
  }
}
