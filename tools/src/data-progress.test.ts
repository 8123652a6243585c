import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { dataProgress } from './data-progress.js';

function sink(tty: boolean) {
  let text = '';
  const w = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  (w as { isTTY?: boolean }).isTTY = tty;
  (w as { columns?: number }).columns = 100;
  return { w, text: () => text };
}

describe('dataProgress', () => {
  it('prints one line at the start and one at the end when not a terminal', () => {
    const s = sink(false);
    let t = 1000;
    const p = dataProgress('mnist', s.w, () => t);
    p.onProgress('parse', 3, 10);
    t = 1250;
    p.done();
    p.done();
    expect(s.text()).toBe('loading mnist …\nloaded mnist in 250 ms\n');
  });

  it('draws a bar with the phase and counts on a terminal', () => {
    const s = sink(true);
    const p = dataProgress('csv:x.csv', s.w, () => 0);
    p.onProgress('read', 1, 2);
    p.onProgress('read', 2, 2);
    p.done();
    expect(s.text()).toMatch(/loading csv:x\.csv read \|.*\| [12]\/2/);
    expect(s.text()).toMatch(/loaded csv:x\.csv in 0 ms\n$/);
  });
});
