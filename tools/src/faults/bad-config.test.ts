import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../testing/cli-process.js';
import { FaultLab, cleanEnv } from '../testing/fault-lab.js';

// Bad input to the fault-tolerance, security and resume settings: exit 2, a message naming
// the flag, the config key or the file, and nothing half-written in a checkpoint directory.
let lab: FaultLab;
let ckpt: string;
let runDir: string;
beforeAll(async () => {
  lab = await FaultLab.create('faults-bad');
  runDir = lab.path('small');
  const r = await runCli(['train', '--data', 'spirals:300', '--model', '2-6-2', '--batch-size', '32', '--leaf-size', '8', '--steps', '3', '--workers', '0', '--checkpoint-dir', runDir], { env: cleanEnv() });
  expect(r.code, r.stderr).toBe(0);
  ckpt = lab.path('small', 'final.safetensors');
  await writeFile(lab.path('damaged.safetensors'), 'not a checkpoint');
  await writeFile(lab.path('not-pem.txt'), 'hello');
  await mkdir(lab.path('a-directory'));
  await writeFile(lab.path('bad-policy.json'), JSON.stringify({ nonFinite: 'maybe' }));
  await writeFile(lab.path('bad-every.json'), JSON.stringify({ data: 'spirals:300', checkpointEvery: -1 }));
});
afterAll(async () => {
  await lab?.remove();
});

const small = ['--data', 'spirals:300', '--model', '2-6-2', '--batch-size', '32', '--leaf-size', '8', '--steps', '5'];

describe.concurrent('bad settings exit 2 naming the flag, the key or the file', () => {
  const cases: Array<[string, () => string[], RegExp, Record<string, string>?]> = [
    ['unreadable --config', () => ['train', '--config', lab.path('a-directory')], /--config: cannot read .*a-directory: EISDIR/],
    ['missing --config', () => ['coordinator', '--config', lab.path('nope.json')], /--config: cannot read .*nope\.json: ENOENT/],
    ['missing data file', () => ['train', '--data', 'csv:/nonexistent.csv', '--steps', '3'], /--data: cannot read \/nonexistent\.csv \(no such file\)/],
    ['--checkpoint-every -1', () => ['train', ...small, '--checkpoint-every', '-1'], /--checkpoint-every: expected an integer in \[0, 1073741824\], got -1/],
    ['--checkpoint-every-sec x', () => ['coordinator', ...small, '--checkpoint-every-sec', 'x'], /--checkpoint-every-sec: expected a number, got "x"/],
    ['--non-finite maybe', () => ['train', ...small, '--non-finite', 'maybe'], /--non-finite: expected stop or skip, got "maybe"/],
    ['--max-retries 1001', () => ['coordinator', ...small, '--max-retries', '1001'], /--max-retries: expected an integer in \[0, 1000\], got 1001/],
    ['--step-timeout 0', () => ['train', ...small, '--step-timeout', '0'], /--step-timeout: expected an integer number of milliseconds in \[1, 86400000\], got 0/],
    ['--tls-cert missing file', () => ['coordinator', ...small, '--tls-cert', '/nonexistent/cert.pem', '--tls-key', lab.path('not-pem.txt')], /--tls-cert: cannot read \/nonexistent\/cert\.pem: ENOENT/],
    ['--tls-cert not PEM', () => ['train', ...small, '--tls-cert', ckpt, '--tls-key', lab.path('not-pem.txt')], /--tls-cert: .*final\.safetensors is not a PEM certificate/],
    ['--tls-cert alone', () => ['train', ...small, '--tls-cert', lab.path('not-pem.txt')], /--tls-key: required with --tls-cert/],
    ['config key nonFinite', () => ['train', '--config', lab.path('bad-policy.json')], /bad-policy\.json: nonFinite: /],
    ['config key checkpointEvery', () => ['train', '--config', lab.path('bad-every.json')], /bad-every\.json: checkpointEvery: expected an integer in \[0, 1073741824\], got -1/],
    ['--resume with --init', () => ['train', ...small, '--resume', runDir, '--init', ckpt], /--resume: cannot be combined with --init/],
    ['--resume with --workers 0', () => ['train', '--resume', runDir, '--workers', '0'], /--resume: needs a coordinated run: use --workers 1 or more/],
    ['--checkpoint-every with --workers 0', () => ['train', ...small, '--workers', '0', '--checkpoint-every', '2'], /--checkpoint-every: needs a coordinated run/],
    ['--resume of a missing path', () => ['train', '--resume', lab.path('nothing-here')], /--resume: cannot read .*nothing-here: ENOENT/],
    ['--resume of a damaged file', () => ['train', ...small, '--resume', lab.path('damaged.safetensors')], /--resume: no usable checkpoint: .*damaged\.safetensors/],
    ['worker --ca missing file', () => ['worker', '--connect', 'wss://127.0.0.1:1', '--ca', '/nonexistent/ca.pem'], /--ca: cannot read \/nonexistent\/ca\.pem: ENOENT/],
    ['worker --ca with ws://', () => ['worker', '--connect', 'ws://127.0.0.1:1', '--ca', lab.path('not-pem.txt')], /--ca: only used with a wss:\/\/ address/],
    ['worker with a bad test fault', () => ['worker', '--connect', 'ws://127.0.0.1:1'], /DPTRAIN_TEST_FAULT: expected nan-at-step:STEP/, { DPTRAIN_TEST_FAULT: 'explode' }],
  ];
  test.each(cases)('%s', async (_name, args, message, env) => {
    const r = await runCli(args(), { env: cleanEnv(env ?? {}), cwd: lab.dir });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  test('--resume of a checkpoint of another model names the field and the file, and writes nothing', async () => {
    const before = await readdir(runDir);
    const target = lab.path('other-model');
    const into = await runCli(['train', ...small, '--model', '2-8-2', '--resume', ckpt, '--workers', '1', '--checkpoint-dir', target], { env: cleanEnv() });
    expect(into.code).toBe(2);
    expect(into.stderr).toMatch(/^error: --resume: config\.model\.layers\[0\]\.units: .*small\/final\.safetensors was written by a run with 6, this run has 8/m);
    expect(existsSync(target)).toBe(false);
    // resuming in place (the default checkpoint directory is the resumed one): nothing added or changed
    const inPlace = await runCli(['coordinator', '--resume', runDir, '--lr', '0.5'], { env: cleanEnv() });
    expect(inPlace.code).toBe(2);
    expect(inPlace.stderr).toMatch(/--resume: config\.optimizer\.lr: .*was written by a run with 0\.003, this run has 0\.5/);
    expect(await readdir(runDir)).toEqual(before);
  });
});
