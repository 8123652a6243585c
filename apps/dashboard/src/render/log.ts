import { fmtClock } from '../format.js';
import type { DashboardState } from '../state.js';
import { byId, el, setText } from './dom.js';

/** The event log, newest first. Re-rendered only when an entry was added. */
export class EventLogView {
  private readonly list = byId('log');
  private readonly summary = byId('log-summary');
  private shownSeq = -2;
  private shownLen = -1;

  render(s: DashboardState): void {
    const last = s.log.length ? s.log[s.log.length - 1].seq : -1;
    if (last === this.shownSeq && s.log.length === this.shownLen) return;
    this.shownSeq = last;
    this.shownLen = s.log.length;
    const items = [];
    for (let i = s.log.length - 1; i >= 0; i--) {
      const entry = s.log[i];
      const li = el('li', entry.level, [el('time', undefined, fmtClock(entry.t)), el('span', 'lvl'), el('span', 'msg', entry.text)]);
      li.dataset.kind = entry.kind;
      items.push(li);
    }
    if (items.length === 0) items.push(el('li', 'muted', 'no events yet'));
    this.list.replaceChildren(...items);
    const errors = s.errors ? ` · ${s.errors} error${s.errors > 1 ? 's' : ''}` : '';
    const moved = s.reassignments ? ` · ${s.reassignments} reassignment${s.reassignments > 1 ? 's' : ''}` : '';
    setText(this.summary, s.log.length ? `${s.log.length} shown${errors}${moved}` : '');
  }
}
