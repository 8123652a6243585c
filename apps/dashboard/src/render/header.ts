import type { ConnectionStatus } from '../connection.js';
import { DASH, fmtDuration, fmtInt, fmtNum, fmtPct, fmtRate } from '../format.js';
import { progress, totalSteps, workerCounts, type DashboardState } from '../state.js';
import { byId, setText } from './dom.js';

/** Connection state as shown in the header. */
export interface ConnView {
  status: ConnectionStatus;
  retryInMs?: number;
}

/** The sticky header: run id, status, connection, key figures, progress bar. */
export class Header {
  private readonly e = {
    runId: byId('run-id'),
    status: byId('run-status'),
    conn: byId('conn'),
    step: byId('kpi-step'),
    epoch: byId('kpi-epoch'),
    loss: byId('kpi-loss'),
    acc: byId('kpi-acc'),
    rate: byId('kpi-rate'),
    workers: byId('kpi-workers'),
    progress: byId('progress'),
    bar: byId('progress-bar'),
    progressText: byId('progress-text'),
  };

  render(s: DashboardState, conn: ConnView, now: number): void {
    const e = this.e;
    setText(e.runId, s.runId ?? 'waiting for a run…');
    setText(e.status, s.status);
    e.status.className = `badge status-${s.status}`;
    const connText =
      conn.status === 'live' ? 'live' : conn.status === 'reconnecting' ? `reconnecting${conn.retryInMs !== undefined ? ` in ${Math.ceil(conn.retryInMs / 1000)} s` : '…'}` : conn.status === 'connecting' ? 'connecting…' : 'disconnected';
    setText(e.conn, connText);
    e.conn.className = `conn conn-${conn.status}`;
    const total = totalSteps(s);
    setText(e.step, s.lastStep || s.finished ? `${fmtInt(s.step)}${total !== null ? ` / ${fmtInt(total)}` : ''}` : DASH);
    const epochs = typeof s.config?.epochs === 'number' && s.config.steps === undefined ? ` / ${s.config.epochs}` : '';
    setText(e.epoch, s.lastStep ? `${s.epoch + 1}${epochs}` : DASH);
    setText(e.loss, fmtNum(s.lastStep?.loss ?? null));
    const acc = s.finished?.testAccuracy ?? s.lastEval?.accuracy ?? null;
    setText(e.acc, acc === null ? (s.lastEval ? fmtNum(s.lastEval.loss) + ' (loss)' : DASH) : fmtPct(acc));
    setText(e.rate, s.lastStep ? fmtRate(s.lastStep.samplesPerSec).replace('/s', '') : DASH);
    const c = workerCounts(s);
    setText(e.workers, s.workers.size ? `${c.live}${c.dead ? ` (${c.dead} dead)` : ''}` : DASH);
    const p = progress(s);
    e.progress.classList.toggle('indeterminate', p === null && s.status === 'running');
    e.progress.classList.toggle('done', s.status === 'finished');
    e.bar.style.width = `${Math.round((p ?? 0) * 1000) / 10}%`;
    e.progress.setAttribute('aria-valuenow', p === null ? '' : String(Math.round(p * 100)));
    const elapsed = s.startedAt !== null ? (s.status === 'finished' ? (s.lastEventT ?? now) : now) - s.startedAt : null;
    const parts = [p !== null ? `${(p * 100).toFixed(1)} %` : s.status === 'running' ? 'total unknown' : '', elapsed !== null ? fmtDuration(elapsed) : ''];
    if (p !== null && p > 0 && p < 1 && elapsed !== null && s.status === 'running') parts.push(`ETA ${fmtDuration((elapsed * (1 - p)) / p)}`);
    setText(e.progressText, parts.filter(Boolean).join(' · ') || DASH);
    document.title = s.runId ? `${s.status === 'finished' ? '✓' : `${s.step}`} · dptrain ${s.runId}` : 'dptrain';
  }
}
