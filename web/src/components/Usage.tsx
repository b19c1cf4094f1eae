import { useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import { compare, formatAmount, sum, toChartNumber } from '../decimal';
import { formatDate, formatTime } from '../format';
import { useLoad } from '../hooks';
import { Chart } from './Chart';

type Meter = Schemas['Meter'];
type Window = 'day' | 'hour';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** How far back each bucket size looks: 30 days by day, 48 hours by hour. */
const SPAN: Record<Window, number> = { day: 30 * DAY, hour: 48 * HOUR };
/** Rows read at most per chart (pages of 1000); beyond, the chart says it is partial. */
const MAX_ROWS = 5000;
/** Groups drawn at most; the rest are summed as "other". */
const MAX_GROUPS = 6;
const COLORS = ['#2f6fb3', '#c2571a', '#2e7d32', '#8e44ad', '#b58900', '#00838f', '#6d6d6d'];
const OTHER = 'other';
const NONE = '(none)';

/** One meter's usage for a customer, by window and (optionally) one group key, every page up to {@link MAX_ROWS}. */
async function loadUsage(meterId: string, customerId: string, window: Window, groupBy: string) {
  const now = Date.now();
  const start =
    window === 'day' ? Math.floor((now - SPAN.day) / DAY) * DAY : Math.floor((now - SPAN.hour) / HOUR) * HOUR;
  const rows: Schemas['MeterUsage']['data'] = [];
  let cursor: string | null = null;
  do {
    const query: Record<string, string> = {
      customer_id: customerId,
      from: new Date(start).toISOString(),
      window,
      limit: '1000',
    };
    if (groupBy) query.group_by = groupBy;
    if (cursor) query.cursor = cursor;
    const page = await api().GET('/v1/meters/{id}/usage', { params: { path: { id: meterId }, query } });
    rows.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && rows.length < MAX_ROWS);
  return { rows, complete: cursor === null };
}

/** Buckets × groups: the largest groups by total, the rest as "other"; values exact decimal strings. */
export function stackUsage(
  rows: readonly { window_start: string; value: string; group: Record<string, string | null> }[],
  groupBy: string,
) {
  const groupOf = (r: { group: Record<string, string | null> }) =>
    groupBy ? (r.group[groupBy] ?? NONE) : meterTotal;
  const totals = new Map<string, string[]>();
  for (const r of rows) totals.set(groupOf(r), [...(totals.get(groupOf(r)) ?? []), r.value]);
  const ranked = [...totals.entries()]
    .map(([g, values]) => ({ g, total: sum(values) }))
    .sort((a, b) => compare(b.total, a.total) || (a.g < b.g ? -1 : 1));
  const shown =
    ranked.length > MAX_GROUPS ? ranked.slice(0, MAX_GROUPS - 1).map((r) => r.g) : ranked.map((r) => r.g);
  const groups = ranked.length > shown.length ? [...shown, OTHER] : shown;
  const buckets = [...new Set(rows.map((r) => r.window_start))].sort();
  const cell = new Map<string, string[]>();
  for (const r of rows) {
    const g = shown.includes(groupOf(r)) ? groupOf(r) : OTHER;
    const k = `${r.window_start}\u0000${g}`;
    cell.set(k, [...(cell.get(k) ?? []), r.value]);
  }
  const values = buckets.map((b) => groups.map((g) => sum(cell.get(`${b}\u0000${g}`) ?? [])));
  return { buckets, groups, values };
}
const meterTotal = 'total';

/**
 * One meter's usage for a customer, stacked by a group key (one of the meter's dimensions) per
 * day or hour, with the exact figures in a table beside the chart.
 */
export function MeterUsage({ meter, customerId }: { meter: Meter; customerId: string }) {
  const keys = Object.keys(meter.group_by).sort();
  const [window, setWindow] = useState<Window>('day');
  const [groupBy, setGroupBy] = useState(keys[0] ?? '');
  const loaded = useLoad(
    () => loadUsage(meter.id, customerId, window, groupBy),
    [meter.id, customerId, window, groupBy],
  );
  const stacked = loaded.data ? stackUsage(loaded.data.rows, groupBy) : null;
  const label = (b: string) => (window === 'day' ? formatDate(b) : formatTime(b));
  // Stacked bars: series k draws the sum of groups k…n, so the first (tallest) is drawn first and
  // each later one covers the part below it.
  const cumulative = stacked
    ? stacked.groups.map((_, k) =>
        stacked.values.map((row) => row.slice(k).reduce((s, v) => s + toChartNumber(v), 0)),
      )
    : [];
  const id = `usage-${meter.id}`;
  return (
    <div class="usage" data-testid={id}>
      <h3 id={`${id}-title`}>{meter.id}</h3>
      <div class="toolbar">
        <label class="inline">
          Per{' '}
          <select
            name={`${id}-window`}
            value={window}
            onChange={(e) => setWindow((e.target as HTMLSelectElement).value as Window)}
          >
            <option value="day">day (30 days)</option>
            <option value="hour">hour (48 hours)</option>
          </select>
        </label>
        <label class="inline">
          Group by{' '}
          <select
            name={`${id}-group`}
            value={groupBy}
            onChange={(e) => setGroupBy((e.target as HTMLSelectElement).value)}
          >
            <option value="">nothing</option>
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      {loaded.error && (
        <p role="alert" class="error">
          {loaded.error}
        </p>
      )}
      {loaded.data && !loaded.data.complete && <p class="muted">Showing the first {MAX_ROWS} rows.</p>}
      {stacked && stacked.buckets.length === 0 && <p class="muted">No usage.</p>}
      {stacked && stacked.buckets.length > 0 && (
        <>
          <Chart
            title={`Usage of meter ${meter.id} per ${window}${groupBy ? `, stacked by ${groupBy}` : ''}`}
            xs={stacked.buckets.map((b) => Date.parse(b) / 1000)}
            series={stacked.groups.map((g, k) => ({
              label: g,
              values: cumulative[k]!,
              color: COLORS[k % COLORS.length]!,
              bars: true,
            }))}
            height={180}
          />
          <details>
            <summary>Usage of {meter.id} as a table</summary>
            <div class="table-wrap">
              <table data-testid={`${id}-table`}>
                <thead>
                  <tr>
                    <th scope="col">{window === 'day' ? 'Day' : 'Hour'}</th>
                    {stacked.groups.map((g) => (
                      <th key={g} scope="col" class="num">
                        {g}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {stacked.buckets.map((b, i) => (
                    <tr key={b}>
                      <th scope="row">{label(b)}</th>
                      {stacked.values[i]!.map((v, k) => (
                        <td key={stacked.groups[k]} class="num" data-group={stacked.groups[k]} data-value={v}>
                          {formatAmount(v)}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </div>
  );
}
