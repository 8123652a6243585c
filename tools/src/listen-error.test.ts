import { type Server, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { listenErrorMessage } from './listen-error.js';
import { runCli } from './testing/cli-process.js';

let held: Server;
let port: number;
beforeAll(async () => {
  held = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  port = (held.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => held.close(() => resolve())));

/** The error Node itself raises for a second listen on the same port. */
function secondListen(): Promise<Error> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e) => resolve(e));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(new Error('listened'))));
  });
}

describe('a port that cannot be listened on', () => {
  test("Node's EADDRINUSE becomes one line naming the port and the fix", async () => {
    const e = await secondListen();
    expect(listenErrorMessage(e)).toBe(`port ${port} on 127.0.0.1 is already in use; pick another with --port N, or --port 0 for any free port`);
  });

  test('other errors are left to the generic report', () => {
    expect(listenErrorMessage(new Error('boom'))).toBeUndefined();
    expect(listenErrorMessage(Object.assign(new Error('x'), { code: 'EADDRINUSE', syscall: 'connect' }))).toBeUndefined();
    expect(listenErrorMessage('EADDRINUSE')).toBeUndefined();
  });

  test.each([['train'], ['coordinator']])('dptrain %s --port BUSY exits 2 with that line and no stack trace', async (cmd) => {
    const r = await runCli([cmd, '--data', 'blobs:300', '--model', '2-8-3', '--batch-size', '32', '--leaf-size', '8', '--port', String(port), '--no-dashboard']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: port ${port} on 127.0.0.1 is already in use; pick another with --port N, or --port 0 for any free port`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
