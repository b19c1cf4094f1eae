import { useState } from 'preact/hooks';
import { api } from '../api';
import { Chart } from '../components/Chart';
import { CreditTypePicker } from '../components/CreditTypePicker';
import { compare, formatAmount, toChartNumber } from '../decimal';
import { formatDate, formatRunway, formatTime } from '../format';
import { useLoad } from '../hooks';
import { onLinkClick } from '../router';

/** The workspace's totals over every customer, summed by the server (never a first page only). */
async function loadTotals(creditType: string) {
  return api().GET('/v1/customer-summaries/totals', { params: { query: { credit_type: creditType } } });
}

/**
 * The ten customers closest to depletion and the ten with the most credits expiring soon, across
 * every customer (sorted by the server, not within the first pages).
 */
async function loadRankings(creditType: string) {
  const client = api();
  const [closest, expiring] = await Promise.all([
    client.GET('/v1/customer-summaries', {
      params: { query: { credit_type: creditType, sort: 'runway', burning: 'true', limit: '10' } },
    }),
    client.GET('/v1/customer-summaries', {
      params: { query: { credit_type: creditType, sort: 'expiring_soon', order: 'desc', limit: '10' } },
    }),
  ]);
  return { closest: closest.data, expiring: expiring.data.filter((s) => compare(s.expiring_soon, '0') > 0) };
}

/** The operator overview: outstanding credits, consumption per day, expiring soon, closest to depletion. */
export function OverviewPage() {
  const [creditType, setCreditType] = useState('credits');
  const loaded = useLoad(() => loadTotals(creditType), [creditType]);
  const rankings = useLoad(() => loadRankings(creditType), [creditType]);
  const totals = loaded.data;
  const outstanding = totals?.available ?? '0';
  const held = totals?.held ?? '0';
  const owed = totals?.overage ?? '0';
  const days = totals?.daily_consumption.map((d) => d.day) ?? [];
  const perDay = totals?.daily_consumption.map((d) => d.consumed) ?? [];
  const expiring = rankings.data?.expiring ?? [];
  const closest = rankings.data?.closest ?? [];
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <div class="toolbar">
        <CreditTypePicker value={creditType} onChange={setCreditType} />
      </div>
      {loaded.error && (
        <p role="alert" class="error">
          {loaded.error}
        </p>
      )}
      <div class="cards">
        <div class="card">
          <h2>Outstanding credits</h2>
          <p class="big" data-testid="outstanding">
            {formatAmount(outstanding, 2)}
          </p>
          <p class="muted">{totals?.customers ?? 0} customers</p>
        </div>
        <div class="card">
          <h2>Held</h2>
          <p class="big">{formatAmount(held, 2)}</p>
        </div>
        <div class="card">
          <h2>Overage owed</h2>
          <p class="big">{formatAmount(owed, 2)}</p>
        </div>
        <div class="card">
          <h2>Consumed today</h2>
          <p class="big">{formatAmount(perDay.at(-1) ?? '0', 2)}</p>
        </div>
      </div>
      <h2>Consumption per day</h2>
      {days.length > 0 && (
        <Chart
          title="Credits consumed per UTC day over the last 14 days, all customers"
          xs={days.map((d) => Date.parse(d) / 1000)}
          series={[{ label: 'consumed', values: perDay.map(toChartNumber), color: '#2f6fb3', bars: true }]}
          height={200}
          testId="consumption-chart"
        />
      )}
      <details>
        <summary>Consumption per day as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col" class="num">
                Consumed
              </th>
            </tr>
          </thead>
          <tbody>
            {days.map((d, i) => (
              <tr key={d}>
                <td>{formatDate(d)}</td>
                <td class="num">{formatAmount(perDay[i] ?? '0')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
      <div class="columns">
        <div>
          <h2>Closest to depletion</h2>
          <table data-testid="closest-table">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col" class="num">
                  Available
                </th>
                <th scope="col" class="num">
                  Runway
                </th>
              </tr>
            </thead>
            <tbody>
              {closest.map((s) => (
                <tr key={s.customer.id}>
                  <th scope="row">
                    <a href={`/customers/${encodeURIComponent(s.customer.id)}`} onClick={onLinkClick}>
                      {s.customer.id}
                    </a>
                  </th>
                  <td class="num">{formatAmount(s.available)}</td>
                  <td class="num" data-value={s.runway_seconds ?? ''}>
                    {formatRunway(s.runway_seconds)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {closest.length === 0 && <p class="muted">Nobody is burning credits.</p>}
        </div>
        <div>
          <h2>Expiring within 7 days</h2>
          <table data-testid="expiring-table">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col" class="num">
                  Expiring
                </th>
                <th scope="col">Next expiry</th>
              </tr>
            </thead>
            <tbody>
              {expiring.map((s) => (
                <tr key={s.customer.id}>
                  <th scope="row">
                    <a href={`/customers/${encodeURIComponent(s.customer.id)}`} onClick={onLinkClick}>
                      {s.customer.id}
                    </a>
                  </th>
                  <td class="num">{formatAmount(s.expiring_soon)}</td>
                  <td>{formatTime(s.next_expiry?.at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {expiring.length === 0 && <p class="muted">Nothing expires within a week.</p>}
        </div>
      </div>
    </section>
  );
}
