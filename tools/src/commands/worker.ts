import { ConfigError } from '@dptrain/core';
import { Worker } from '@dptrain/worker';
import { Command } from 'commander';
import { loadDataset } from '../data/index.js';
import { intFlag } from '../flags.js';

/** `dptrain worker --connect ws://HOST:PORT`: compute gradients for a coordinator until its run ends. */
export function workerCommand(): Command {
  return new Command('worker')
    .description('join a run: connect to a coordinator and compute the gradients it asks for')
    .requiredOption('--connect <url>', 'coordinator address, ws://HOST:PORT')
    .option('--name <name>', 'name shown by the coordinator (default worker-<pid>)')
    .option('--data <ref>', "load this dataset instead of the coordinator's reference (e.g. a local copy); its fingerprint must still match")
    .option('--token <secret>', 'shared secret, if the coordinator requires one')
    .option('--max-retries <n>', 'reconnect attempts after a lost connection before giving up (default: unlimited)')
    .option('--quiet', 'print only errors')
    .action(async (o: { connect: string; name?: string; data?: string; token?: string; maxRetries?: string; quiet?: boolean }) => {
      if (!/^wss?:\/\/[^/\s]+/.test(o.connect)) throw new ConfigError('--connect', `expected ws://HOST:PORT, got ${JSON.stringify(o.connect)}`);
      const maxAttempts = o.maxRetries === undefined ? Infinity : intFlag('--max-retries', o.maxRetries);
      if (maxAttempts < 0) throw new ConfigError('--max-retries', `expected an integer >= 0, got ${maxAttempts}`);
      const name = o.name ?? `worker-${process.pid}`;
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const worker = new Worker({
        url: o.connect,
        name,
        token: o.token,
        reconnect: { maxAttempts },
        loadData: async (ref) => (await loadDataset(o.data ?? ref)).split,
        log: o.quiet ? () => {} : log,
      });
      const stop = () => worker.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (!o.quiet) log(`connecting to ${o.connect} as ${name}`);
      const s = await worker.start();
      if (!o.quiet) log(`done (${s.reason}): ${s.tasks} tasks, ${s.results} results, ${s.samples} samples, ${(s.computeMs / 1000).toFixed(1)} s computing`);
      process.exitCode = 0;
    });
}
