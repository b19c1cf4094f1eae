import { invalidRequest } from '../../domain/errors.js';
import type { Page, PageRequest, ResumeKey } from '../../ports/storage.js';

/**
 * Keyset paging of the SQL adapters. Resume keys are made (from the last row of a page) and read
 * back (into the bind parameters of the next query) only here and in the adapters: services pass
 * them through untouched, and http/ turns them into opaque cursors (src/http/pagination.ts).
 */

/** A key of another shape than this listing makes (a cursor of another listing): a 400, never a 500. */
function notOurs(): never {
  throw invalidRequest('cursor is not one this server issued', { field: 'cursor' });
}

/** The parts of a resume key of a known shape. */
export function resumeKeyParts(key: ResumeKey, arity: number): readonly string[] {
  if (key.length !== arity) notOurs();
  return key;
}

/** The parts of a request's resume key of a known shape, or null for the first page. */
export function keyParts(req: PageRequest, arity: number): readonly string[] | null {
  return req.after === null ? null : resumeKeyParts(req.after, arity);
}

/** The id to resume after for listings ordered by id ('' for the first page: ids are non-empty). */
export function afterId(req: PageRequest): string {
  return keyParts(req, 1)?.[0] ?? '';
}

/** The sequence number to resume after for listings ordered by a positive `seq` (0 for the first page). */
export function afterSeq(req: PageRequest): number {
  const text = keyParts(req, 1)?.[0];
  if (text === undefined) return 0;
  return naturalPart(text);
}

/** An instant part of a key (events and purchases may be dated before 1970). */
export function instantPart(text: string): number {
  if (!/^-?\d{1,16}$/.test(text)) notOurs();
  return Number(text);
}

/** A non-negative integer part of a key (a creation instant, a sequence number). */
export function naturalPart(text: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) notOurs();
  return Number(text);
}

/**
 * A page from rows read with `limit + 1`: the extra row only says there is more, and the key of
 * the last row kept is where the next page resumes.
 */
export function pageOf<T>(rows: readonly T[], limit: number, keyOf: (row: T) => ResumeKey): Page<T> {
  if (rows.length <= limit) return { items: rows, nextAfter: null };
  const items = rows.slice(0, limit);
  return { items, nextAfter: keyOf(items[items.length - 1]!) };
}

/** The key of listings ordered by id. */
export const idKey = (row: { readonly id: string }): ResumeKey => [row.id];
