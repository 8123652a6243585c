import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../testing/cli-process.js';
import { FaultLab, argvOf, cleanEnv, pidsWithArg } from '../testing/fault-lab.js';

// Authentication (--token / DPTRAIN_TOKEN) and TLS (--tls-cert/--tls-key, worker --ca)
// across real processes.
const TOKEN = 's3cret-for-tests';
let shared: FaultLab;
let config: string;
let short: string;
let reference: Buffer;
let cert: string;
let key: string;
beforeAll(async () => {
  shared = await FaultLab.create('faults-sec');
  cert = shared.path('cert.pem');
  key = shared.path('key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  config = await shared.config('run');
  short = await shared.config('short', { steps: 300 });
  reference = await shared.reference(config);
});
afterAll(async () => {
  await shared?.remove();
});

async function lab(onTestFinished: (fn: () => Promise<void>) => void): Promise<FaultLab> {
  const l = await FaultLab.create('faults-sec-t');
  onTestFinished(() => l.remove());
  return l;
}

/** GET an https URL trusting `ca`; resolves with the status code. */
function httpsStatus(url: string, ca: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { ca, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe.concurrent('authentication and TLS', () => {
  test('--token: a worker without it or with a wrong one is refused with a clear error; DPTRAIN_TOKEN gets in', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const c = await l.coordinator(['--config', short, '--token', TOKEN, '--checkpoint-dir', l.path('run')]);
    const [none, wrong] = await Promise.all([
      runCli(['worker', '--connect', c.url, '--max-retries', '0'], { env: cleanEnv(), timeoutMs: 20_000 }),
      runCli(['worker', '--connect', c.url, '--token', 'guess', '--max-retries', '0'], { env: cleanEnv(), timeoutMs: 20_000 }),
    ]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/error \(E_AUTH\): .*authentication failed: this coordinator requires a token and the hello carried none/);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/error \(E_AUTH\): .*authentication failed: wrong token/);
    expect(c.proc.lines.some((line) => line.startsWith('{"kind":"step"'))).toBe(false);
    const ok = l.worker(c.url, 'member', [], { DPTRAIN_TOKEN: TOKEN });
    expect(await c.proc.exitWithin(60_000), c.proc.stderr).toBe(0);
    expect(await ok.exitWithin(5000)).toBe(0);
  });

  test('a non-loopback --host without a token: exit 2 with the reason, nothing listens', async () => {
    const r = await runCli(['coordinator', '--config', short, '--host', '0.0.0.0', '--json'], { env: cleanEnv() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--token: required when --host is not a loopback address \(got 0\.0\.0\.0\).*DPTRAIN_TOKEN.*--allow-insecure/);
    expect(r.stdout).toBe('');
  });

  test('TLS: coordinator --tls-cert/--tls-key, worker --ca: wss:// run with the same bytes; https dashboard; a worker without --ca is refused', async ({ onTestFinished, expect }) => {
    const l = await lab(onTestFinished);
    const c = await l.coordinator(['--config', config, '--tls-cert', cert, '--tls-key', key, '--token', TOKEN, '--checkpoint-dir', l.path('run')]);
    expect(c.url).toBe(`wss://127.0.0.1:${c.port}/`);
    const dashboard = `https://127.0.0.1:${c.port}/`;
    expect(await c.proc.waitLine((line) => line.startsWith('{"kind":"dashboard"'))).toBe(JSON.stringify({ kind: 'dashboard', url: dashboard }));
    await expect.poll(() => c.proc.stderr).toContain(`dashboard: ${dashboard}`);
    const pem = readFileSync(cert, 'utf8');
    expect(await httpsStatus(`${dashboard}api/run`, pem)).toBe(401);
    expect(await httpsStatus(`${dashboard}api/run`, pem, { authorization: `Bearer ${TOKEN}` })).toBe(200);
    const untrusting = await runCli(['worker', '--connect', c.url, '--max-retries', '0'], { env: cleanEnv({ DPTRAIN_TOKEN: TOKEN }), timeoutMs: 20_000 });
    expect(untrusting.code).toBe(1);
    expect(untrusting.stderr).toMatch(/E_CONNECTION.*self[- ]signed certificate/);
    const w = l.worker(c.url, 'trusting', ['--ca', cert], { DPTRAIN_TOKEN: TOKEN });
    expect(await c.proc.exitWithin(60_000), c.proc.stderr).toBe(0);
    expect(await w.exitWithin(5000)).toBe(0);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });

  test('`dptrain train` with TLS and a token: the local workers get --ca and the token through their environment, not argv', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const secret = 'only-this-train-knows';
    const t = l.start(['train', '--config', config, '--workers', '2', '--json', '--tls-cert', cert, '--tls-key', key, '--token', secret, '--checkpoint-dir', l.path('run')]);
    await l.waitStep(t, 20);
    const url = JSON.parse(t.lines[0]).url as string;
    expect(url).toMatch(/^wss:\/\//);
    const workers = pidsWithArg(url);
    expect(workers).toHaveLength(2);
    for (const pid of workers) expect(argvOf(pid).join(' ')).toContain(`--ca ${cert}`);
    expect(pidsWithArg(secret)).toEqual([t.proc.pid]);
    expect(await t.exitWithin(60_000), t.stderr).toBe(0);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });
});
