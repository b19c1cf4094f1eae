import { extend } from '../../domain/objects.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  DeliveryState,
  DeliveryUpdate,
  EndpointDisabledReason,
  Page,
  PageRequest,
  RecentAttempt,
  StoredOutboxRecord,
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookReadOperations,
  WebhookWriteOperations,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';
import { afterId, afterSeq, idKey, pageOf } from './paging.js';

const ENDPOINT_COLUMNS = `workspace_id, id, url, description, event_types, enabled, disabled_reason, secret,
  previous_secret, previous_secret_until, failing_since, created_at, updated_at`;
const DELIVERY_COLUMNS = `id, workspace_id, endpoint_id, event_id, event_seq, customer_id, replay, state, attempts,
  next_attempt_at, created_at`;
const EVENT_COLUMNS = 'seq, id, workspace_id, type, customer_id, occurred_at, data';
const ATTEMPT_COLUMNS = `id, workspace_id, delivery_id, endpoint_id, event_id, attempt, attempted_at, status_code,
  latency_ms, response_excerpt, error, outcome`;

/**
 * SQL of the webhook aggregate (both dialects). `{lock}` is where a dialect that has row locks
 * puts `FOR UPDATE … SKIP LOCKED` (PostgreSQL: several dispatchers share the table); SQLite has one
 * writer per database, so its statements need none.
 */
export const WQ = {
  insertEndpoint: `INSERT INTO webhook_endpoints (${ENDPOINT_COLUMNS}, deleted_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
  saveEndpoint: `UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, enabled = ?,
     disabled_reason = ?, secret = ?, previous_secret = ?, previous_secret_until = ?, failing_since = ?,
     updated_at = ? WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL`,
  deleteEndpoint: `UPDATE webhook_endpoints SET deleted_at = ?, enabled = 0 WHERE workspace_id = ? AND id = ?
     AND deleted_at IS NULL`,
  cancelDeliveriesOf: `UPDATE webhook_deliveries SET state = 'canceled', finished_at = ?
     WHERE endpoint_id = ? AND workspace_id = ? AND state = 'pending'`,
  getEndpoint: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
     WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL`,
  listEndpoints: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
     WHERE workspace_id = ? AND id > ? AND deleted_at IS NULL ORDER BY id LIMIT ?`,
  liveEndpointsOf: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
     WHERE workspace_id = ? AND deleted_at IS NULL AND enabled = 1 ORDER BY id`,
  getEvent: `SELECT ${EVENT_COLUMNS} FROM outbox_events WHERE id = ? AND workspace_id = ?`,
  eventsBetween: `SELECT ${EVENT_COLUMNS} FROM outbox_events
     WHERE workspace_id = ? AND occurred_at >= ? AND occurred_at < ? AND seq > ? ORDER BY seq LIMIT ?`,
  eventsToFanOut: `SELECT ${EVENT_COLUMNS} FROM outbox_events WHERE fanned_out = 0 ORDER BY seq LIMIT ? {lock}`,
  markFannedOut: 'UPDATE outbox_events SET fanned_out = 1 WHERE seq = ?',
  insertDelivery: `INSERT INTO webhook_deliveries (${DELIVERY_COLUMNS}, lease_owner, lease_until, finished_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL) ON CONFLICT DO NOTHING`,
  claimDue: `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
     WHERE id IN (
       SELECT d.id FROM webhook_deliveries d
       JOIN webhook_endpoints e ON e.workspace_id = d.workspace_id AND e.id = d.endpoint_id
       WHERE d.state = 'pending' AND d.next_attempt_at <= ?
         AND (d.lease_until IS NULL OR d.lease_until <= ?)
         AND e.enabled = 1 AND e.deleted_at IS NULL
         AND (d.replay = 1 OR d.customer_id IS NULL OR NOT EXISTS (
           SELECT 1 FROM webhook_deliveries p
           WHERE p.endpoint_id = d.endpoint_id AND p.customer_id = d.customer_id
             AND p.state = 'pending' AND p.replay = 0 AND p.event_seq < d.event_seq))
       ORDER BY d.next_attempt_at, d.event_seq
       LIMIT ? {lock})
     AND (lease_until IS NULL OR lease_until <= ?)
     RETURNING id`,
  finishDelivery: `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, finished_at = ?,
     lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND state = 'pending'`,
  insertAttempt: `INSERT INTO webhook_attempts (${ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  attemptsOfEndpoint: `SELECT ${ATTEMPT_COLUMNS} FROM webhook_attempts
     WHERE workspace_id = ? AND endpoint_id = ? AND id > ? ORDER BY id LIMIT ?`,
  attemptsOfEvent: `SELECT ${ATTEMPT_COLUMNS} FROM webhook_attempts
     WHERE workspace_id = ? AND event_id = ? AND id > ? ORDER BY id LIMIT ?`,
  recentAttempts: `SELECT a.id, a.workspace_id, a.delivery_id, a.endpoint_id, a.event_id, a.attempt,
       a.attempted_at, a.status_code, a.latency_ms, a.response_excerpt, a.error, a.outcome,
       e.type AS event_type, d.state AS delivery_state
     FROM webhook_attempts a
     LEFT JOIN outbox_events e ON e.id = a.event_id
     LEFT JOIN webhook_deliveries d ON d.id = a.delivery_id
     WHERE a.workspace_id = ? AND a.endpoint_id = ? AND (? = '' OR a.id < ?) {outcomes}
     ORDER BY a.id DESC LIMIT ?`,
  deliveriesOfEvent: `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
     WHERE workspace_id = ? AND event_id = ? ORDER BY created_at, id`,
} as const;

type Num = number | string;

interface EndpointRow {
  workspace_id: string;
  id: string;
  url: string;
  description: string | null;
  event_types: string | null;
  enabled: Num;
  disabled_reason: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Num | null;
  failing_since: Num | null;
  created_at: Num;
  updated_at: Num;
}

interface DeliveryRow {
  id: string;
  workspace_id: string;
  endpoint_id: string;
  event_id: string;
  event_seq: Num;
  customer_id: string | null;
  replay: Num;
  state: string;
  attempts: Num;
  next_attempt_at: Num;
  created_at: Num;
}

interface EventRow {
  seq: Num;
  id: string;
  workspace_id: string;
  type: string;
  customer_id: string | null;
  occurred_at: Num;
  data: string;
}

interface AttemptRow {
  id: string;
  workspace_id: string;
  delivery_id: string;
  endpoint_id: string;
  event_id: string;
  attempt: Num;
  attempted_at: Num;
  status_code: Num | null;
  latency_ms: Num;
  response_excerpt: string | null;
  error: string | null;
  outcome: string;
}

const orNull = (v: Num | null): number | null => (v === null ? null : Number(v));

function endpointFromRow(r: EndpointRow): WebhookEndpoint {
  return {
    workspaceId: r.workspace_id,
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types === null ? null : (JSON.parse(r.event_types) as string[]),
    enabled: Number(r.enabled) === 1,
    disabledReason: r.disabled_reason as EndpointDisabledReason | null,
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretUntil: orNull(r.previous_secret_until),
    failingSince: orNull(r.failing_since),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function deliveryFromRow(r: DeliveryRow): WebhookDelivery {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    eventSeq: Number(r.event_seq),
    customerId: r.customer_id,
    replay: Number(r.replay) === 1,
    state: r.state as DeliveryState,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    createdAt: Number(r.created_at),
  };
}

function eventFromRow(r: EventRow): StoredOutboxRecord {
  return {
    seq: Number(r.seq),
    id: r.id,
    workspaceId: r.workspace_id,
    type: r.type,
    customerId: r.customer_id,
    occurredAt: Number(r.occurred_at),
    data: JSON.parse(r.data) as unknown,
  };
}

function attemptFromRow(r: AttemptRow): WebhookAttempt {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    deliveryId: r.delivery_id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    attempt: Number(r.attempt),
    attemptedAt: Number(r.attempted_at),
    statusCode: orNull(r.status_code),
    latencyMs: Number(r.latency_ms),
    responseExcerpt: r.response_excerpt,
    error: r.error,
    outcome: r.outcome as AttemptOutcome,
  };
}

/** Reads of the webhook aggregate over one executor. */
export class WebhookReads implements WebhookReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async getEndpoint(workspaceId: string, id: string): Promise<WebhookEndpoint | null> {
    const row = await this.db.get<EndpointRow>(WQ.getEndpoint, [workspaceId, id]);
    return row ? endpointFromRow(row) : null;
  }

  async listEndpoints(workspaceId: string, page: PageRequest): Promise<Page<WebhookEndpoint>> {
    const rows = await this.db.all<EndpointRow>(WQ.listEndpoints, [
      workspaceId,
      afterId(page),
      page.limit + 1,
    ]);
    return pageOf(rows.map(endpointFromRow), page.limit, idKey);
  }

  async getEvent(workspaceId: string, eventId: string): Promise<StoredOutboxRecord | null> {
    const row = await this.db.get<EventRow>(WQ.getEvent, [eventId, workspaceId]);
    return row ? eventFromRow(row) : null;
  }

  async listAttempts(
    workspaceId: string,
    of: { readonly endpointId: string } | { readonly eventId: string },
    page: PageRequest,
  ): Promise<Page<WebhookAttempt>> {
    const after = afterId(page);
    const rows =
      'endpointId' in of
        ? await this.db.all<AttemptRow>(WQ.attemptsOfEndpoint, [
            workspaceId,
            of.endpointId,
            after,
            page.limit + 1,
          ])
        : await this.db.all<AttemptRow>(WQ.attemptsOfEvent, [workspaceId, of.eventId, after, page.limit + 1]);
    return pageOf(rows.map(attemptFromRow), page.limit, idKey);
  }

  async deliveriesOfEvent(workspaceId: string, eventId: string): Promise<readonly WebhookDelivery[]> {
    const rows = await this.db.all<DeliveryRow>(WQ.deliveriesOfEvent, [workspaceId, eventId]);
    return rows.map(deliveryFromRow);
  }

  async recentAttempts(
    workspaceId: string,
    endpointIds: readonly string[],
    filter: readonly AttemptOutcome[] | null,
    page: PageRequest,
  ): Promise<Page<RecentAttempt>> {
    const outcomes = filter ?? [];
    const beforeId = afterId(page);
    const sql = WQ.recentAttempts.replace(
      '{outcomes}',
      outcomes.length === 0 ? '' : `AND a.outcome IN (${outcomes.map(() => '?').join(', ')})`,
    );
    const merged: RecentAttempt[] = [];
    for (const endpointId of endpointIds) {
      const rows = await this.db.all<
        AttemptRow & { event_type: string | null; delivery_state: string | null }
      >(sql, [workspaceId, endpointId, beforeId, beforeId, ...outcomes, page.limit + 1]);
      for (const r of rows) {
        merged.push(
          extend(attemptFromRow(r), {
            eventType: r.event_type,
            deliveryState: r.delivery_state as DeliveryState | null,
          }),
        );
      }
    }
    merged.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    return pageOf(merged, page.limit, idKey);
  }
}

/** Writes of the webhook aggregate inside the caller's transaction. */
export class WebhookWrites extends WebhookReads implements WebhookWriteOperations {
  /** `rowLocks`: the dialect has `FOR UPDATE … SKIP LOCKED` (PostgreSQL), so several dispatchers can claim at once. */
  constructor(
    db: SqlExecutor,
    private readonly rowLocks: { readonly events: string; readonly deliveries: string } = {
      events: '',
      deliveries: '',
    },
  ) {
    super(db);
  }

  async insertEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.run(WQ.insertEndpoint, [
      e.workspaceId,
      e.id,
      e.url,
      e.description,
      e.eventTypes === null ? null : JSON.stringify(e.eventTypes),
      e.enabled ? 1 : 0,
      e.disabledReason,
      e.secret,
      e.previousSecret,
      e.previousSecretUntil,
      e.failingSince,
      e.createdAt,
      e.updatedAt,
    ]);
  }

  async saveEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.run(WQ.saveEndpoint, [
      e.url,
      e.description,
      e.eventTypes === null ? null : JSON.stringify(e.eventTypes),
      e.enabled ? 1 : 0,
      e.disabledReason,
      e.secret,
      e.previousSecret,
      e.previousSecretUntil,
      e.failingSince,
      e.updatedAt,
      e.workspaceId,
      e.id,
    ]);
  }

  async deleteEndpoint(workspaceId: string, id: string, now: number): Promise<boolean> {
    const changed = await this.db.run(WQ.deleteEndpoint, [now, workspaceId, id]);
    if (changed === 0) return false;
    await this.db.run(WQ.cancelDeliveriesOf, [now, id, workspaceId]);
    return true;
  }

  async liveEndpointsOf(workspaceId: string): Promise<readonly WebhookEndpoint[]> {
    const rows = await this.db.all<EndpointRow>(WQ.liveEndpointsOf, [workspaceId]);
    return rows.map(endpointFromRow);
  }

  async claimEventsToFanOut(limit: number): Promise<readonly StoredOutboxRecord[]> {
    const rows = await this.db.all<EventRow>(WQ.eventsToFanOut.replace('{lock}', this.rowLocks.events), [
      limit,
    ]);
    return rows.map(eventFromRow);
  }

  async markFannedOut(seqs: readonly number[]): Promise<void> {
    for (const seq of seqs) await this.db.run(WQ.markFannedOut, [seq]);
  }

  async insertDeliveries(deliveries: readonly WebhookDelivery[]): Promise<void> {
    for (const d of deliveries) {
      await this.db.run(WQ.insertDelivery, [
        d.id,
        d.workspaceId,
        d.endpointId,
        d.eventId,
        d.eventSeq,
        d.customerId,
        d.replay ? 1 : 0,
        d.state,
        d.attempts,
        d.nextAttemptAt,
        d.createdAt,
      ]);
    }
  }

  async claimDueDeliveries(claim: {
    readonly now: number;
    readonly owner: string;
    readonly leaseUntil: number;
    readonly limit: number;
  }): Promise<readonly ClaimedDelivery[]> {
    const { now, owner, leaseUntil, limit } = claim;
    const claimed = await this.db.all<{ id: string }>(
      WQ.claimDue.replace('{lock}', this.rowLocks.deliveries),
      [owner, leaseUntil, now, now, limit, now],
    );
    if (claimed.length === 0) return [];
    const marks = claimed.map(() => '?').join(', ');
    const ids = claimed.map((c) => c.id);
    const deliveries = (
      await this.db.all<DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id IN (${marks})`,
        ids,
      )
    ).map(deliveryFromRow);
    const events = new Map(
      (
        await this.db.all<EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM outbox_events WHERE id IN (${deliveries.map(() => '?').join(', ')})`,
          deliveries.map((d) => d.eventId),
        )
      ).map((r) => [r.id, eventFromRow(r)]),
    );
    const endpoints = new Map<string, WebhookEndpoint>();
    for (const d of deliveries) {
      if (endpoints.has(d.endpointId)) continue;
      const endpoint = await this.getEndpoint(d.workspaceId, d.endpointId);
      if (endpoint) endpoints.set(d.endpointId, endpoint);
    }
    const result: ClaimedDelivery[] = [];
    for (const delivery of deliveries.sort(
      (a, b) => a.nextAttemptAt - b.nextAttemptAt || a.eventSeq - b.eventSeq,
    )) {
      const event = events.get(delivery.eventId);
      const endpoint = endpoints.get(delivery.endpointId);
      if (event && endpoint) result.push({ delivery, event, endpoint });
    }
    return result;
  }

  async finishAttempt(a: WebhookAttempt, u: DeliveryUpdate): Promise<boolean> {
    await this.db.run(WQ.insertAttempt, [
      a.id,
      a.workspaceId,
      a.deliveryId,
      a.endpointId,
      a.eventId,
      a.attempt,
      a.attemptedAt,
      a.statusCode,
      a.latencyMs,
      a.responseExcerpt,
      a.error,
      a.outcome,
    ]);
    const changed = await this.db.run(WQ.finishDelivery, [
      u.state,
      u.attempts,
      u.nextAttemptAt,
      u.finishedAt,
      u.deliveryId,
      u.owner,
    ]);
    return changed > 0;
  }

  async eventsBetween(
    workspaceId: string,
    range: { readonly from: number; readonly to: number },
    page: PageRequest,
  ): Promise<Page<StoredOutboxRecord>> {
    const rows = await this.db.all<EventRow>(WQ.eventsBetween, [
      workspaceId,
      range.from,
      range.to,
      afterSeq(page),
      page.limit + 1,
    ]);
    return pageOf(rows.map(eventFromRow), page.limit, (e) => [String(e.seq)]);
  }
}
