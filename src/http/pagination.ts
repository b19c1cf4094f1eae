import { invalidRequest } from '../domain/errors.js';
import type { Page, PageRequest } from '../ports/storage.js';
import { decodeCompositeKey, encodeCompositeKey } from '../storage/sql/sql-store.js';

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
  try {
    const after = Buffer.from(query.cursor, 'base64url').toString('utf8');
    if (!after) throw new Error('empty');
    return { after, limit };
  } catch {
    throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
  }
}

/** The contract's list envelope; cursors are opaque (base64url of the adapter's resume key). */
export function presentPage<T, U>(page: Page<T>, present: (item: T) => U) {
  return {
    data: page.items.map(present),
    next_cursor: page.nextAfter === null ? null : Buffer.from(page.nextAfter, 'utf8').toString('base64url'),
  };
}

/** Reads a page request whose resume key is a bare id. */
export function readIdPage(query: { limit?: string | undefined; cursor?: string | undefined }): {
  afterId: string;
  limit: number;
} {
  const page = readPageRequest(query);
  return {
    afterId: page.after === null ? '' : (decodeCompositeKey(page.after, 1)[0] ?? ''),
    limit: page.limit,
  };
}

/** Turns a page keyed by bare ids into the contract's list envelope. */
export function presentIdPage<T extends { readonly id: string }, U>(
  page: { items: readonly T[]; nextAfter: string | null },
  present: (item: T) => U,
) {
  return presentPage(
    { items: page.items, nextAfter: page.nextAfter === null ? null : encodeCompositeKey(page.nextAfter) },
    present,
  );
}
