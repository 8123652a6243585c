import { fmtAgo, fmtBytes, fmtInt, fmtMs, fmtRate } from '../format.js';
import { isStraggling, workerCounts, type DashboardState, type WorkerRow } from '../state.js';
import { byId, el, setText } from './dom.js';

/** The workers table: one row per worker ever seen, dead and straggling ones marked. */
export class WorkersTable {
  private readonly body = byId<HTMLTableElement>('workers').tBodies[0];
  private readonly summary = byId('workers-summary');

  /** `now`: the browser clock; once the run has finished, ages are frozen at its last event. */
  render(s: DashboardState, now: number): void {
    if (s.status === 'finished' && s.lastEventT !== null) now = s.lastEventT;
    const rows: HTMLTableRowElement[] = [];
    for (const w of s.workers.values()) rows.push(this.row(s, w, now));
    if (rows.length === 0) {
      const tr = el('tr', 'empty-row');
      const td = el('td', undefined, 'no workers yet');
      td.colSpan = 9;
      tr.append(td);
      rows.push(tr);
    }
    this.body.replaceChildren(...rows);
    const c = workerCounts(s);
    setText(this.summary, s.workers.size ? `${c.live} live · ${c.dead} dead · ${c.left} left` : '');
  }

  private row(s: DashboardState, w: WorkerRow, now: number): HTMLTableRowElement {
    const straggling = isStraggling(s, w);
    const cls = [w.state === 'dead' ? 'dead' : '', w.state === 'left' ? 'left' : '', straggling ? 'straggler' : ''].filter(Boolean).join(' ');
    const tr = el('tr', cls || undefined);
    tr.dataset.worker = w.workerId;
    tr.dataset.state = w.state;
    if (straggling) tr.dataset.straggler = 'true';
    const id = el('td', 'id', w.workerId);
    if (w.state === 'dead') id.append(el('span', 'tag tag-dead', 'dead'));
    if (straggling && w.straggler) {
      const tag = el('span', 'tag tag-straggler', 'straggler');
      tag.title = `step ${w.straggler.step}: ${fmtMs(w.straggler.computeMs)} vs median ${fmtMs(w.straggler.medianMs)}`;
      id.append(tag);
    }
    const state = el('td', undefined, el('span', `state state-${w.state}`, w.state));
    if (w.reason && (w.state === 'dead' || w.state === 'left')) state.append(el('span', 'reason', w.reason));
    if (w.lastError) state.title = w.lastError;
    const gone = w.state === 'dead' || w.state === 'left';
    const num = (text: string) => el('td', 'num', text);
    const host = el('td', undefined, w.host || '–');
    if (w.transport === 'shm' && !gone) {
      const tag = el('span', 'tag tag-shm', 'shm');
      tag.title = "payloads through shared memory with the coordinator (same host)";
      host.append(tag);
    }
    tr.append(
      id,
      host,
      state,
      num(gone ? '–' : fmtInt(w.leaves)),
      num(gone ? '–' : fmtMs(w.computeMs)),
      num(gone ? '–' : fmtRate(w.samplesPerSec)),
      num(fmtBytes(w.bytesIn)),
      num(fmtBytes(w.bytesOut)),
      num(w.lastHeartbeat === null ? '–' : fmtAgo(w.lastHeartbeat, now)),
    );
    return tr;
  }
}
