import { api, type Schemas } from './api';

/** One customer's summary as the API answers it. */
export type Summary = Schemas['CustomerSummary'];

/** The workspace's credit types (ids), `credits` first. */
export async function loadCreditTypes(): Promise<string[]> {
  const page = await api().GET('/v1/credit-types', { params: { query: { limit: '1000' } } });
  const ids = page.data.map((c) => c.id);
  return ['credits', ...ids.filter((id) => id !== 'credits')];
}
