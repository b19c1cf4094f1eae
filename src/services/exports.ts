import type { ExportQuery, Page, PageRequest, ReadOperations, ResumeKey } from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/** What can be exported: ledger entries, grants, stored events, and usage (event burns priced by rates). */
export type ExportKind = 'ledger-entries' | 'grants' | 'events' | 'usage';
export const EXPORT_KINDS: readonly ExportKind[] = ['ledger-entries', 'grants', 'events', 'usage'];

/** Rows read per storage query: the most an export holds in memory at once. */
export const EXPORT_PAGE_SIZE = 1000;

type PageReader<T> = (reads: ReadOperations, query: ExportQuery, page: PageRequest) => Promise<Page<T>>;

const readers = {
  'ledger-entries': async (reads, query, page) => reads.finance.exportEntries(query, page),
  grants: async (reads, query, page) => reads.finance.exportGrants(query, page),
  events: async (reads, query, page) => reads.finance.exportEvents(query, page),
  usage: async (reads, query, page) => reads.finance.exportUsage(query, page),
} satisfies Record<ExportKind, PageReader<unknown>>;

/** The row type each export yields. */
export type ExportRow<K extends ExportKind> = Awaited<ReturnType<(typeof readers)[K]>>['items'][number];

/** One page of an export: its rows, in order, with the resume key after each. */
export interface ExportPage<T> {
  readonly rows: readonly T[];
  readonly keys: readonly ResumeKey[];
}

/**
 * Streams an export in keyset pages of {@link EXPORT_PAGE_SIZE}, each row with the resume key
 * after it, starting strictly after `after`. A page is read only when the consumer asks for more
 * (an async generator is pulled), so a slow client holds one page in memory, never the whole set.
 * Pages, not rows, are yielded: one await per page instead of one per row (a million awaits
 * through two generators cost seconds). Each page is its own short read (no long transaction):
 * rows committed meanwhile ahead of the cursor appear, as with any keyset pagination.
 */
export async function* exportPages<K extends ExportKind>(
  ctx: ServiceContext,
  kind: K,
  query: ExportQuery,
  after: ResumeKey | null,
): AsyncGenerator<ExportPage<ExportRow<K>>> {
  const read = readers[kind] as PageReader<ExportRow<K>>;
  const keyOf = resumeKeyOf[kind] as (row: ExportRow<K>) => ResumeKey;
  let page: PageRequest = { after, limit: EXPORT_PAGE_SIZE };
  for (;;) {
    const got = await read(ctx.storage.read, query, page);
    if (got.items.length > 0) yield { rows: got.items, keys: got.items.map(keyOf) };
    if (got.nextAfter === null) return;
    page = { after: got.nextAfter, limit: EXPORT_PAGE_SIZE };
  }
}

/** The resume key of one row (what the storage pages resume after), per export. */
const resumeKeyOf: { [K in ExportKind]: (row: ExportRow<K>) => ResumeKey } = {
  'ledger-entries': (e) => [e.seq],
  grants: (g) => [g.id],
  events: (e) => [e.eventKey],
  usage: (b) => [b.eventKey, b.rateId],
};
