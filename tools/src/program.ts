import { readFileSync } from 'node:fs';
import { ConfigError, DptrainError } from '@dptrain/core';
import { Command, CommanderError } from 'commander';
import { benchCommand } from './commands/bench.js';
import { coordinatorCommand } from './commands/coordinator.js';
import { evalCommand } from './commands/eval.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';
import { headroomFromEnv, reserveHeapHeadroom } from './heap-headroom.js';
import { listenErrorMessage } from './listen-error.js';

/** Exit codes: 0 ok, 1 a failure while running, 2 bad usage or configuration, 130/143 interrupted. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, SIGINT: 130, SIGTERM: 143 } as const;

function version(): string {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return '0.0.0';
  }
}

/** The `dptrain` command tree. Errors are thrown (exitOverride), not printed and exited. */
export function buildProgram(): Command {
  const program = new Command('dptrain')
    .description('data-parallel MLP training: a coordinator (parameter server) and workers over WebSockets')
    .version(version())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const c of [trainCommand(), coordinatorCommand(), workerCommand(), evalCommand(), benchCommand()]) {
    c.exitOverride().showHelpAfterError('(run with --help for usage)');
    program.addCommand(c);
  }
  return program;
}

/** The exit code for an error, after printing it to stderr. */
export function reportError(e: unknown, err: NodeJS.WritableStream = process.stderr): number {
  if (e instanceof CommanderError) {
    // commander has already printed its message (or the help / version)
    return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  if (e instanceof ConfigError) {
    err.write(`error: ${e.message}\n`);
    return EXIT.USAGE;
  }
  if (e instanceof DptrainError && e.code === 'E_INTERRUPTED') {
    err.write(`${e.message}\n`);
    return e.message.includes('SIGTERM') ? EXIT.SIGTERM : EXIT.SIGINT;
  }
  if (e instanceof DptrainError) {
    err.write(`error (${e.code}): ${e.message}\n`);
    return EXIT.FAILURE;
  }
  const listen = listenErrorMessage(e);
  if (listen !== undefined) {
    err.write(`error: ${listen}\n`);
    return EXIT.USAGE;
  }
  err.write(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return EXIT.FAILURE;
}

/** Run the CLI with these arguments (without node and the script); resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let release = () => {};
  try {
    // GC headroom for the ~1 MB messages a coordinator or worker receives every step
    // (heap-headroom.ts; $DPTRAIN_HEAP_HEADROOM_MB, 0 turns it off)
    release = reserveHeapHeadroom(headroomFromEnv());
    await buildProgram().parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (e) {
    return reportError(e);
  } finally {
    release();
  }
}
