import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import { type Instant, parseInstant, whyNotAnInstant } from '../domain/time/instant.js';

/** Parses an RFC 3339 field or refuses with 400 naming the field. */
export function readTime(text: string, field: string): Instant {
  const instant = parseInstant(text);
  if (instant === null) throw invalidRequest(`${field} ${whyNotAnInstant(text)}`, { field });
  return instant;
}

export { refusalResult, requestContextOf } from './idempotent-write.js';

const METADATA_LIMIT = 16 * 1024;

/** Metadata is free-form but bounded: at most 16 KiB once serialised. */
export function readMetadata(
  metadata: Record<string, unknown> | undefined,
  field = 'metadata',
): Record<string, unknown> {
  if (metadata === undefined) return {};
  if (JSON.stringify(metadata).length > METADATA_LIMIT) {
    throw new BurndownError(ErrorCode.invalidRequest, `${field} must be at most 16 KiB when serialised`, {
      field,
    });
  }
  return metadata;
}
