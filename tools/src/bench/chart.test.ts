import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChartInput, CHART_PHASES, niceCeil, phaseSegments, scalingHtml, scalingSvg, writeChart } from './chart.js';

/** A tiny XML well-formedness check: tags balance and nest, attribute values are quoted, '&' only starts an entity. */
function expectWellFormed(doc: string): void {
  const stack: string[] = [];
  const body = doc.replace(/^<\?xml[^>]*\?>\s*/, '').replace(/^<!DOCTYPE html>\s*/, '');
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of body.matchAll(tag)) {
    expect(body.slice(last, m.index), `text before <${m[1]}${m[2]}>`).not.toMatch(/[<>]/);
    last = m.index + m[0].length;
    if (m[1]) expect(stack.pop(), `closing </${m[2]}>`).toBe(m[2]);
    else if (!m[4]) stack.push(m[2]);
  }
  expect(body.slice(last).trim()).toBe('');
  expect(stack).toEqual([]);
  expect(body).not.toMatch(/&(?!amp;|lt;|gt;|quot;|#39;)/);
}

const count = (s: string, re: RegExp) => [...s.matchAll(re)].length;

const input: ChartInput = {
  title: 'scaling <W> & friends',
  notes: ['2 shared cores', 'batch 512'],
  points: [
    { workers: 1, samplesPerSec: 8123, samplesPerSecRange: [7000, 9000], efficiency: 1, phases: { computeMs: 40, waitMs: 6, reduceMs: 0.5, updateMs: 2, broadcastMs: 2, totalMs: 53.5 } },
    { workers: 2, samplesPerSec: 12456, samplesPerSecRange: [11000, 13000], efficiency: 0.77, phases: { computeMs: 22, waitMs: 12, reduceMs: 1.5, updateMs: 2, broadcastMs: 2.5, totalMs: 41 } },
    { workers: 4, samplesPerSec: 13789, efficiency: 0.42, phases: { computeMs: 12, waitMs: 20, reduceMs: 3, updateMs: 2, broadcastMs: 4, totalMs: 45 } },
  ],
};

describe('scalingSvg', () => {
  const svg = scalingSvg(input);

  it('is well-formed SVG with the title escaped', () => {
    expectWellFormed(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('scaling &lt;W&gt; &amp; friends');
  });

  it('draws one samples/s point and one efficiency point per worker count, and a range only where given', () => {
    expect(count(svg, /<circle class="pt-sps"/g)).toBe(3);
    expect(count(svg, /<circle class="pt-eff"/g)).toBe(3);
    expect(count(svg, /<line class="range"/g)).toBe(2);
    expect(count(svg, /<polyline class="line-sps" points="[^"]+"/g)).toBe(1);
    const pts = /<polyline class="line-sps" points="([^"]+)"/.exec(svg)![1].split(' ');
    expect(pts).toHaveLength(3);
  });

  it('marks the host ceiling where given (at the 1-worker rate × the ceiling), and says what the mark is', () => {
    expect(count(svg, /class="pt-ceiling"/g)).toBe(0);
    expect(svg).not.toContain('host ceiling');
    const withCeiling = scalingSvg({ ...input, points: input.points.map((p, i) => (i === 0 ? p : { ...p, ceiling: i === 1 ? 1.8 : 3.2 })) });
    expectWellFormed(withCeiling);
    expect(count(withCeiling, /<path class="pt-ceiling"/g)).toBe(2);
    expect(withCeiling).toContain('>2 workers: host ceiling 1.80× one process = 14,621 samples/s<');
    expect(withCeiling).toContain('>4 workers: host ceiling 3.20× one process = 25,994 samples/s<');
    expect(withCeiling).toContain('▲ host ceiling');
    // the axis makes room for the highest mark: its apex lies inside the plot
    const apex = Math.min(...[...withCeiling.matchAll(/<path class="pt-ceiling" d="M[\d.]+,([\d.]+)/g)].map((m) => Number(m[1])));
    expect(apex).toBeGreaterThan(0);
    // relative to one process: not drawn when the smallest count is not 1 worker
    const noBase = scalingSvg({ ...input, points: input.points.slice(1).map((p) => ({ ...p, ceiling: 2 })) });
    expect(count(noBase, /class="pt-ceiling"/g)).toBe(0);
  });

  it('shows the values and the worker counts', () => {
    for (const v of ['8,123', '12,456', '13,789', '0.77', '0.42', '53.5', '41.0', '45.0']) expect(svg).toContain(`>${v}<`);
    for (const w of [1, 2, 4]) expect(svg).toContain(`>${w} workers: `);
  });

  it('stacks one bar segment per phase per worker count, heights proportional to the values', () => {
    expect(count(svg, /<rect class="bar-seg"/g)).toBe(3 * CHART_PHASES.length);
    const h = (w: number, phase: string) => {
      const re = new RegExp(`<rect class="bar-seg" data-phase="${phase}"[^>]* height="([\\d.]+)"[^>]*><title>${w} workers:`);
      return Number(re.exec(svg)![1]);
    };
    expect(h(1, 'computeMs') / h(1, 'waitMs')).toBeCloseTo(40 / 6, 1);
    expect(h(2, 'computeMs') / h(4, 'computeMs')).toBeCloseTo(22 / 12, 1);
    expect(h(1, 'otherMs') / h(1, 'updateMs')).toBeCloseTo(3 / 2, 1);
  });

  it('refuses an empty input', () => {
    expect(() => scalingSvg({ title: 'x', points: [] })).toThrow(ConfigError);
  });
});

describe('scalingHtml', () => {
  it('is a self-contained well-formed page: inline SVG, notes, and the table', () => {
    const html = scalingHtml(input, { header: ['workers', 'samples/s'], rows: [['1', '8,123'], ['2', '12,456'], ['4', '13,789']] });
    expectWellFormed(html);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(count(html, /<svg /g)).toBe(1);
    expect(count(html, /<tr>/g)).toBe(4);
    expect(html).toContain('<td>12,456</td>');
    expect(html).toContain('<p>2 shared cores</p>');
    expect(html).not.toMatch(/\b(src|href)=/);
  });
});

describe('helpers', () => {
  it('niceCeil rounds up to 1, 2, 2.5 or 5 × 10^k', () => {
    expect([0.9, 1, 1.1, 2.2, 4, 7, 13_000, 0.07].map(niceCeil)).toEqual([1, 1, 2, 2.5, 5, 10, 20_000, 0.1]);
  });

  it('phaseSegments puts the unexplained rest of the step in "other", never negative', () => {
    expect(phaseSegments(input.points[0].phases).otherMs).toBeCloseTo(3, 12);
    expect(phaseSegments({ computeMs: 5, waitMs: 5, reduceMs: 0, updateMs: 0, broadcastMs: 0, totalMs: 9 }).otherMs).toBe(0);
  });
});

describe('writeChart', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dptrain-chart-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes SVG or HTML by extension', async () => {
    await writeChart(join(dir, 'a.svg'), input);
    await writeChart(join(dir, 'a.html'), input);
    const svg = await readFile(join(dir, 'a.svg'), 'utf8');
    const html = await readFile(join(dir, 'a.html'), 'utf8');
    expect(svg.startsWith('<?xml')).toBe(true);
    expectWellFormed(svg);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  });

  it('refuses other extensions, naming the flag', async () => {
    await expect(writeChart(join(dir, 'a.png'), input)).rejects.toThrow(/--out: expected a file name ending in \.svg or \.html/);
  });
});
