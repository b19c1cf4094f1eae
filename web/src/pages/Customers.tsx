import { useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import { CreditTypePicker } from '../components/CreditTypePicker';
import { Pager, useCursorPages } from '../components/Pager';
import { formatAmount } from '../decimal';
import { formatRunway } from '../format';
import { useLoad } from '../hooks';
import { onLinkClick } from '../router';

type Summary = Schemas['CustomerSummary'];
type SortKey = 'id' | 'available' | 'burn_per_day' | 'runway';

/** Rows per page of the list. */
const PAGE = 50;

/**
 * One page of summaries, sorted, searched and filtered by the server across every customer of the
 * workspace (`GET /v1/customer-summaries?sort=&order=&q=&burning=`): correct for any number of
 * customers, never a sort of a truncated first few thousand.
 */
async function loadPage(query: {
  creditType: string;
  sort: SortKey;
  descending: boolean;
  search: string;
  burning: boolean;
  cursor: string | null;
}): Promise<{ items: Summary[]; next: string | null }> {
  const params: Record<string, string> = {
    limit: String(PAGE),
    credit_type: query.creditType,
    sort: query.sort,
    order: query.descending ? 'desc' : 'asc',
  };
  if (query.search.trim()) params.q = query.search.trim();
  if (query.burning) params.burning = 'true';
  if (query.cursor) params.cursor = query.cursor;
  const page = await api().GET('/v1/customer-summaries', { params: { query: params } });
  return { items: page.data, next: page.next_cursor };
}

/** The customers list (search, sort by balance, burn rate, runway; paged) and the at-risk view. */
export function CustomersPage({ mode }: { mode: 'all' | 'at_risk' }) {
  const atRisk = mode === 'at_risk';
  const [creditType, setCreditType] = useState('credits');
  const [searchInput, setSearchInput] = useState('');
  const [search, setSearch] = useState('');
  const [sortKey, setSortKey] = useState<SortKey>(atRisk ? 'runway' : 'id');
  const [descending, setDescending] = useState(false);
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const sort = atRisk ? 'runway' : sortKey;
  const desc = atRisk ? false : descending;
  const loaded = useLoad(
    () => loadPage({ creditType, sort, descending: desc, search, burning: atRisk, cursor }),
    [creditType, sort, desc, search, atRisk, cursor],
  );
  const restart = pages.restart;
  const rows = loaded.data?.items ?? [];
  const title = atRisk ? 'At risk: shortest runway first' : 'Customers';
  return (
    <section aria-labelledby="customers-title">
      <h1 id="customers-title">{title}</h1>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(searchInput);
          restart();
        }}
      >
        <label class="inline">
          Search{' '}
          <input
            type="search"
            name="q"
            value={searchInput}
            placeholder="id or name"
            onInput={(e) => setSearchInput((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="secondary">
          Search
        </button>
        <CreditTypePicker
          value={creditType}
          onChange={(v) => {
            setCreditType(v);
            restart();
          }}
        />
        {!atRisk && (
          <>
            <label class="inline">
              Sort by{' '}
              <select
                name="sort"
                value={sortKey}
                onChange={(e) => {
                  setSortKey((e.target as HTMLSelectElement).value as SortKey);
                  restart();
                }}
              >
                <option value="id">Id</option>
                <option value="available">Balance</option>
                <option value="burn_per_day">Burn rate</option>
                <option value="runway">Runway</option>
              </select>
            </label>
            <label class="inline">
              <input
                type="checkbox"
                name="descending"
                checked={descending}
                onChange={(e) => {
                  setDescending((e.target as HTMLInputElement).checked);
                  restart();
                }}
              />{' '}
              Descending
            </label>
          </>
        )}
      </form>
      {loaded.error && (
        <p role="alert" class="error">
          {loaded.error}
        </p>
      )}
      {loaded.loading && <p aria-live="polite">Loading…</p>}
      {atRisk && (
        <p class="muted">
          Every customer burning credits, shortest runway first. Runway here is the available balance ÷ the
          last 7 days' mean burn; each customer's page shows the full forecast with its interval.
        </p>
      )}
      <div class="table-wrap">
        <table data-testid="customers-table">
          <caption class="sr-only">{title}</caption>
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col" class="num">
                Available
              </th>
              <th scope="col" class="num">
                Held
              </th>
              <th scope="col" class="num">
                Burn / day
              </th>
              <th scope="col" class="num">
                Runway
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.customer.id} data-customer={s.customer.id}>
                <th scope="row">
                  <a href={`/customers/${encodeURIComponent(s.customer.id)}`} onClick={onLinkClick}>
                    {s.customer.id}
                  </a>
                  {s.customer.name && <span class="muted"> {s.customer.name}</span>}
                </th>
                <td class="num" data-value={s.available}>
                  {formatAmount(s.available)}
                </td>
                <td class="num">{formatAmount(s.held)}</td>
                <td class="num" data-value={s.burn_per_day}>
                  {formatAmount(s.burn_per_day, 2)}
                </td>
                <td
                  class={`num ${s.runway_seconds !== null && s.runway_seconds < 3 * 86_400 ? 'warn' : ''}`}
                  data-value={s.runway_seconds ?? ''}
                >
                  {formatRunway(s.runway_seconds)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {loaded.data && rows.length === 0 && <p>No customers match.</p>}
      <Pager pages={pages} nextCursor={loaded.data?.next} loading={loaded.loading} />
    </section>
  );
}
