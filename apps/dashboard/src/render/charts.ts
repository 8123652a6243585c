import uPlot from 'uplot';
import { countPoints, stackSeries } from '../stack.js';
import { cssVar, el } from './dom.js';

/** One plotted line. */
export interface LineSpec {
  label: string;
  color: string;
  /** Legend formatting of a value. */
  fmt: (v: number) => string;
  dash?: number[];
  /** Draw a dot on every point (sparse series such as evaluations). */
  points?: boolean;
}

/** A chart: lines over the step axis, optionally stacked as areas. */
export interface ChartSpec {
  lines: LineSpec[];
  stacked?: boolean;
  /** Axis tick formatting. */
  axisFmt?: (v: number) => string;
  /** Text shown while there is no data. */
  emptyText: string;
  height?: number;
}

function alpha(hex: string, a: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

function lastValue(y: readonly (number | null)[]): number | null {
  for (let i = y.length - 1; i >= 0; i--) if (y[i] !== null && y[i] !== undefined) return y[i];
  return null;
}

/**
 * A uPlot chart that fills its container's width (ResizeObserver) and shows a
 * placeholder while empty. The container gets `data-points` = number of x values and
 * `data-series-points` = non-null points per line (comma separated), for tests.
 */
export class Chart {
  readonly plot: uPlot;
  private readonly empty: HTMLElement;
  private raw: (number | null)[][] = [];
  private readonly ro: ResizeObserver;

  constructor(
    private readonly container: HTMLElement,
    private readonly spec: ChartSpec,
  ) {
    const axis = cssVar('--muted', '#667085');
    const grid = cssVar('--grid', '#eceef2');
    const height = spec.height ?? 220;
    const raw = () => this.raw;
    const series: uPlot.Series[] = [
      { label: 'step', value: (u, v) => (v === null || v === undefined ? (u.data[0].length ? String(u.data[0][u.data[0].length - 1]) : '–') : String(v)) },
      ...spec.lines.map((l, k): uPlot.Series => ({
        label: l.label,
        stroke: l.color,
        width: 1.5,
        dash: l.dash,
        spanGaps: true,
        fill: spec.stacked && k === 0 ? alpha(l.color, 0.35) : undefined,
        points: l.points ? { show: true, size: 5, fill: l.color } : { show: false },
        // stacked charts show each phase's own value in the legend, not the running sum
        // (and, with the cursor off the plot, the latest value)
        value: (_u, v, si, di) => {
          const own = raw()[si - 1] ?? [];
          const x = di === null || di === undefined ? lastValue(own) : spec.stacked ? own[di] : v;
          return x === null || x === undefined ? '–' : l.fmt(x);
        },
      })),
    ];
    const opts: uPlot.Options = {
      width: Math.max(200, container.clientWidth),
      height,
      series,
      scales: { x: { time: false } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 36 },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56, values: spec.axisFmt ? (_u, vals) => vals.map((v) => spec.axisFmt!(v)) : undefined },
      ],
      bands: spec.stacked ? spec.lines.slice(1).map((l, k) => ({ series: [k + 2, k + 1] as [number, number], fill: alpha(l.color, 0.35) })) : undefined,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    this.plot = new uPlot(opts, [[], ...spec.lines.map(() => [])], container);
    this.empty = el('div', 'empty', spec.emptyText);
    container.append(this.empty);
    container.dataset.points = '0';
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(container);
  }

  private resize(): void {
    const w = Math.floor(this.container.clientWidth);
    const h = this.spec.height ?? 220;
    if (w > 0 && (w !== this.plot.width || h !== this.plot.height)) this.plot.setSize({ width: w, height: h });
  }

  /** Replace the data: x values and one array per line (same length). */
  update(x: number[], ys: (number | null)[][]): void {
    this.raw = ys;
    const shown = this.spec.stacked ? stackSeries(ys) : ys;
    this.plot.setData([x, ...shown] as uPlot.AlignedData);
    const counts = ys.map(countPoints);
    this.empty.hidden = counts.some((n) => n > 0);
    this.container.dataset.points = String(x.length);
    this.container.dataset.seriesPoints = counts.join(',');
  }

  destroy(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}
