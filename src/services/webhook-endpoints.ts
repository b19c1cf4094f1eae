import { randomBytes } from 'node:crypto';
import { invalidRequest, notFound } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import { checkWebhookUrlShape, endpointWants } from '../domain/webhooks/envelope.js';
import type {
  AttemptOutcome,
  Page,
  PageRequest,
  RecentAttempt,
  StoredOutboxRecord,
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpoint,
  WriteOperations,
} from '../ports/storage.js';
import type { WebhookTransport } from '../ports/webhooks.js';
import type { AuditMessage } from './audit.js';
import type { ServiceContext } from './context.js';
import { audited, auditedChange, type WriteCommand } from './unit-of-work.js';

/**
 * How long the secret before a rotation keeps signing (both signatures travel in
 * `webhook-signature`), so receivers can switch to the new secret without dropping deliveries.
 */
export const DEFAULT_SECRET_OVERLAP_MS = 24 * 3_600_000;

/** Most events one range replay queues (a wider range is refused: replay it in parts). */
export const MAX_REPLAY_EVENTS = 10_000;

/** What the endpoint services need beyond the context: where URLs may point, and the rotation overlap. */
export interface WebhookSettings {
  readonly transport: WebhookTransport;
  /** Default {@link DEFAULT_SECRET_OVERLAP_MS}. */
  readonly secretOverlapMs: number;
}

/** A new signing secret, `whsec_` + base64 of 32 random bytes (the form Standard Webhooks libraries read). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The serialisation key of one endpoint: its changes, and the dispatcher's updates of it, are ordered. */
export function endpointLockKey(workspaceId: string, endpointId: string): string {
  return `${workspaceId}/#webhook-endpoint/${endpointId}`;
}

/**
 * Checks an endpoint URL before it is stored: its shape (http(s), at most 2048 characters), then
 * where its host resolves (no private, loopback or link-local address unless allowed). Runs before
 * the write, outside any lock, because it waits for DNS.
 */
export async function checkEndpointUrl(settings: WebhookSettings, url: string): Promise<string> {
  const parsed = checkWebhookUrlShape(url);
  await settings.transport.checkDestination(parsed.href);
  return url;
}

/** A new endpoint's fields. */
export interface EndpointInput {
  readonly url: string;
  /** Event types to receive; null: every type. */
  readonly eventTypes: readonly string[] | null;
  readonly description: string | null;
  readonly enabled: boolean;
}

/** An endpoint with the secret to show once (creation, rotation). */
export interface EndpointWithSecret {
  readonly endpoint: WebhookEndpoint;
  readonly secret: string;
}

async function requireEndpoint(
  tx: WriteOperations,
  workspaceId: string,
  id: string,
): Promise<WebhookEndpoint> {
  const endpoint = await tx.webhooks.getEndpoint(workspaceId, id);
  if (!endpoint) throw notFound('webhook endpoint', id);
  return endpoint;
}

/** Creates an endpoint (URL already checked by {@link checkEndpointUrl}); it receives events written from now on. */
export function createEndpointCommand(
  ctx: ServiceContext,
  workspaceId: string,
  input: EndpointInput,
): WriteCommand<EndpointWithSecret> {
  const id = ctx.ids.newId('ep');
  const secret = newWebhookSecret();
  return audited<EndpointWithSecret>(
    {
      lockKey: endpointLockKey(workspaceId, id),
      work: async (tx, now) => {
        const endpoint: WebhookEndpoint = {
          workspaceId,
          id,
          url: input.url,
          description: input.description,
          eventTypes: input.eventTypes,
          enabled: input.enabled,
          disabledReason: input.enabled ? null : 'manual',
          secret,
          previousSecret: null,
          previousSecretUntil: null,
          failingSince: null,
          createdAt: now,
          updatedAt: now,
        };
        await tx.webhooks.insertEndpoint(endpoint);
        return { ok: true, value: { endpoint, secret } };
      },
    },
    ({ endpoint }) => endpointAudit('webhook_endpoint.created', endpoint, null, endpoint),
  );
}

/** An endpoint as the audit log keeps it: everything but its signing secrets. */
function auditedEndpoint(endpoint: WebhookEndpoint | null): unknown {
  if (endpoint === null) return null;
  const { secret: _secret, previousSecret: _previous, ...rest } = endpoint;
  return rest;
}

/** The audit record of a change to an endpoint (administrative: who subscribed what, where). */
function endpointAudit(
  action: string,
  target: WebhookEndpoint | { readonly workspaceId: string; readonly id: string },
  before: WebhookEndpoint | null,
  after: WebhookEndpoint | null,
): AuditMessage {
  return {
    workspaceId: target.workspaceId,
    action,
    targetType: 'webhook_endpoint',
    targetId: target.id,
    before: auditedEndpoint(before),
    after: auditedEndpoint(after),
  };
}

/** The endpoint before a change, read under the change's lock (null when it does not exist). */
function endpointBefore(workspaceId: string, id: string) {
  return async (tx: WriteOperations) => tx.webhooks.getEndpoint(workspaceId, id);
}

/** Changes to an endpoint; absent fields stay as they are. */
export interface EndpointPatch {
  readonly url?: string;
  readonly eventTypes?: readonly string[] | null;
  readonly description?: string | null;
  readonly enabled?: boolean;
}

/** Updates an endpoint (a new URL is checked before, like at creation). Enabling clears its failure streak. */
export function updateEndpointCommand(
  workspaceId: string,
  id: string,
  patch: EndpointPatch,
): WriteCommand<WebhookEndpoint> {
  return auditedChange<WebhookEndpoint, WebhookEndpoint | null>(
    {
      lockKey: endpointLockKey(workspaceId, id),
      work: async (tx, now) => {
        const current = await requireEndpoint(tx, workspaceId, id);
        const enabled = patch.enabled ?? current.enabled;
        const updated: WebhookEndpoint = {
          ...current,
          url: patch.url ?? current.url,
          eventTypes: patch.eventTypes === undefined ? current.eventTypes : patch.eventTypes,
          description: patch.description === undefined ? current.description : patch.description,
          enabled,
          disabledReason: enabled ? null : current.enabled ? 'manual' : current.disabledReason,
          failingSince: enabled && !current.enabled ? null : current.failingSince,
          updatedAt: now,
        };
        await tx.webhooks.saveEndpoint(updated);
        return { ok: true, value: updated };
      },
    },
    endpointBefore(workspaceId, id),
    (updated, before) => endpointAudit('webhook_endpoint.updated', updated, before, updated),
  );
}

/**
 * Replaces the signing secret. The old one keeps signing for `overlapMs` (deliveries carry both
 * signatures), then only the new one signs.
 */
export function rotateSecretCommand(
  workspaceId: string,
  id: string,
  overlapMs: number,
): WriteCommand<EndpointWithSecret> {
  const secret = newWebhookSecret();
  return auditedChange<EndpointWithSecret, WebhookEndpoint | null>(
    {
      lockKey: endpointLockKey(workspaceId, id),
      work: async (tx, now) => {
        const current = await requireEndpoint(tx, workspaceId, id);
        const endpoint: WebhookEndpoint = {
          ...current,
          secret,
          previousSecret: current.secret,
          previousSecretUntil: now + overlapMs,
          updatedAt: now,
        };
        await tx.webhooks.saveEndpoint(endpoint);
        return { ok: true, value: { endpoint, secret } };
      },
    },
    endpointBefore(workspaceId, id),
    ({ endpoint }, before) => endpointAudit('webhook_endpoint.secret_rotated', endpoint, before, endpoint),
  );
}

/** Deletes an endpoint: it disappears, its pending deliveries are canceled; its log stays readable by event. */
export function deleteEndpointCommand(
  workspaceId: string,
  id: string,
): WriteCommand<{ readonly id: string }> {
  return auditedChange<{ readonly id: string }, WebhookEndpoint | null>(
    {
      lockKey: endpointLockKey(workspaceId, id),
      work: async (tx, now) => {
        if (!(await tx.webhooks.deleteEndpoint(workspaceId, id, now))) throw notFound('webhook endpoint', id);
        return { ok: true, value: { id } };
      },
    },
    endpointBefore(workspaceId, id),
    (_value, before) => endpointAudit('webhook_endpoint.deleted', { workspaceId, id }, before, null),
  );
}

/** What to replay to one endpoint: one event, or every event it subscribes to that occurred in [from, to). */
export type ReplayRequest = { readonly eventId: string } | { readonly from: Instant; readonly to: Instant };

/**
 * Queues deliveries again, whatever became of earlier ones (delivered included). Replays carry the
 * event's own id (the same `webhook-id`) and are not held back behind the customer's pending events.
 */
export function replayCommand(
  ctx: ServiceContext,
  workspaceId: string,
  endpointId: string,
  request: ReplayRequest,
): WriteCommand<{ readonly queued: number }> {
  return {
    lockKey: endpointLockKey(workspaceId, endpointId),
    work: async (tx, now) => {
      const endpoint = await requireEndpoint(tx, workspaceId, endpointId);
      const events: StoredOutboxRecord[] = [];
      if ('eventId' in request) {
        const event = await tx.webhooks.getEvent(workspaceId, request.eventId);
        if (!event) throw notFound('event', request.eventId);
        events.push(event);
      } else {
        if (request.to <= request.from) throw invalidRequest('to must be after from', { field: 'to' });
        let page: PageRequest = { after: null, limit: 1000 };
        for (;;) {
          const got = await tx.webhooks.eventsBetween(workspaceId, request, page);
          for (const event of got.items)
            if (endpointWants(endpoint.eventTypes, event.type)) events.push(event);
          if (events.length > MAX_REPLAY_EVENTS) {
            throw invalidRequest(
              `the range holds more than ${MAX_REPLAY_EVENTS} events; replay it in parts`,
              {
                field: 'from',
                max_events: MAX_REPLAY_EVENTS,
              },
            );
          }
          if (got.nextAfter === null) break;
          page = { after: got.nextAfter, limit: 1000 };
        }
      }
      const deliveries: WebhookDelivery[] = events.map((event) => ({
        id: ctx.ids.newId('dlv'),
        workspaceId,
        endpointId,
        eventId: event.id,
        eventSeq: event.seq,
        customerId: event.customerId,
        replay: true,
        state: 'pending',
        attempts: 0,
        nextAttemptAt: now,
        createdAt: now,
      }));
      await tx.webhooks.insertDeliveries(deliveries);
      return { ok: true, value: { queued: deliveries.length } };
    },
  };
}

/** A live endpoint, or 404. */
export async function getEndpoint(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
): Promise<WebhookEndpoint> {
  const endpoint = await ctx.storage.read.webhooks.getEndpoint(workspaceId, id);
  if (!endpoint) throw notFound('webhook endpoint', id);
  return endpoint;
}

/** One page of a workspace's live endpoints, by id. */
export function listEndpoints(
  ctx: ServiceContext,
  workspaceId: string,
  page: PageRequest,
): Promise<Page<WebhookEndpoint>> {
  return Promise.resolve(ctx.storage.read.webhooks.listEndpoints(workspaceId, page));
}

/** The attempts to a live endpoint (404 for an unknown or deleted one), oldest first. */
export async function listEndpointAttempts(
  ctx: ServiceContext,
  workspaceId: string,
  endpointId: string,
  page: PageRequest,
): Promise<Page<WebhookAttempt>> {
  await getEndpoint(ctx, workspaceId, endpointId);
  return ctx.storage.read.webhooks.listAttempts(workspaceId, { endpointId }, page);
}

/** An event of the outbox with the state of each of its deliveries and their attempts (404 when unknown). */
export async function eventDeliveryLog(
  ctx: ServiceContext,
  workspaceId: string,
  eventId: string,
  page: PageRequest,
): Promise<{
  readonly event: StoredOutboxRecord;
  readonly deliveries: readonly WebhookDelivery[];
  readonly attempts: Page<WebhookAttempt>;
}> {
  const read = ctx.storage.read.webhooks;
  const event = await read.getEvent(workspaceId, eventId);
  if (!event) throw notFound('event', eventId);
  const [deliveries, attempts] = await Promise.all([
    read.deliveriesOfEvent(workspaceId, eventId),
    read.listAttempts(workspaceId, { eventId }, page),
  ]);
  return { event, deliveries, attempts };
}

/** Endpoints read per page when merging attempts across every endpoint. */
const ENDPOINT_PAGE = 100;

/**
 * The operator's deliveries view: attempts across a workspace's live endpoints (or one), newest
 * first, optionally only some outcomes (failures first: `failed`, `gone`, `retry`). Each endpoint's
 * newest attempts come from its index (workspace, endpoint, id) read backwards, and the pages are
 * merged by id (ids are time-ordered), so a page costs one indexed read per endpoint and never a
 * scan of the log. Resumes before the last id of the previous page.
 */
export async function listRecentAttempts(
  ctx: ServiceContext,
  workspaceId: string,
  query: {
    readonly endpointId: string | null;
    readonly outcomes: readonly AttemptOutcome[] | null;
    readonly page: PageRequest;
  },
): Promise<Page<RecentAttempt>> {
  const read = ctx.storage.read.webhooks;
  const endpointIds: string[] = [];
  if (query.endpointId !== null) {
    endpointIds.push((await getEndpoint(ctx, workspaceId, query.endpointId)).id);
  } else {
    let request: PageRequest = { after: null, limit: ENDPOINT_PAGE };
    for (;;) {
      const page = await read.listEndpoints(workspaceId, request);
      endpointIds.push(...page.items.map((e) => e.id));
      if (page.nextAfter === null) break;
      request = { after: page.nextAfter, limit: ENDPOINT_PAGE };
    }
  }
  return read.recentAttempts(workspaceId, endpointIds, query.outcomes, query.page);
}
