import { invalidRequest } from '../domain/errors.js';
import type { Page, PageRequest, ResumeKey } from '../ports/storage.js';
import type { UsagePosition } from '../services/metering.js';

/** Turns `limit` and `cursor` query parameters into a page request (limit 1–1000, default 100). */
export function readPageRequest(query: {
  limit?: string | undefined;
  cursor?: string | undefined;
}): PageRequest {
  const limit = query.limit === undefined ? 100 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw invalidRequest('limit must be an integer from 1 to 1000', { field: 'limit' });
  }
  if (query.cursor === undefined || query.cursor === '') return { after: null, limit };
  return { after: decodeCursor(query.cursor), limit };
}

/**
 * Paging cursors are a transport concern, and this module is their only codec: on the wire a
 * cursor is opaque to clients, the base64url of the JSON array of the adapter's resume-key parts.
 * Storage makes and reads the parts (src/storage/sql/paging.ts); services only pass them through.
 * The format is stable: cursors clients hold keep working across releases.
 */
export function encodeCursor(key: ResumeKey): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Reads a cursor back; one this server did not make is a 400, never a 500. */
export function decodeCursor(cursor: string): ResumeKey {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parts = null;
  }
  if (
    !Array.isArray(parts) ||
    parts.length < 1 ||
    parts.length > 4 ||
    parts.some((p) => typeof p !== 'string' || p.length > 256 || p.includes('\u0000'))
  ) {
    throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
  }
  return parts as string[];
}

/** The contract's list envelope; cursors are opaque (see {@link encodeCursor}). */
export function presentPage<T, U>(page: Page<T>, present: (item: T) => U) {
  return {
    data: page.items.map(present),
    next_cursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter),
  };
}

/**
 * A meter usage cursor (GET /v1/meters/{id}/usage): base64url of `<window start ms>.<rows of that
 * window already sent>`. Usage is aggregated in services, so its position is not a storage resume
 * key; its codec lives here with the other one all the same.
 */
export function encodeUsageCursor(position: UsagePosition): string {
  return Buffer.from(`${position.windowStart}.${position.offset}`, 'utf8').toString('base64url');
}

/** Reads a usage cursor back (none: from the start); one this server did not make is a 400. */
export function decodeUsageCursor(cursor: string | undefined): UsagePosition | null {
  if (cursor === undefined || cursor === '') return null;
  const match = /^(-?\d{1,16})\.(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
  return { windowStart: Number(match[1]), offset: Number(match[2]) };
}
