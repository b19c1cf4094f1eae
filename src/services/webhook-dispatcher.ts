import { randomBytes } from 'node:crypto';
import { formatInstant } from '../domain/time/instant.js';
import { endpointWants, webhookBody } from '../domain/webhooks/envelope.js';
import { type DeliveryStep, nextDeliveryStep, shouldDisableEndpoint } from '../domain/webhooks/retry.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  DeliveryState,
  EndpointDisabledReason,
  WebhookDelivery,
  WebhookEndpoint,
} from '../ports/storage.js';
import type { WebhookResponse, WebhookTransport } from '../ports/webhooks.js';
import type { ServiceContext } from './context.js';
import { appendFacts } from './outbox.js';
import { endpointLockKey } from './webhook-endpoints.js';

/** Default number of deliveries one process sends at once. */
export const DEFAULT_WEBHOOK_CONCURRENCY = 8;
/** Default: an endpoint failing for five days in a row is disabled. */
export const DEFAULT_DISABLE_AFTER_MS = 5 * 86_400_000;
/**
 * How long a claim is held: longer than an attempt can take (15 s timeout), so a live dispatcher
 * never loses its claim; a crashed one's claims are taken over after it (at-least-once).
 */
export const DEFAULT_LEASE_MS = 60_000;
/** Outbox events fanned out per transaction. */
const FAN_OUT_BATCH = 500;

/** Options of the dispatcher. */
export interface WebhookDispatcherOptions {
  readonly transport: WebhookTransport;
  /** Most deliveries this process has in flight; default {@link DEFAULT_WEBHOOK_CONCURRENCY}. */
  readonly concurrency?: number;
  /** Failing this long without a success disables an endpoint; default {@link DEFAULT_DISABLE_AFTER_MS}. */
  readonly disableAfterMs?: number;
  readonly leaseMs?: number;
  /** This dispatcher's name on its claims; default random. */
  readonly owner?: string;
  /** The jitter's random source (a draw in [0, 1)); tests fix it. */
  readonly random?: () => number;
  /** Told about failures of the loop itself (the database unreachable, a bug); default: ignored. */
  readonly onError?: (error: unknown) => void;
}

/** What one round did. */
export interface DispatchRound {
  readonly fannedOut: number;
  readonly attempted: number;
}

/**
 * The webhook dispatcher (docs/design.md, "Outbound webhooks"). Each round:
 *
 * 1. **Fan-out**: outbox events not yet fanned out become one delivery per enabled endpoint that
 *    subscribes to their type and existed when they occurred (in one transaction with marking them,
 *    so each event fans out once even across processes and crashes).
 * 2. **Claim**: due deliveries are leased to this dispatcher (`UPDATE … RETURNING`, with `FOR UPDATE
 *    SKIP LOCKED` on PostgreSQL), at most as many as it has free slots. A customer's deliveries to an
 *    endpoint go one at a time, in commit order: a later one waits while an earlier one is retrying.
 * 3. **Send** (not awaited by the loop, so a slow receiver holds only its own slot), then record the
 *    attempt and the delivery's next step in one transaction: delivered, retry at an instant (the
 *    schedule with jitter, or the receiver's `Retry-After`), given up, or the endpoint disabled (410,
 *    or failing for too long, with an `endpoint.disabled` fact in the outbox).
 *
 * All state is in the database, so a restart (or a crash mid-send) loses nothing: a claim whose
 * dispatcher died expires and the delivery is sent again with the same `webhook-id`.
 * It runs beside the API, never inside a request.
 */
export class WebhookDispatcher {
  private readonly concurrency: number;
  private readonly disableAfterMs: number;
  private readonly leaseMs: number;
  private readonly owner: string;
  private readonly random: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly options: WebhookDispatcherOptions,
  ) {
    this.concurrency = options.concurrency ?? DEFAULT_WEBHOOK_CONCURRENCY;
    this.disableAfterMs = options.disableAfterMs ?? DEFAULT_DISABLE_AFTER_MS;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.owner = options.owner ?? `dispatcher-${randomBytes(6).toString('hex')}`;
    this.random = options.random ?? Math.random;
  }

  /** Runs rounds every `intervalMs` until {@link stop}; a round still running is not overlapped. */
  start(intervalMs: number): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      if (this.ticking !== null) return;
      this.ticking = this.round()
        .catch((error: unknown) => this.options.onError?.(error))
        .finally(() => {
          this.ticking = null;
        });
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the loop and waits for the attempts in flight to be recorded. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    await Promise.all([...this.inFlight]);
  }

  /** One round, waiting for every attempt it started (tests drive the dispatcher with this). */
  async runOnce(): Promise<DispatchRound> {
    const round = await this.round();
    await Promise.all([...this.inFlight]);
    return round;
  }

  /** Rounds until nothing is due at the clock's now (tests). */
  async drain(maxRounds = 100): Promise<number> {
    let attempted = 0;
    for (let i = 0; i < maxRounds; i++) {
      const round = await this.runOnce();
      attempted += round.attempted;
      if (round.attempted === 0 && round.fannedOut === 0) return attempted;
    }
    return attempted;
  }

  private async round(): Promise<DispatchRound> {
    const fannedOut = await this.fanOut();
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0) return { fannedOut, attempted: 0 };
    const now = this.ctx.clock.now();
    const claimed = await this.ctx.storage.write(`#webhooks/claim/${this.owner}`, async (tx) =>
      tx.webhooks.claimDueDeliveries({ now, owner: this.owner, leaseUntil: now + this.leaseMs, limit: free }),
    );
    for (const claim of claimed) {
      const attempt: Promise<void> = this.attempt(claim)
        .catch((error: unknown) => this.options.onError?.(error))
        .finally(() => this.inFlight.delete(attempt));
      this.inFlight.add(attempt);
    }
    return { fannedOut, attempted: claimed.length };
  }

  /** Turns outbox events into deliveries, one transaction per batch. */
  private async fanOut(): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await this.ctx.storage.write('#webhooks/fan-out', async (tx) => {
        const now = this.ctx.clock.now();
        const events = await tx.webhooks.claimEventsToFanOut(FAN_OUT_BATCH);
        const endpointsOf = new Map<string, readonly WebhookEndpoint[]>();
        const deliveries: WebhookDelivery[] = [];
        for (const event of events) {
          let endpoints = endpointsOf.get(event.workspaceId);
          if (endpoints === undefined) {
            endpoints = await tx.webhooks.liveEndpointsOf(event.workspaceId);
            endpointsOf.set(event.workspaceId, endpoints);
          }
          for (const endpoint of endpoints) {
            if (endpoint.createdAt > event.occurredAt || !endpointWants(endpoint.eventTypes, event.type))
              continue;
            deliveries.push({
              id: this.ctx.ids.newId('dlv'),
              workspaceId: event.workspaceId,
              endpointId: endpoint.id,
              eventId: event.id,
              eventSeq: event.seq,
              customerId: event.customerId,
              replay: false,
              state: 'pending',
              attempts: 0,
              nextAttemptAt: now,
              createdAt: now,
            });
          }
        }
        await tx.webhooks.insertDeliveries(deliveries);
        await tx.webhooks.markFannedOut(events.map((e) => e.seq));
        return events.length;
      });
      total += count;
      if (count < FAN_OUT_BATCH) return total;
    }
  }

  /** Sends one claimed delivery and records what came of it. */
  private async attempt({ delivery, event, endpoint }: ClaimedDelivery): Promise<void> {
    const sentAt = this.ctx.clock.now();
    const secrets =
      endpoint.previousSecret !== null &&
      endpoint.previousSecretUntil !== null &&
      endpoint.previousSecretUntil > sentAt
        ? [endpoint.secret, endpoint.previousSecret]
        : [endpoint.secret];
    const response = await this.options.transport.send({
      url: endpoint.url,
      id: event.id,
      timestampSeconds: Math.floor(sentAt / 1000),
      body: webhookBody(event.type, event.occurredAt, event.data),
      secrets,
    });
    const attemptsMade = delivery.attempts + 1;
    const now = this.ctx.clock.now();
    const step = nextDeliveryStep(response, attemptsMade, now, this.random());
    await this.ctx.storage.write(endpointLockKey(delivery.workspaceId, delivery.endpointId), async (tx) => {
      await tx.webhooks.finishAttempt(
        {
          id: this.ctx.ids.newId('att'),
          workspaceId: delivery.workspaceId,
          deliveryId: delivery.id,
          endpointId: delivery.endpointId,
          eventId: delivery.eventId,
          attempt: attemptsMade,
          attemptedAt: sentAt,
          statusCode: response.statusCode,
          latencyMs: response.latencyMs,
          responseExcerpt: response.excerpt,
          error: response.error,
          outcome: outcomeOf(step),
        },
        {
          deliveryId: delivery.id,
          owner: this.owner,
          state: stateAfter(step),
          attempts: attemptsMade,
          nextAttemptAt: step.kind === 'retry' ? step.at : delivery.nextAttemptAt,
          finishedAt: step.kind === 'retry' ? null : now,
        },
      );
      const current = await tx.webhooks.getEndpoint(delivery.workspaceId, delivery.endpointId);
      if (current === null) return;
      const updated = this.endpointAfter(current, step, response, sentAt, now);
      if (updated === current) return;
      await tx.webhooks.saveEndpoint(updated);
      if (current.enabled && !updated.enabled) {
        await appendFacts(this.ctx, tx, now, [
          {
            workspaceId: current.workspaceId,
            type: 'endpoint.disabled',
            customerId: null,
            data: {
              endpoint_id: current.id,
              url: current.url,
              reason: updated.disabledReason,
              failing_since: updated.failingSince === null ? null : formatInstant(updated.failingSince),
            },
          },
        ]);
      }
    });
  }

  /** The endpoint after an attempt: its failure streak, and whether it is now disabled. */
  private endpointAfter(
    endpoint: WebhookEndpoint,
    step: DeliveryStep,
    _response: WebhookResponse,
    sentAt: number,
    now: number,
  ): WebhookEndpoint {
    if (step.kind === 'delivered') {
      return endpoint.failingSince === null ? endpoint : { ...endpoint, failingSince: null, updatedAt: now };
    }
    const failingSince = endpoint.failingSince ?? sentAt;
    let disabledReason: EndpointDisabledReason | null = null;
    if (step.kind === 'gone') disabledReason = 'gone';
    else if (shouldDisableEndpoint(failingSince, now, this.disableAfterMs)) disabledReason = 'failing';
    if (disabledReason !== null && endpoint.enabled) {
      return { ...endpoint, enabled: false, disabledReason, failingSince, updatedAt: now };
    }
    if (failingSince === endpoint.failingSince) return endpoint;
    return { ...endpoint, failingSince, updatedAt: now };
  }
}

function outcomeOf(step: DeliveryStep): AttemptOutcome {
  switch (step.kind) {
    case 'delivered':
      return 'delivered';
    case 'gone':
      return 'gone';
    case 'retry':
      return 'retry';
    case 'exhausted':
      return 'failed';
  }
}

function stateAfter(step: DeliveryStep): DeliveryState {
  switch (step.kind) {
    case 'delivered':
      return 'delivered';
    case 'retry':
      return 'pending';
    case 'gone':
    case 'exhausted':
      return 'failed';
  }
}
