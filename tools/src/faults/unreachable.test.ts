import { createServer } from 'node:net';
import { expect, test } from 'vitest';
import { runCli } from '../testing/cli-process.js';
import { cleanEnv } from '../testing/fault-lab.js';

// `dptrain worker --connect` to an address where nothing listens: "cannot reach" with the
// next attempt, never "connection ... lost" (it never connected), and the give-up says so too.
test('dptrain worker --connect to a port nothing listens on says "cannot reach", not "lost"', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const url = `ws://127.0.0.1:${port}`;
  const t0 = Date.now();
  const r = await runCli(['worker', '--connect', url, '--max-retries', '2'], { env: cleanEnv(), timeoutMs: 15_000 });
  expect(Date.now() - t0).toBeLessThan(15_000);
  expect(r.code, r.stderr).toBe(1);
  const out = r.stdout + r.stderr;
  expect(out).toMatch(new RegExp(`cannot reach ws://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED [^)]*\\); next attempt in \\d+ ms \\(retry 1 of 2; the wait doubles up to 5\\.0 s\\)`));
  expect(out).toMatch(/retry 2 of 2/);
  expect(out).toMatch(new RegExp(`cannot reach the coordinator at ws://127\\.0\\.0\\.1:${port} .*gave up after 2 reconnect attempt`));
  expect(out).not.toMatch(/lost/);
  expect(r.stderr).not.toMatch(/^ {4}at /m);
});
