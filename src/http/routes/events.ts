import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { BurndownError, ErrorCode, invalidRequest } from '../../domain/errors.js';
import { type IncomingEvent, ingestEvents } from '../../services/metering.js';
import type { RouteDeps } from '../app.js';
import {
  type EventRejection,
  parseBinaryCloudEvent,
  parseCloudEvent,
  parseNativeEvent,
} from '../event-parsing.js';
import { errorResponses } from '../schemas.js';

/** Most events in one request; more is refused whole with 413. */
export const MAX_EVENTS_PER_BATCH = 10_000;

const IngestResult = Type.Object({
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  rejected: Type.Array(
    Type.Object({
      index: Type.Integer(),
      error: Type.Object({ code: Type.String(), message: Type.String() }),
    }),
  ),
});

/**
 * `POST /v1/events`: native events (one or an array) or CloudEvents 1.0 (structured, batched or
 * binary mode). Each event is validated on its own; valid events are kept even when others are
 * rejected. The answer comes after every accepted event is durably stored and burned.
 */
export function registerEventRoutes(
  app: FastifyInstance,
  { ctx, writer }: RouteDeps,
  bodyLimit: number,
): void {
  app.post(
    '/v1/events',
    {
      config: { scope: 'write' },
      bodyLimit,
      schema: {
        tags: ['metering'],
        summary: 'Ingest usage events (native JSON, or CloudEvents structured/batched/binary)',
        description:
          'Body: one event `{"id","type","customer_id","time","data"}` or an array of up to 10,000; or a CloudEvent ' +
          '(`application/cloudevents+json`), a batch (`application/cloudevents-batch+json`), or binary mode (`ce-*` headers, ' +
          'body = data). An event is identified by its id (CloudEvents: source and id) within the workspace; re-sending it ' +
          'is a duplicate and changes nothing.',
        response: { 202: IngestResult, ...errorResponses },
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
          parsed = body.map(parseNativeEvent);
        } else if (body !== undefined) {
          parsed = [parseNativeEvent(body)];
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
        outcomes.forEach((outcome, i) => {
          if (outcome === 'accepted') accepted += 1;
          else if (outcome === 'duplicate') duplicates += 1;
          else rejected.push({ index: validIndex[i]!, error: rejectionOf(outcome, valid[i]!) });
        });
        rejected.sort((a, b) => a.index - b.index);
        return { status: 202, body: { accepted, duplicates, rejected } };
      }),
  );
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
