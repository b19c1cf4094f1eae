import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import { type Instant, parseInstant, whyNotAnInstant } from '../domain/time/instant.js';
import { type Refusal, refusalError } from '../services/ledger.js';
import { statusOfErrorCode } from './error-status.js';
import { errorBody, type WriteResult } from './idempotent-write.js';

/** Parses an RFC 3339 field or refuses with 400 naming the field. */
export function readTime(text: string, field: string): Instant {
  const instant = parseInstant(text);
  if (instant === null) throw invalidRequest(`${field} ${whyNotAnInstant(text)}`, { field });
  return instant;
}

/** A refusal value as the write result the contract prescribes (402 or 409 with the envelope). */
export function refusalResult(refusal: Refusal): WriteResult {
  const error = refusalError(refusal);
  return { status: statusOfErrorCode(error.code), body: errorBody(error) };
}

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
