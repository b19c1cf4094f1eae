import { api, type Schemas } from './api';

export type Summary = Schemas['CustomerSummary'];

/** Customers read at most for views that sort or total across customers (pages of 100). */
export const MAX_SUMMARIES = 2000;

/**
 * Every customer's summary up to {@link MAX_SUMMARIES}, page by page: the overview's totals and
 * consumption per day sum these (sorted lists ask the server). `complete`: every customer was read.
 */
export async function loadSummaries(creditType: string): Promise<{ items: Summary[]; complete: boolean }> {
  const items: Summary[] = [];
  let cursor: string | null = null;
  do {
    const query: { limit: string; credit_type: string; cursor?: string } = {
      limit: '100',
      credit_type: creditType,
    };
    if (cursor) query.cursor = cursor;
    const page = await api().GET('/v1/customer-summaries', { params: { query } });
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && items.length < MAX_SUMMARIES);
  return { items, complete: cursor === null };
}

/** The workspace's credit types (ids), `credits` first. */
export async function loadCreditTypes(): Promise<string[]> {
  const page = await api().GET('/v1/credit-types', { params: { query: { limit: '1000' } } });
  const ids = page.data.map((c) => c.id);
  return ['credits', ...ids.filter((id) => id !== 'credits')];
}
