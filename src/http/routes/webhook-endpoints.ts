import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import type {
  AttemptOutcome,
  RecentAttempt,
  StoredOutboxRecord,
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpoint,
} from '../../ports/storage.js';
import { execute } from '../../services/unit-of-work.js';
import {
  checkEndpointUrl,
  createEndpointCommand,
  deleteEndpointCommand,
  type EndpointPatch,
  eventDeliveryLog,
  getEndpoint,
  listEndpointAttempts,
  listEndpoints,
  listRecentAttempts,
  type ReplayRequest,
  replayCommand,
  rotateSecretCommand,
  updateEndpointCommand,
} from '../../services/webhook-endpoints.js';
import type { RouteDeps } from '../app.js';
import { requestContextOf } from '../idempotent-write.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import { errorResponses, ListOf, ListQuery, OpaqueId } from '../schemas.js';
import { WEBHOOK_EVENT_TYPES } from '../webhook-events/index.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const EventTypes = Type.Union([Type.Array(Type.String({ maxLength: 128 }), { maxItems: 100 }), Type.Null()], {
  description: 'Event types to receive; null or absent: every type',
});
const CreateEndpointBody = Type.Object(
  {
    url: Type.String({ maxLength: 8192, description: 'http(s) URL, at most 2048 characters' }),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    enabled: Type.Optional(Type.Boolean({ description: 'Default true' })),
  },
  { additionalProperties: false },
);
const UpdateEndpointBody = Type.Object(
  {
    url: Type.Optional(Type.String({ maxLength: 8192 })),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const EndpointBody = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Nullable(Type.Array(Type.String())),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(
    Type.Union([Type.Literal('manual'), Type.Literal('gone'), Type.Literal('failing')], {
      description: 'manual: by a caller; gone: the receiver answered 410; failing: failed for too long',
    }),
  ),
  previous_secret_expires_at: Nullable(
    Type.String({ description: 'Until then the secret before the last rotation signs too' }),
  ),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const EndpointWithSecretBody = Type.Object({
  ...EndpointBody.properties,
  secret: Nullable(
    Type.String({ description: 'The signing secret, whsec_…: shown only in this answer (null in a replay)' }),
  ),
});
const AttemptBody = Type.Object({
  id: Type.String(),
  delivery_id: Type.String(),
  endpoint_id: Type.String(),
  event_id: Type.String(),
  attempt: Type.Integer(),
  attempted_at: Type.String(),
  status_code: Nullable(Type.Integer()),
  latency_ms: Type.Integer(),
  response_excerpt: Nullable(Type.String({ description: 'The first 1 kB of the answer' })),
  error: Nullable(Type.String()),
  outcome: Type.Union([
    Type.Literal('delivered'),
    Type.Literal('retry'),
    Type.Literal('failed'),
    Type.Literal('gone'),
  ]),
});
const ATTEMPT_OUTCOMES: readonly AttemptOutcome[] = ['delivered', 'retry', 'failed', 'gone'];
const RecentAttemptBody = Type.Object({
  ...AttemptBody.properties,
  event_type: Nullable(Type.String()),
  delivery_state: Nullable(
    Type.Union(
      [Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed'), Type.Literal('canceled')],
      { description: 'Where the delivery stands now (a retried one may have been delivered since)' },
    ),
  ),
});
const RecentAttemptsQuery = Type.Object(
  {
    ...ListQuery.properties,
    endpoint_id: Type.Optional(OpaqueId),
    outcome: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'Comma-separated outcomes (delivered, retry, failed, gone); left out: all',
      }),
    ),
  },
  { additionalProperties: false },
);
const DeliveryBody = Type.Object({
  id: Type.String(),
  endpoint_id: Type.String(),
  state: Type.Union([
    Type.Literal('pending'),
    Type.Literal('delivered'),
    Type.Literal('failed'),
    Type.Literal('canceled'),
  ]),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.String()),
  replay: Type.Boolean(),
  created_at: Type.String(),
});
const WebhookEventBody = Type.Object({
  id: Type.String(),
  type: Type.String(),
  customer_id: Nullable(Type.String()),
  occurred_at: Type.String(),
  data: Type.Unknown(),
  deliveries: Type.Array(DeliveryBody),
});
const ReplayBody = Type.Union([
  Type.Object({ event_id: OpaqueId }, { additionalProperties: false }),
  Type.Object(
    {
      from: Type.String({ description: 'RFC 3339, inclusive' }),
      to: Type.String({ description: 'RFC 3339, exclusive' }),
    },
    { additionalProperties: false },
  ),
]);
const EndpointParams = Type.Object({ id: OpaqueId });
const EventParams = Type.Object({ event_id: OpaqueId });

function presentEndpoint(e: WebhookEndpoint) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    event_types: e.eventTypes === null ? null : [...e.eventTypes],
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    previous_secret_expires_at: e.previousSecretUntil === null ? null : formatInstant(e.previousSecretUntil),
    created_at: formatInstant(e.createdAt),
    updated_at: formatInstant(e.updatedAt),
  };
}

function presentAttempt(a: WebhookAttempt) {
  return {
    id: a.id,
    delivery_id: a.deliveryId,
    endpoint_id: a.endpointId,
    event_id: a.eventId,
    attempt: a.attempt,
    attempted_at: formatInstant(a.attemptedAt),
    status_code: a.statusCode,
    latency_ms: a.latencyMs,
    response_excerpt: a.responseExcerpt,
    error: a.error,
    outcome: a.outcome,
  };
}

function presentRecentAttempt(a: RecentAttempt) {
  return { ...presentAttempt(a), event_type: a.eventType, delivery_state: a.deliveryState };
}

/** `outcome=failed,gone` → the outcomes; an unknown one is a 400. */
function readOutcomes(text: string | undefined): readonly AttemptOutcome[] | null {
  if (text === undefined || text.trim() === '') return null;
  const outcomes = [...new Set(text.split(',').map((s) => s.trim()))];
  for (const o of outcomes) {
    if (!ATTEMPT_OUTCOMES.includes(o as AttemptOutcome)) {
      throw invalidRequest(`outcome: unknown outcome ${o}`, { field: 'outcome', allowed: ATTEMPT_OUTCOMES });
    }
  }
  return outcomes as AttemptOutcome[];
}

function presentDelivery(d: WebhookDelivery) {
  return {
    id: d.id,
    endpoint_id: d.endpointId,
    state: d.state,
    attempts: d.attempts,
    next_attempt_at: d.state === 'pending' ? formatInstant(d.nextAttemptAt) : null,
    replay: d.replay,
    created_at: formatInstant(d.createdAt),
  };
}

function presentEvent(e: StoredOutboxRecord, deliveries: readonly WebhookDelivery[]) {
  return {
    id: e.id,
    type: e.type,
    customer_id: e.customerId,
    occurred_at: formatInstant(e.occurredAt),
    data: e.data,
    deliveries: deliveries.map(presentDelivery),
  };
}

/** Subscribed types must be types Burndown emits (a typo would otherwise receive nothing, silently). */
function readEventTypes(types: readonly string[] | null | undefined): readonly string[] | null | undefined {
  if (types === undefined || types === null) return types;
  if (types.length === 0)
    throw invalidRequest('event_types must name at least one type, or be null for all', {
      field: 'event_types',
    });
  for (const type of types) {
    if (!WEBHOOK_EVENT_TYPES.includes(type)) {
      throw invalidRequest(`event_types: unknown event type ${type}`, {
        field: 'event_types',
        allowed: WEBHOOK_EVENT_TYPES,
      });
    }
  }
  return [...new Set(types)];
}

/**
 * Webhook endpoints (admin only): create (the signing secret is shown once), list, get, update,
 * delete, disable/enable, rotate the secret; the delivery log per endpoint and per event; replay.
 */
export function registerWebhookEndpointRoutes(
  app: FastifyInstance,
  { ctx, writer, webhooks }: RouteDeps,
): void {
  const tags = ['webhooks'];
  const empty = async (request: { body: unknown }) => {
    request.body ??= {};
  };

  app.post<{ Body: Static<typeof CreateEndpointBody> }>(
    '/v1/webhook-endpoints',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'Create a webhook endpoint; its signing secret is returned only in this answer',
        body: CreateEndpointBody,
        response: { 201: EndpointWithSecretBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const eventTypes = readEventTypes(request.body.event_types) ?? null;
      const url = await checkEndpointUrl(webhooks, request.body.url);
      const create = createEndpointCommand(ctx, request.auth.workspaceId, {
        url,
        eventTypes,
        description: request.body.description ?? null,
        enabled: request.body.enabled ?? true,
      });
      // The secret is stored (it signs), but a replay of the creation does not show it again.
      return writer.run(request, reply, create, ({ endpoint, secret }) => ({
        status: 201,
        body: { ...presentEndpoint(endpoint), secret },
        replayBody: { ...presentEndpoint(endpoint), secret: null },
      }));
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/webhook-endpoints',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'List webhook endpoints (never their secrets)',
        querystring: ListQuery,
        response: { 200: ListOf(EndpointBody), ...errorResponses },
      },
    },
    async (request) => {
      return presentPage(
        await listEndpoints(ctx, request.auth.workspaceId, readPageRequest(request.query)),
        presentEndpoint,
      );
    },
  );

  app.get<{ Params: Static<typeof EndpointParams> }>(
    '/v1/webhook-endpoints/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'Get a webhook endpoint',
        params: EndpointParams,
        response: { 200: EndpointBody, ...errorResponses },
      },
    },
    async (request) => presentEndpoint(await getEndpoint(ctx, request.auth.workspaceId, request.params.id)),
  );

  app.patch<{ Params: Static<typeof EndpointParams>; Body: Static<typeof UpdateEndpointBody> }>(
    '/v1/webhook-endpoints/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'Update a webhook endpoint (URL, event types, description, enabled)',
        params: EndpointParams,
        body: UpdateEndpointBody,
        response: { 200: EndpointBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const eventTypes = readEventTypes(body.event_types);
      const patch: EndpointPatch = {
        ...(body.url === undefined ? {} : { url: await checkEndpointUrl(webhooks, body.url) }),
        ...(eventTypes === undefined ? {} : { eventTypes }),
        ...(body.description === undefined ? {} : { description: body.description }),
        ...(body.enabled === undefined ? {} : { enabled: body.enabled }),
      };
      return writer.run(
        request,
        reply,
        updateEndpointCommand(request.auth.workspaceId, request.params.id, patch),
        (endpoint) => ({ status: 200, body: presentEndpoint(endpoint) }),
      );
    },
  );

  app.delete<{ Params: Static<typeof EndpointParams> }>(
    '/v1/webhook-endpoints/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'Delete a webhook endpoint: nothing more is sent to it, its pending deliveries are canceled',
        params: EndpointParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await execute(
        ctx,
        deleteEndpointCommand(request.auth.workspaceId, request.params.id),
        requestContextOf(request),
      );
      return reply.code(204).send();
    },
  );

  for (const [action, enabled] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    app.post<{ Params: Static<typeof EndpointParams> }>(
      `/v1/webhook-endpoints/:id/${action}`,
      {
        config: { scope: 'admin' },
        preValidation: empty,
        schema: {
          tags,
          summary: enabled
            ? 'Enable a webhook endpoint: its paused deliveries resume, new events fan out to it again'
            : 'Disable a webhook endpoint: nothing is sent to it until it is enabled (its deliveries wait)',
          params: EndpointParams,
          body: Type.Object({}, { additionalProperties: false }),
          response: { 200: EndpointBody, ...errorResponses },
        },
      },
      async (request, reply) =>
        writer.run(
          request,
          reply,
          updateEndpointCommand(request.auth.workspaceId, request.params.id, { enabled }),
          (endpoint) => ({ status: 200, body: presentEndpoint(endpoint) }),
        ),
    );
  }

  app.post<{ Params: Static<typeof EndpointParams> }>(
    '/v1/webhook-endpoints/:id/rotate-secret',
    {
      config: { scope: 'admin' },
      preValidation: empty,
      schema: {
        tags,
        summary:
          'Replace the signing secret (shown only in this answer); the old one keeps signing too until previous_secret_expires_at',
        params: EndpointParams,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: EndpointWithSecretBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(
        request,
        reply,
        rotateSecretCommand(request.auth.workspaceId, request.params.id, webhooks.secretOverlapMs),
        ({ endpoint, secret }) => ({
          status: 200,
          body: { ...presentEndpoint(endpoint), secret },
          replayBody: { ...presentEndpoint(endpoint), secret: null },
        }),
      ),
  );

  app.get<{ Params: Static<typeof EndpointParams>; Querystring: Static<typeof ListQuery> }>(
    '/v1/webhook-endpoints/:id/attempts',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary:
          "An endpoint's delivery log: every attempt (status, latency, answer excerpt, error), oldest first",
        params: EndpointParams,
        querystring: ListQuery,
        response: { 200: ListOf(AttemptBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listEndpointAttempts(
        ctx,
        request.auth.workspaceId,
        request.params.id,
        readPageRequest(request.query),
      );
      return presentPage(page, presentAttempt);
    },
  );

  app.get<{ Querystring: Static<typeof RecentAttemptsQuery> }>(
    '/v1/webhook-attempts',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary:
          'Recent delivery attempts across every endpoint (or one), newest first, filterable by outcome: the operator deliveries view',
        querystring: RecentAttemptsQuery,
        response: { 200: ListOf(RecentAttemptBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listRecentAttempts(ctx, request.auth.workspaceId, {
        endpointId: request.query.endpoint_id ?? null,
        outcomes: readOutcomes(request.query.outcome),
        page: readPageRequest(request.query),
      });
      return presentPage(page, presentRecentAttempt);
    },
  );

  app.post<{ Params: Static<typeof EndpointParams>; Body: Static<typeof ReplayBody> }>(
    '/v1/webhook-endpoints/:id/replay',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary:
          'Send events again to this endpoint: one event, or every subscribed event of a time range (delivered ones included)',
        params: EndpointParams,
        body: ReplayBody,
        response: { 202: Type.Object({ queued: Type.Integer() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const replay: ReplayRequest =
        'event_id' in body
          ? { eventId: body.event_id }
          : { from: readTime(body.from, 'from'), to: readTime(body.to, 'to') };
      return writer.run(
        request,
        reply,
        replayCommand(ctx, request.auth.workspaceId, request.params.id, replay),
        (queued) => ({ status: 202, body: queued }),
      );
    },
  );

  app.get<{ Params: Static<typeof EventParams> }>(
    '/v1/webhook-events/:event_id',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'A webhook event as sent (type, time, data) with the state of its delivery to each endpoint',
        params: EventParams,
        response: { 200: WebhookEventBody, ...errorResponses },
      },
    },
    async (request) => {
      const log = await eventDeliveryLog(ctx, request.auth.workspaceId, request.params.event_id, {
        after: null,
        limit: 1,
      });
      return presentEvent(log.event, log.deliveries);
    },
  );

  app.get<{ Params: Static<typeof EventParams>; Querystring: Static<typeof ListQuery> }>(
    '/v1/webhook-events/:event_id/attempts',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: "An event's delivery log: every attempt to every endpoint, oldest first",
        params: EventParams,
        querystring: ListQuery,
        response: { 200: ListOf(AttemptBody), ...errorResponses },
      },
    },
    async (request) => {
      const log = await eventDeliveryLog(
        ctx,
        request.auth.workspaceId,
        request.params.event_id,
        readPageRequest(request.query),
      );
      return presentPage(log.attempts, presentAttempt);
    },
  );
}
