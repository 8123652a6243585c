import { Writable } from 'node:stream';
import { expect, test } from 'vitest';
import { Progress, formatSeconds } from './progress.js';

function sink(): { stream: NodeJS.WriteStream; lines: () => string[] } {
  let text = '';
  const w = new Writable({ write: (chunk, _enc, cb) => ((text += chunk.toString()), cb()) });
  return { stream: w as unknown as NodeJS.WriteStream, lines: () => text.split('\n').filter(Boolean) };
}

const step = (i: number) => ({ step: i, epoch: 0, loss: 0.5, accuracy: 0.75, samples: 100 });
const summary = { runId: 'r', steps: 10, epochs: 1, test: { loss: 0.25, accuracy: 0.9, samples: 50 }, checkpoint: 'runs/r/final.safetensors', wallMs: 1000, samplesPerSec: 1000, workers: 2 };

test('plain mode prints at most one line per interval, always the last step, and ends with the checkpoint', () => {
  const out = sink();
  let t = 0;
  const p = new Progress({ mode: 'plain', totalSteps: 10, intervalMs: 2000, out: out.stream, now: () => t });
  for (let i = 1; i <= 10; i++) {
    t += 500; // 0.5 s per step of 100 samples
    p.step(step(i));
  }
  p.summary(summary);
  const lines = out.lines();
  const steps = lines.filter((l) => l.startsWith('step '));
  expect(steps.map((l) => l.split(' ')[1])).toEqual(['1/10', '5/10', '9/10', '10/10']);
  expect(steps[2]).toMatch(/loss 0\.5000 {2}acc 75\.00% {2}200 samples\/s {2}ETA 1s$/);
  expect(lines[lines.length - 1]).toBe('checkpoint: runs/r/final.safetensors');
});

test('json mode writes only JSON objects to stdout; info lines go to stderr', () => {
  const out = sink();
  const err = sink();
  const p = new Progress({ mode: 'json', totalSteps: 2, out: out.stream, err: err.stream });
  p.listening('ws://127.0.0.1:1234');
  p.info('hello people');
  p.step(step(1));
  p.eval({ step: 1, epoch: 0, loss: 0.3, accuracy: null });
  p.summary(summary);
  const objs = out.lines().map((l) => JSON.parse(l));
  expect(objs.map((o) => o.kind)).toEqual(['listening', 'step', 'eval', 'summary']);
  expect(objs[3].checkpoint).toBe('runs/r/final.safetensors');
  expect(err.lines()).toEqual(['hello people']);
});

test('the dashboard address and an interruption: lines on stderr, JSON lines in json mode', () => {
  const out = sink();
  const err = sink();
  const p = new Progress({ mode: 'json', totalSteps: 9, out: out.stream, err: err.stream });
  p.dashboard('http://127.0.0.1:5/', true);
  const resume = { resume: 'dptrain train --resume runs/r', resumeArgs: ['train', '--resume', 'runs/r'] };
  p.interrupted({ signal: 'SIGINT', step: 4, totalSteps: 9, checkpoint: 'runs/r/latest.safetensors', ...resume });
  expect(out.lines().map((l) => JSON.parse(l))).toEqual([
    { kind: 'dashboard', url: 'http://127.0.0.1:5/' },
    { kind: 'interrupted', signal: 'SIGINT', step: 4, totalSteps: 9, checkpoint: 'runs/r/latest.safetensors', ...resume },
  ]);
  expect(err.lines()).toEqual([
    'dashboard: http://127.0.0.1:5/',
    '  (it asks for the run token once: add ?token=TOKEN to that address)',
    'interrupted by SIGINT at step 4 of 9',
    'checkpoint: runs/r/latest.safetensors',
    'resume with: dptrain train --resume runs/r',
  ]);
  const plainOut = sink();
  const plainErr = sink();
  new Progress({ mode: 'plain', totalSteps: 9, out: plainOut.stream, err: plainErr.stream }).dashboard('https://h:1/');
  expect(plainOut.lines()).toEqual([]);
  expect(plainErr.lines()).toEqual(['dashboard: https://h:1/']);
});

test('formatSeconds', () => {
  expect(formatSeconds(5.4)).toBe('5s');
  expect(formatSeconds(65)).toBe('1m05s');
  expect(formatSeconds(NaN)).toBe('-');
});
