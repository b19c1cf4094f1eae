import { useState } from 'preact/hooks';
import { CreditTypePicker } from '../components/CreditTypePicker';
import { compare, formatAmount } from '../decimal';
import { formatRunway } from '../format';
import { useLoad } from '../hooks';
import { onLinkClick } from '../router';
import { loadSummaries, MAX_SUMMARIES, type Summary } from '../summaries';

type SortKey = 'id' | 'balance' | 'burn' | 'runway';

const runwayOrder = (s: Summary) => (s.runway_seconds === null ? Number.POSITIVE_INFINITY : s.runway_seconds);

function sorted(items: readonly Summary[], key: SortKey, descending: boolean): Summary[] {
  const out = [...items].sort((a, b) => {
    switch (key) {
      case 'id':
        return a.customer.id < b.customer.id ? -1 : a.customer.id > b.customer.id ? 1 : 0;
      case 'balance':
        return compare(a.available, b.available);
      case 'burn':
        return compare(a.burn_per_day, b.burn_per_day);
      case 'runway':
        return runwayOrder(a) - runwayOrder(b);
      default:
        return 0;
    }
  });
  return descending ? out.reverse() : out;
}

/** The customers list (search, sort by balance, burn rate, runway) and the at-risk view. */
export function CustomersPage({ mode }: { mode: 'all' | 'at_risk' }) {
  const [creditType, setCreditType] = useState('credits');
  const [search, setSearch] = useState('');
  const [sortKey, setSortKey] = useState<SortKey>(mode === 'at_risk' ? 'runway' : 'id');
  const [descending, setDescending] = useState(false);
  const loaded = useLoad(() => loadSummaries(creditType), [creditType]);
  const needle = search.trim().toLowerCase();
  let rows = (loaded.data?.items ?? []).filter(
    (s) =>
      needle === '' ||
      s.customer.id.toLowerCase().includes(needle) ||
      (s.customer.name ?? '').toLowerCase().includes(needle),
  );
  if (mode === 'at_risk') rows = rows.filter((s) => s.runway_seconds !== null);
  rows = sorted(rows, mode === 'at_risk' ? 'runway' : sortKey, mode === 'at_risk' ? false : descending);
  const title = mode === 'at_risk' ? 'At risk: shortest runway first' : 'Customers';
  return (
    <section aria-labelledby="customers-title">
      <h1 id="customers-title">{title}</h1>
      <div class="toolbar">
        <label class="inline">
          Search{' '}
          <input
            type="search"
            value={search}
            placeholder="id or name"
            onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
          />
        </label>
        <CreditTypePicker value={creditType} onChange={setCreditType} />
        {mode === 'all' && (
          <>
            <label class="inline">
              Sort by{' '}
              <select
                value={sortKey}
                onChange={(e) => setSortKey((e.target as HTMLSelectElement).value as SortKey)}
              >
                <option value="id">Id</option>
                <option value="balance">Balance</option>
                <option value="burn">Burn rate</option>
                <option value="runway">Runway</option>
              </select>
            </label>
            <label class="inline">
              <input
                type="checkbox"
                checked={descending}
                onChange={(e) => setDescending((e.target as HTMLInputElement).checked)}
              />{' '}
              Descending
            </label>
          </>
        )}
      </div>
      {loaded.error && (
        <p role="alert" class="error">
          {loaded.error}
        </p>
      )}
      {loaded.loading && !loaded.data && <p aria-live="polite">Loading…</p>}
      {loaded.data && !loaded.data.complete && (
        <p class="muted">Showing the first {MAX_SUMMARIES} customers by id; sorts apply to those.</p>
      )}
      {mode === 'at_risk' && (
        <p class="muted">
          Runway here is the available balance ÷ the last 7 days' mean burn; each customer's page shows the
          full forecast with its interval.
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
              <tr key={s.customer.id}>
                <th scope="row">
                  <a href={`/customers/${encodeURIComponent(s.customer.id)}`} onClick={onLinkClick}>
                    {s.customer.id}
                  </a>
                  {s.customer.name && <span class="muted"> {s.customer.name}</span>}
                </th>
                <td class="num">{formatAmount(s.available)}</td>
                <td class="num">{formatAmount(s.held)}</td>
                <td class="num">{formatAmount(s.burn_per_day, 2)}</td>
                <td class={`num ${s.runway_seconds !== null && s.runway_seconds < 3 * 86_400 ? 'warn' : ''}`}>
                  {formatRunway(s.runway_seconds)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {loaded.data && rows.length === 0 && <p>No customers match.</p>}
    </section>
  );
}
