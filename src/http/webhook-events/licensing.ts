import { Type } from '@sinclair/typebox';
import type { WebhookEventDefinition } from './definition.js';

/**
 * The webhook events of licensing. `license.anomaly` is appended to the outbox when a machine's
 * usage-log upload is refused (a gap, a fork, a bad hash or signature, records out of order: the
 * valid prefix is kept) and when usage paid beyond a credit lease had to run into overage under a
 * hard limit (`lease_exceeded`).
 */
export const LICENSING_EVENTS: readonly WebhookEventDefinition[] = [
  {
    type: 'license.anomaly',
    summary:
      "A machine's usage log was refused at a record (gap, fork, bad hash or signature, out of order), or its usage exceeded its credit lease under a hard limit",
    data: Type.Object({
      license_id: Type.String(),
      machine_id: Type.String(),
      kind: Type.Union(
        [
          'usage_log_gap',
          'usage_log_fork',
          'usage_log_bad_hash',
          'usage_log_bad_signature',
          'usage_log_out_of_order',
          'lease_exceeded',
        ].map((k) => Type.Literal(k)),
      ),
      seq: Type.Optional(Type.Integer({ description: 'The refused record' })),
      accepted_through_seq: Type.Optional(
        Type.Integer({ description: 'The last record the server holds for the machine' }),
      ),
      event_description: Type.Optional(Type.String({ description: 'lease_exceeded: the usage event' })),
    }),
  },
];
