import { fmtMs, fmtNum, fmtPct, fmtRate } from '../format.js';
import type { DashboardState } from '../state.js';
import { Chart } from './charts.js';
import { byId } from './dom.js';

export const COLORS = {
  train: '#2563eb',
  test: '#ea580c',
  rate: '#059669',
  compute: '#2563eb',
  wait: '#f59e0b',
  reduce: '#8b5cf6',
  update: '#10b981',
  broadcast: '#ec4899',
};

const compact = (v: number): string => {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toPrecision(3));
};

/** The four charts (loss, accuracy, throughput, step phases), fed from the state's series. */
export class ChartPanels {
  readonly loss = new Chart(byId('chart-loss'), {
    lines: [
      { label: 'train', color: COLORS.train, fmt: (v) => fmtNum(v) },
      { label: 'test', color: COLORS.test, fmt: (v) => fmtNum(v), points: true },
    ],
    axisFmt: compact,
    emptyText: 'waiting for the first step…',
  });
  readonly acc = new Chart(byId('chart-acc'), {
    lines: [
      { label: 'train', color: COLORS.train, fmt: (v) => fmtPct(v) },
      { label: 'test', color: COLORS.test, fmt: (v) => fmtPct(v), points: true },
    ],
    axisFmt: (v) => `${+(v * 100).toFixed(1)}%`,
    emptyText: 'no accuracy yet (none for regression losses)',
  });
  readonly rate = new Chart(byId('chart-rate'), {
    lines: [{ label: 'samples/s', color: COLORS.rate, fmt: (v) => fmtRate(v) }],
    axisFmt: compact,
    emptyText: 'waiting for the first step…',
  });
  readonly phases = new Chart(byId('chart-phases'), {
    lines: [
      { label: 'compute', color: COLORS.compute, fmt: fmtMs },
      { label: 'wait', color: COLORS.wait, fmt: fmtMs },
      { label: 'reduce', color: COLORS.reduce, fmt: fmtMs },
      { label: 'update', color: COLORS.update, fmt: fmtMs },
      { label: 'broadcast', color: COLORS.broadcast, fmt: fmtMs },
    ],
    stacked: true,
    axisFmt: compact,
    emptyText: 'waiting for the first step…',
  });

  render(s: DashboardState): void {
    const S = s.series;
    this.loss.update(S.step, [S.trainLoss, S.testLoss]);
    this.acc.update(S.step, [S.trainAcc, S.testAcc]);
    this.rate.update(S.step, [S.samplesPerSec]);
    this.phases.update(S.step, [S.computeMs, S.waitMs, S.reduceMs, S.updateMs, S.broadcastMs]);
  }
}
