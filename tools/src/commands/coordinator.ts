import { Command } from 'commander';
import { addRunOptions, addServeOptions } from '../run-flags.js';

/** `dptrain coordinator`: serve a run and wait for --min-workers remote workers (no local workers). */
export function coordinatorCommand(): Command {
  const cmd = new Command('coordinator').description('serve a run on --host:--port and wait for workers (dptrain worker --connect ws://HOST:PORT)');
  addServeOptions(addRunOptions(cmd, 'coordinator'), 'coordinator');
  cmd.action(async (_opts: unknown, self: Command) => {
    const { resolveRunPlan, describePlan } = await import('../run-options.js');
    const { Progress, progressMode } = await import('../progress.js');
    const { coordinatedRun } = await import('../coordinated-run.js');
    const plan = await resolveRunPlan(self, 'coordinator');
    const progress = new Progress({ mode: progressMode(plan.json), totalSteps: plan.totalSteps });
    progress.info(describePlan(plan, `waiting for ${plan.minWorkers} worker(s)`));
    process.exitCode = await coordinatedRun(plan, progress, { localWorkers: 0 });
  });
  return cmd;
}
