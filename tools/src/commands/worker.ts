import { readFile } from 'node:fs/promises';
import { ConfigError } from '@dptrain/core';
import { FaultInjector, TEST_FAULT_ENV, Worker, parseTestFault } from '@dptrain/worker';
import { Command } from 'commander';
import { loadDataset } from '../data/index.js';
import { intFlag } from '../flags.js';
import { TOKEN_ENV } from '../serve-options.js';

interface WorkerFlags {
  connect: string;
  name?: string;
  data?: string;
  token?: string;
  ca?: string;
  maxRetries?: string;
  quiet?: boolean;
  shm?: boolean;
}

/** The PEM file of --ca; unreadable or not PEM is a ConfigError naming the flag and the file. */
async function readCa(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError('--ca', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE')) throw new ConfigError('--ca', `${path} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return text;
}

/**
 * `dptrain worker --connect ws://HOST:PORT`: compute gradients for a coordinator until its
 * run ends. SIGINT/SIGTERM: say bye (the coordinator moves this worker's leaves on at once)
 * and exit 0. The environment variable DPTRAIN_TEST_FAULT is a TEST-ONLY fault hook (see
 * @dptrain/worker test-fault.ts), inert unless set.
 */
export function workerCommand(): Command {
  return new Command('worker')
    .description('join a run: connect to a coordinator and compute the gradients it asks for')
    .requiredOption('--connect <url>', 'coordinator address, ws://HOST:PORT (wss:// when it serves TLS)')
    .option('--name <name>', 'name shown by the coordinator (default worker-<pid>)')
    .option('--data <ref>', "load this dataset instead of the coordinator's reference (e.g. a local copy); its fingerprint must still match")
    .option('--token <secret>', `shared secret, if the coordinator requires one (default: $${TOKEN_ENV})`)
    .option('--ca <file>', "trust this CA certificate (PEM) for wss://, e.g. the coordinator's self-signed certificate")
    .option('--max-retries <n>', 'reconnect attempts after a lost connection before giving up (default: unlimited)')
    .option('--no-shm', "do not use the coordinator's shared memory even when it runs on this host")
    .option('--quiet', 'print only errors')
    .action(async (o: WorkerFlags) => {
      if (!/^wss?:\/\/[^/\s]+/.test(o.connect)) throw new ConfigError('--connect', `expected ws://HOST:PORT or wss://HOST:PORT, got ${JSON.stringify(o.connect)}`);
      const maxAttempts = o.maxRetries === undefined ? Infinity : intFlag('--max-retries', o.maxRetries);
      if (maxAttempts < 0) throw new ConfigError('--max-retries', `expected an integer >= 0, got ${maxAttempts}`);
      if (o.ca !== undefined && !o.connect.startsWith('wss://')) throw new ConfigError('--ca', `only used with a wss:// address, got --connect ${o.connect}`);
      const ca = o.ca !== undefined ? await readCa(o.ca) : undefined;
      const envToken = process.env[TOKEN_ENV];
      const token = o.token ?? (envToken !== undefined && envToken !== '' ? envToken : undefined);
      const testFault = parseTestFault(process.env[TEST_FAULT_ENV]);
      const name = o.name ?? `worker-${process.pid}`;
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const worker = new Worker({
        url: o.connect,
        name,
        token,
        ca,
        testFault,
        reconnect: { maxAttempts },
        sharedMemory: o.shm !== false,
        loadData: async (ref) => (await loadDataset(o.data ?? ref)).split,
        log: o.quiet ? () => {} : log,
      });
      const stop = (sig: NodeJS.Signals) => {
        if (!o.quiet) log(`${sig}: saying bye to the coordinator`);
        worker.close(`interrupted by ${sig}`);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const fault = testFault && new FaultInjector(testFault, name);
      if (fault?.armed) log(`TEST FAULT HOOK ACTIVE (${TEST_FAULT_ENV}=${process.env[TEST_FAULT_ENV]}): ${fault.describe()}`);
      if (!o.quiet) log(`connecting to ${o.connect} as ${name}`);
      const s = await worker.start();
      if (!o.quiet) log(`done (${s.reason}): ${s.tasks} tasks, ${s.results} results, ${s.samples} samples, ${(s.computeMs / 1000).toFixed(1)} s computing`);
      process.exitCode = 0;
    });
}
