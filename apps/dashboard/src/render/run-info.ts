import { flattenConfig, fmtBytes, fmtClock, fmtInt, fmtNum, fmtPct } from '../format.js';
import type { DashboardState } from '../state.js';
import { byId, el } from './dom.js';

/** The run panel: configuration, model, checkpoint status and the final result. */
export class RunInfoView {
  private readonly root = byId('run-info');
  private shown = '';

  render(s: DashboardState): void {
    const key = `${s.runId}|${s.startedAt}|${s.checkpoints.count}|${s.finished?.seq ?? ''}`;
    if (key === this.shown) return;
    this.shown = key;
    if (s.config === null) {
      this.root.replaceChildren(el('p', 'muted', 'No run yet.'));
      return;
    }
    const parts: Node[] = [];
    if (s.model) {
      const layers = s.model.layers.map((l) => `${l.units} ${l.activation}${l.dropout ? ` (dropout ${l.dropout})` : ''}`);
      parts.push(el('h3', undefined, 'Model'), el('div', 'model', `${s.model.inputSize} → ${layers.join(' → ')}`));
      parts.push(el('div', 'muted', `loss ${s.model.loss} · ${fmtInt(s.paramCount)} parameters`));
    }
    parts.push(el('h3', undefined, 'Checkpoint'));
    const ck = s.checkpoints.last;
    parts.push(
      ck
        ? el('div', undefined, [`${s.checkpoints.count} written; last at step ${fmtInt(ck.step)} (${fmtBytes(ck.bytes)}, ${fmtClock(ck.t)})`, el('div', 'model', ck.path)])
        : el('div', 'muted', 'none yet'),
    );
    if (s.finished) {
      const f = s.finished;
      const bits = [`finished at step ${fmtInt(f.step)}`];
      if (f.testLoss !== undefined) bits.push(`test loss ${fmtNum(f.testLoss)}`);
      if (f.testAccuracy !== undefined) bits.push(`test accuracy ${fmtPct(f.testAccuracy)}`);
      parts.push(el('div', 'final', bits.join(' · ')));
    }
    const dl = el('dl');
    for (const [k, v] of flattenConfig(s.config)) dl.append(el('dt', undefined, k), el('dd', undefined, v));
    parts.push(el('h3', undefined, 'Configuration'), dl);
    this.root.replaceChildren(...parts);
  }
}
