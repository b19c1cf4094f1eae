import { BALANCE_EVENTS } from './balance.js';
import { CORE_WEBHOOK_EVENTS } from './core.js';
import type { WebhookEventDefinition } from './definition.js';
import { LICENSING_EVENTS } from './licensing.js';
import { PAYMENT_EVENTS } from './payments.js';

export type { WebhookEventDefinition } from './definition.js';

/**
 * Every webhook event type Burndown emits, collected from one file per area (add an area's array
 * here). Published in the OpenAPI document's `webhooks` section; endpoints may subscribe only to
 * these types.
 */
export const WEBHOOK_EVENTS: readonly WebhookEventDefinition[] = [
  ...CORE_WEBHOOK_EVENTS,
  ...BALANCE_EVENTS,
  ...PAYMENT_EVENTS,
  ...LICENSING_EVENTS,
];

/** The event type names, for validating subscriptions. */
export const WEBHOOK_EVENT_TYPES: readonly string[] = WEBHOOK_EVENTS.map((e) => e.type);
