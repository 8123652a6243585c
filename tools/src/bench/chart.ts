/**
 * The scaling chart: samples/s and parallel efficiency against the number of workers,
 * and the step time of each worker count broken down by phase. Written as one plain
 * SVG or as a self-contained HTML page (inline SVG and a table, no external assets)
 * that opens in any browser.
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError } from '@dptrain/core';

/** The step phases drawn as bar segments, bottom to top; 'otherMs' is the rest of totalMs. */
export const CHART_PHASES = ['computeMs', 'waitMs', 'reduceMs', 'updateMs', 'broadcastMs', 'otherMs'] as const;
export type ChartPhase = (typeof CHART_PHASES)[number];

const PHASE_LABEL: Record<ChartPhase, string> = {
  computeMs: 'compute',
  waitMs: 'wait',
  reduceMs: 'reduce',
  updateMs: 'update',
  broadcastMs: 'broadcast',
  otherMs: 'other',
};
const PHASE_COLOR: Record<ChartPhase, string> = {
  computeMs: '#4e79a7',
  waitMs: '#f28e2b',
  reduceMs: '#59a14f',
  updateMs: '#e15759',
  broadcastMs: '#b07aa1',
  otherMs: '#bab0ac',
};

/** One worker count of a scaling test. */
export interface ChartPoint {
  workers: number;
  /** Median samples/s. */
  samplesPerSec: number;
  /** Smallest and largest samples/s over the repeats. */
  samplesPerSecRange?: [number, number];
  /** Speed-up over the smallest worker count, per worker (1 = perfect scaling). */
  efficiency: number;
  /**
   * The host ceiling for this many workers: the speed-up the same compute reaches in that many
   * processes at once over one process, with no communication (drawn when the first point is
   * 1 worker, as a marker at its samples/s × the ceiling).
   */
  ceiling?: number;
  /** Median step phases, ms; totalMs is the whole step (the rest shows as 'other'). */
  phases: { computeMs: number; waitMs: number; reduceMs: number; updateMs: number; broadcastMs: number; totalMs: number };
}

/** What the chart shows. */
export interface ChartInput {
  title: string;
  /** Lines under the title (machine, configuration). */
  notes?: string[];
  points: ChartPoint[];
}

/** A plain table shown under the chart in the HTML page. */
export interface ChartTable {
  header: string[];
  rows: string[][];
}

/** Escape text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const num = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const px = (v: number) => (Math.round(v * 10) / 10).toString();

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ v (v > 0), else 1. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

/** The bar segments of one point: each phase, plus 'other' = totalMs minus the named phases (never < 0). */
export function phaseSegments(p: ChartPoint['phases']): Record<ChartPhase, number> {
  const named = p.computeMs + p.waitMs + p.reduceMs + p.updateMs + p.broadcastMs;
  return { computeMs: p.computeMs, waitMs: p.waitMs, reduceMs: p.reduceMs, updateMs: p.updateMs, broadcastMs: p.broadcastMs, otherMs: Math.max(0, p.totalMs - named) };
}

const PANEL_W = 320;
const PANEL_H = 330;
const M = { left: 62, right: 14, top: 34, bottom: 76 };
const PLOT_W = PANEL_W - M.left - M.right;
const PLOT_H = PANEL_H - M.top - M.bottom;

/** Axes, grid and labels of one panel at x offset `ox`; returns the y mapping. */
function axes(out: string[], ox: number, title: string, yMax: number, xs: number[], labels: string[]): (v: number) => number {
  const tick = yMax / 5;
  const yDigits = tick >= 10 || Number.isInteger(tick) ? 0 : tick >= 1 ? 1 : 2;
  const y = (v: number) => M.top + PLOT_H - (v / yMax) * PLOT_H;
  out.push(`<g transform="translate(${ox},0)">`);
  out.push(`<text x="${M.left + PLOT_W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    out.push(`<line x1="${M.left}" x2="${M.left + PLOT_W}" y1="${px(y(v))}" y2="${px(y(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${px(y(v) + 4)}" text-anchor="end" font-size="11">${num(v, yDigits)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PLOT_H}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left + PLOT_W}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H}" stroke="#333"/>`);
  xs.forEach((x, i) => out.push(`<text x="${px(x)}" y="${M.top + PLOT_H + 16}" text-anchor="middle" font-size="11">${escapeXml(labels[i])}</text>`));
  out.push(`<text x="${M.left + PLOT_W / 2}" y="${M.top + PLOT_H + 33}" text-anchor="middle" font-size="12">workers</text>`);
  out.push('</g>');
  return y;
}

/**
 * The scaling chart as a standalone SVG document, with the title and notes drawn at the
 * top unless `heading` is false. Throws ConfigError for an empty input.
 */
export function scalingSvg(input: ChartInput, heading = true): string {
  const pts = input.points;
  if (pts.length === 0) throw new ConfigError('points', 'expected at least one worker count to chart');
  const width = 3 * PANEL_W;
  const head = heading ? 26 + 16 * (input.notes?.length ?? 0) : 0;
  const height = PANEL_H + head;
  const step = PLOT_W / pts.length;
  const xs = pts.map((_, i) => M.left + step * (i + 0.5));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`);
  out.push(`<title>${escapeXml(input.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  if (heading) {
    out.push(`<text x="10" y="20" font-size="16" font-weight="bold">${escapeXml(input.title)}</text>`);
    (input.notes ?? []).forEach((n, i) => out.push(`<text x="10" y="${38 + 16 * i}" font-size="12" fill="#555">${escapeXml(n)}</text>`));
  }
  out.push(`<g transform="translate(0,${head})">`);
  const labels = pts.map((p) => String(p.workers));

  // panel 1: samples/s, with the range over repeats and the ideal (linear) line
  const base = pts[0];
  const ideal = pts.map((p) => (base.samplesPerSec * p.workers) / base.workers);
  // the host ceiling in samples/s, where measured (relative to one process: so with a 1-worker baseline)
  const limit = pts.map((p) => (base.workers === 1 && p.ceiling !== undefined && p.ceiling > 0 ? base.samplesPerSec * p.ceiling : undefined));
  const spsMax = niceCeil(Math.max(...pts.map((p) => p.samplesPerSecRange?.[1] ?? p.samplesPerSec), ...ideal, ...limit.map((l) => l ?? 0)));
  const y1 = axes(out, 0, 'samples/s', spsMax, xs, labels);
  out.push('<g>');
  out.push(`<polyline class="ideal" points="${xs.map((x, i) => `${px(x)},${px(y1(ideal[i]))}`).join(' ')}" fill="none" stroke="#999" stroke-dasharray="4 3"/>`);
  out.push(`<polyline class="line-sps" points="${xs.map((x, i) => `${px(x)},${px(y1(pts[i].samplesPerSec))}`).join(' ')}" fill="none" stroke="#4e79a7" stroke-width="2"/>`);
  pts.forEach((p, i) => {
    if (p.samplesPerSecRange) {
      const [lo, hi] = p.samplesPerSecRange;
      out.push(`<line class="range" x1="${px(xs[i])}" x2="${px(xs[i])}" y1="${px(y1(lo))}" y2="${px(y1(hi))}" stroke="#4e79a7" stroke-width="1.5"><title>${p.workers} workers: ${num(lo)}–${num(hi)} samples/s</title></line>`);
    }
    out.push(`<circle class="pt-sps" cx="${px(xs[i])}" cy="${px(y1(p.samplesPerSec))}" r="4" fill="#4e79a7"><title>${p.workers} workers: ${num(p.samplesPerSec)} samples/s</title></circle>`);
    out.push(`<text class="val-sps" x="${px(xs[i] + 7)}" y="${px(y1(p.samplesPerSec) - 6)}" font-size="11">${num(p.samplesPerSec)}</text>`);
  });
  pts.forEach((p, i) => {
    const l = limit[i];
    if (l === undefined) return;
    const [x, y] = [xs[i], y1(l)];
    out.push(`<path class="pt-ceiling" d="M${px(x)},${px(y - 5)} L${px(x + 5)},${px(y + 4)} L${px(x - 5)},${px(y + 4)} Z" fill="#f28e2b"><title>${p.workers} workers: host ceiling ${num(p.ceiling!, 2)}× one process = ${num(l)} samples/s</title></path>`);
  });
  const ceilingKey = limit.some((l) => l !== undefined) ? '; ▲ host ceiling (the compute alone in that many processes)' : '';
  out.push(`<text x="${M.left + 6}" y="${M.top + 12}" font-size="10" fill="#777">dashed: linear scaling${ceilingKey}</text>`);
  out.push('</g>');

  // panel 2: efficiency = speed-up per worker
  const effMax = Math.max(1.2, niceCeil(Math.max(...pts.map((p) => p.efficiency))));
  const y2 = axes(out, PANEL_W, 'efficiency (speed-up / workers)', effMax, xs, labels);
  out.push(`<g transform="translate(${PANEL_W},0)">`);
  out.push(`<line class="ideal" x1="${M.left}" x2="${M.left + PLOT_W}" y1="${px(y2(1))}" y2="${px(y2(1))}" stroke="#999" stroke-dasharray="4 3"/>`);
  out.push(`<polyline class="line-eff" points="${xs.map((x, i) => `${px(x)},${px(y2(pts[i].efficiency))}`).join(' ')}" fill="none" stroke="#59a14f" stroke-width="2"/>`);
  pts.forEach((p, i) => {
    out.push(`<circle class="pt-eff" cx="${px(xs[i])}" cy="${px(y2(p.efficiency))}" r="4" fill="#59a14f"><title>${p.workers} workers: efficiency ${num(p.efficiency, 2)}</title></circle>`);
    out.push(`<text class="val-eff" x="${px(xs[i] + 7)}" y="${px(y2(p.efficiency) - 6)}" font-size="11">${num(p.efficiency, 2)}</text>`);
  });
  out.push('</g>');

  // panel 3: step time by phase, stacked
  const segs = pts.map((p) => phaseSegments(p.phases));
  const tMax = niceCeil(Math.max(...segs.map((s) => CHART_PHASES.reduce((a, k) => a + s[k], 0))));
  const y3 = axes(out, 2 * PANEL_W, 'step time by phase (ms, medians)', tMax, xs, labels);
  out.push(`<g transform="translate(${2 * PANEL_W},0)">`);
  const bw = Math.min(44, step * 0.6);
  pts.forEach((p, i) => {
    let acc = 0;
    for (const k of CHART_PHASES) {
      const v = segs[i][k];
      const top = y3(acc + v);
      out.push(
        `<rect class="bar-seg" data-phase="${k}" x="${px(xs[i] - bw / 2)}" y="${px(top)}" width="${px(bw)}" height="${px(y3(acc) - top)}" fill="${PHASE_COLOR[k]}"><title>${p.workers} workers: ${PHASE_LABEL[k]} ${num(v, 2)} ms</title></rect>`,
      );
      acc += v;
    }
    out.push(`<text class="val-total" x="${px(xs[i])}" y="${px(y3(acc) - 4)}" text-anchor="middle" font-size="11">${num(p.phases.totalMs, 1)}</text>`);
  });
  CHART_PHASES.forEach((k, j) => {
    const lx = M.left + 8 + (j % 3) * 80;
    const ly = M.top + PLOT_H + 44 + Math.floor(j / 3) * 14;
    out.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${PHASE_COLOR[k]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly + 9}" font-size="10">${PHASE_LABEL[k]}</text>`);
  });
  out.push('</g>');
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n');
}

/** The scaling chart as a self-contained HTML page: title, notes, the inline SVG and (optionally) the table. */
export function scalingHtml(input: ChartInput, table?: ChartTable): string {
  const rows = table
    ? [
        '<table>',
        `<thead><tr>${table.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead>`,
        '<tbody>',
        ...table.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`),
        '</tbody>',
        '</table>',
      ]
    : [];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8"/>',
    `<title>${escapeXml(input.title)}</title>`,
    '<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin-top:16px;font-size:13px}' +
      'th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}p{color:#555;margin:2px 0}</style>',
    '</head>',
    '<body>',
    `<h1>${escapeXml(input.title)}</h1>`,
    ...(input.notes ?? []).map((n) => `<p>${escapeXml(n)}</p>`),
    '<div>',
    scalingSvg(input, false),
    '</div>',
    ...rows,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/**
 * Write the chart to `path`: a plain SVG for `.svg`, an HTML page for `.html` / `.htm`.
 * Any other extension is a ConfigError naming `flag`.
 */
export async function writeChart(path: string, input: ChartInput, table?: ChartTable, flag = '--out'): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.svg' && ext !== '.html' && ext !== '.htm') throw new ConfigError(flag, `expected a file name ending in .svg or .html, got ${JSON.stringify(path)}`);
  await writeFile(path, ext === '.svg' ? `<?xml version="1.0" encoding="UTF-8"?>\n${scalingSvg(input)}\n` : scalingHtml(input, table));
}
