import type { TSchema } from '@sinclair/typebox';

/** One webhook event type: its name, what it means, and the JSON Schema of its `data`. */
export interface WebhookEventDefinition {
  readonly type: string;
  readonly summary: string;
  readonly data: TSchema;
}
