import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** One line (or bars) of a chart. */
export interface ChartSeries {
  readonly label: string;
  readonly values: readonly (number | null)[];
  readonly color: string;
  readonly dash?: readonly number[];
  readonly bars?: boolean;
  readonly fill?: string;
}

/** A vertical line at an instant (a grant arriving, an expiry). */
export interface ChartMarker {
  readonly at: number;
  readonly label: string;
  readonly color: string;
}

export interface ChartProps {
  /** What the chart shows, for screen readers (the figures are also in tables next to it). */
  readonly title: string;
  /** x values in seconds since the epoch. */
  readonly xs: readonly number[];
  readonly series: readonly ChartSeries[];
  /** Pairs of series indexes (1-based, as uPlot counts) whose space between is filled. */
  readonly bands?: readonly { readonly upper: number; readonly lower: number; readonly fill: string }[];
  readonly markers?: readonly ChartMarker[];
  readonly height?: number;
  readonly testId?: string;
}

/** A uPlot chart that follows its container's width (phone to desktop). */
export function Chart(props: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const markers = props.markers ?? [];
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: props.height ?? 260,
      scales: { x: { time: true } },
      legend: { show: true },
      series: [
        {},
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.dash ? { dash: [...s.dash] } : {}),
          ...(s.fill ? { fill: s.fill } : {}),
          ...(s.bars ? { paths: uPlot.paths.bars!({ size: [0.8, 40] }), fill: s.color } : {}),
          points: { show: false },
          spanGaps: false,
        })),
      ],
      bands: (props.bands ?? []).map((b) => ({
        series: [b.upper, b.lower] as [number, number],
        fill: b.fill,
      })),
      axes: [{}, { size: 70 }],
      hooks: {
        draw: [
          (u: uPlot) => {
            const ctx = u.ctx;
            ctx.save();
            for (const m of markers) {
              const x = u.valToPos(m.at, 'x', true);
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.strokeStyle = m.color;
              ctx.setLineDash([4, 4]);
              ctx.lineWidth = 1.5 * devicePixelRatio;
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.fillStyle = m.color;
              ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
              ctx.fillText(m.label, x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
            }
            ctx.restore();
          },
        ],
      },
    };
    const data = [
      props.xs as number[],
      ...props.series.map((s) => s.values as (number | null)[]),
    ] as uPlot.AlignedData;
    const plot = new uPlot(options, data, element);
    const observer = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(280, element.clientWidth), height: options.height }),
    );
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [props]);
  return <div class="chart" ref={host} role="img" aria-label={props.title} data-testid={props.testId} />;
}
