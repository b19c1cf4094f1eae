import type { Schemas } from '../api';
import { toChartNumber } from '../decimal';
import { Chart, type ChartMarker } from './Chart';

/**
 * The burn-down chart: the available balance over the past days (balance-series), then the
 * forecast ahead — its median as a dashed line inside the p10–p90 band — with grants (green) and
 * expiries (red) marked.
 */
export function BurnDownChart({
  series,
  forecast,
  grants,
  nowAvailable,
  now,
}: {
  series: Schemas['BalanceSeries'];
  forecast: Schemas['Forecast'] | null;
  grants: readonly Schemas['Grant'][];
  nowAvailable: string;
  now: number;
}) {
  const past = series.points.map((p) => ({ x: Date.parse(p.at) / 1000, v: toChartNumber(p.available) }));
  past.push({ x: now / 1000, v: toChartNumber(nowAvailable) });
  const band = (forecast?.balance_band ?? []).map((b) => ({
    x: Date.parse(b.at) / 1000,
    p10: toChartNumber(b.p10),
    p50: toChartNumber(b.p50),
    p90: toChartNumber(b.p90),
  }));
  const xs = [...past.map((p) => p.x), ...band.map((b) => b.x)];
  const pastCount = past.length;
  const history = xs.map((_, i) => (i < pastCount ? past[i]!.v : null));
  const nowValue = toChartNumber(nowAvailable);
  const ahead = (pick: (b: (typeof band)[number]) => number) =>
    xs.map((_, i) => (i === pastCount - 1 ? nowValue : i >= pastCount ? pick(band[i - pastCount]!) : null));
  const from = xs[0] ?? 0;
  const to = xs.at(-1) ?? 0;
  const markers: ChartMarker[] = [];
  for (const g of grants) {
    const effective = Date.parse(g.effective_at) / 1000;
    if (effective >= from && effective <= to)
      markers.push({ at: effective, label: `+${g.amount}`, color: '#1a7f37' });
    if (g.expires_at) {
      const exp = Date.parse(g.expires_at) / 1000;
      if (exp >= from && exp <= to) markers.push({ at: exp, label: 'expiry', color: '#b3261e' });
    }
  }
  return (
    <Chart
      title="Available balance over the last 30 days and the forecast ahead, with its 10–90 % band"
      testId="burndown-chart"
      xs={xs}
      series={[
        { label: 'available', values: history, color: '#2f6fb3' },
        { label: 'forecast p50', values: ahead((b) => b.p50), color: '#6b4fb3', dash: [6, 4] },
        { label: 'p90', values: ahead((b) => b.p90), color: 'rgba(107,79,179,0.35)' },
        { label: 'p10', values: ahead((b) => b.p10), color: 'rgba(107,79,179,0.35)' },
      ]}
      bands={[{ upper: 3, lower: 4, fill: 'rgba(107,79,179,0.15)' }]}
      markers={markers}
    />
  );
}
