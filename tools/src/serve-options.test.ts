import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@dptrain/core';
import { afterAll, expect, test } from 'vitest';
import { parseConfigObject } from './config-file.js';
import { dashboardUrl, localWorkerLaunch, reachableUrl } from './coordinated-run.js';
import { Command } from 'commander';
import { addServeOptions } from './run-flags.js';
import { resolveServePlan, serveFlagSettings } from './serve-options.js';

const dir = mkdtempSync(join(tmpdir(), 'dptrain-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
writeFileSync(join(dir, 'cert.pem'), CERT);
writeFileSync(join(dir, 'key.pem'), KEY);

const fails = async (p: Promise<unknown>): Promise<ConfigError> => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

test('defaults: no checkpoints, stop on non-finite, 3 retries, dashboard on, shared memory on, even split, no token, no TLS', async () => {
  expect(await resolveServePlan({}, false, undefined)).toEqual({
    checkpointEvery: 0,
    checkpointEverySec: 0,
    allowInsecure: false,
    nonFinitePolicy: 'stop',
    maxRetries: 3,
    dashboard: true,
    sharedMemory: true,
    balance: 'even',
  });
  expect(await resolveServePlan({ shm: false, balance: 'speed' }, false, undefined)).toMatchObject({ sharedMemory: false, balance: 'speed' });
});

test('the token: the flag, else $DPTRAIN_TOKEN (if not empty), else the config file', async () => {
  expect((await resolveServePlan({ token: 'flag' }, true, 'env')).token).toBe('flag');
  expect((await resolveServePlan({ token: 'file' }, false, 'env')).token).toBe('env');
  expect((await resolveServePlan({ token: 'file' }, false, '')).token).toBe('file');
  expect((await resolveServePlan({}, false, undefined)).token).toBeUndefined();
  expect((await fails(resolveServePlan({}, false, 'x'.repeat(2000)))).message).toMatch(/^token: expected 1 to 1024 bytes \(from \$DPTRAIN_TOKEN\), got 2000$/);
});

test('TLS: both files, read as PEM; errors name the missing half or the file', async () => {
  const plan = await resolveServePlan({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') }, false, undefined);
  expect(plan.tls).toEqual({ cert: CERT, key: KEY, certFile: join(dir, 'cert.pem') });
  expect((await fails(resolveServePlan({ tlsKey: join(dir, 'key.pem') }, false, undefined))).message).toMatch(/^tlsCert: required with --tls-key/);
  expect((await fails(resolveServePlan({ tlsCert: join(dir, 'key.pem'), tlsKey: join(dir, 'key.pem') }, false, undefined))).message).toMatch(/^tlsCert: .*key\.pem is not a PEM certificate/);
  expect((await fails(resolveServePlan({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'cert.pem') }, false, undefined))).message).toMatch(/^tlsKey: .*cert\.pem is not a PEM private key/);
  expect((await fails(resolveServePlan({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'nope.pem') }, false, undefined))).message).toMatch(/^tlsKey: cannot read .*nope\.pem: ENOENT$/);
});

test('ranges of the numeric settings', async () => {
  expect((await fails(resolveServePlan({ checkpointEverySec: -1 }, false, undefined))).field).toBe('checkpointEverySec');
  expect((await fails(resolveServePlan({ maxRetries: 1.5 }, false, undefined))).field).toBe('maxRetries');
  expect((await fails(resolveServePlan({ stepTimeout: 0 }, false, undefined))).field).toBe('stepTimeout');
  expect(await resolveServePlan({ checkpointEvery: 5, checkpointEverySec: 2.5, stepTimeout: 300, nonFinite: 'skip', dashboard: false }, false, undefined)).toMatchObject({
    checkpointEvery: 5,
    checkpointEverySec: 2.5,
    stepTimeoutMs: 300,
    nonFinitePolicy: 'skip',
    dashboard: false,
  });
});

test('the config file takes the same settings', () => {
  const c = parseConfigObject({ checkpointEvery: 5, checkpointEverySec: 60, resume: 'runs/a', token: 't', allowInsecure: true, tlsCert: 'c.pem', tlsKey: 'k.pem', nonFinite: 'skip', maxRetries: 2, stepTimeout: 500, dashboard: false });
  expect(c).toMatchObject({ nonFinite: 'skip', stepTimeout: 500, dashboard: false });
  expect(() => parseConfigObject({ nonFinite: 'ignore' }, 'run.json')).toThrow(/^run\.json: nonFinite: /);
});

test('local workers: the token in their environment (never argv), --ca with TLS, loopback for an unspecified host', () => {
  const launch = localWorkerLaunch({ serve: { token: 'tok', tls: { cert: CERT, key: KEY, certFile: 'c.pem' } } as never }, ['--data', 'x'], { PATH: '/bin' });
  expect(launch.args).toEqual(['--data', 'x', '--ca', 'c.pem']);
  expect(launch.env).toEqual({ PATH: '/bin', DPTRAIN_TOKEN: 'tok' });
  expect(localWorkerLaunch({ serve: {} as never }, [], { PATH: '/bin' })).toEqual({ args: [], env: { PATH: '/bin' } });
  expect(reachableUrl('ws://0.0.0.0:8080/')).toBe('ws://127.0.0.1:8080/');
  expect(reachableUrl('wss://[::]:8080/')).toBe('wss://[::1]:8080/');
  expect(reachableUrl('ws://10.0.0.2:8080/')).toBe('ws://10.0.0.2:8080/');
  expect(dashboardUrl('wss://10.0.0.2:8080/')).toBe('https://10.0.0.2:8080/');
  expect(dashboardUrl('ws://0.0.0.0:9/')).toBe('http://127.0.0.1:9/');
});

test('--balance and --no-shm on the command line; a bad --balance names the flag and the choices', () => {
  const parse = (args: string[]) => {
    const cmd = addServeOptions(new Command('train').exitOverride(), 'train');
    cmd.parse(args, { from: 'user' });
    const given = new Set<string>();
    return { s: serveFlagSettings(cmd, given), given };
  };
  expect(parse([]).s).toEqual({});
  const { s, given } = parse(['--balance', 'speed', '--no-shm']);
  expect(s).toEqual({ balance: 'speed', shm: false });
  expect([...given].sort()).toEqual(['balance', 'shm']);
  const e = (() => {
    try {
      parse(['--balance', 'fair']);
    } catch (err) {
      return err as ConfigError;
    }
  })();
  expect(e).toBeInstanceOf(ConfigError);
  expect(e!.field).toBe('--balance');
  expect(e!.message).toMatch(/expected speed or even, got "fair"/);
  expect(parseConfigObject({ shm: false, balance: 'speed' })).toMatchObject({ shm: false, balance: 'speed' });
  expect(() => parseConfigObject({ balance: 'fair' }, 'run.json')).toThrow(/^run\.json: balance: /);
});
