import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/**
 * A fact for the outbox (webhooks): persisted in the transaction of the write that produced it
 * (so it exists exactly when the change commits), delivered after commit. {@link runWrite} gives it
 * its stable event id (`evt_…`, the future `webhook-id`) and the write's instant.
 */
export interface OutboxMessage {
  readonly workspaceId: string;
  /** The event type, e.g. `grant.created`. */
  readonly type: string;
  /** The customer it is about, if any: one customer's events keep their commit order. */
  readonly customerId: string | null;
  /** The event's `data` (a JSON value; amounts as decimal strings). */
  readonly data: unknown;
}

/**
 * Appends facts to the outbox directly, inside a running write. For facts of upkeep that commits
 * whatever the operation's outcome (an expiry applied on the way to a refused debit still
 * happened); the operation's own facts go in its {@link WriteOutcome} instead, so a refusal drops them.
 */
export async function appendFacts(
  ctx: ServiceContext,
  tx: WriteOperations,
  now: Instant,
  messages: readonly OutboxMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  await tx.outbox.append(
    messages.map((m) => ({
      id: ctx.ids.newId('evt'),
      workspaceId: m.workspaceId,
      type: m.type,
      customerId: m.customerId,
      occurredAt: now,
      data: m.data,
    })),
  );
}
