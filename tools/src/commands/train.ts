import { Command } from 'commander';
import { addRunOptions, addServeOptions } from '../run-flags.js';

/** `dptrain train`: a coordinator in this process plus N local worker processes (0: core alone). */
export function trainCommand(): Command {
  const cmd = new Command('train').description('train a model: an in-process coordinator with local worker processes (--workers 0: in this process)');
  addServeOptions(addRunOptions(cmd, 'train'), 'train');
  cmd.action(async (_opts: unknown, self: Command) => {
    // heavy modules load here, so `dptrain worker` processes start faster
    const { resolveRunPlan, describePlan } = await import('../run-options.js');
    const { Progress, progressMode } = await import('../progress.js');
    const plan = await resolveRunPlan(self, 'train');
    const progress = new Progress({ mode: progressMode(plan.json), totalSteps: plan.totalSteps });
    progress.info(describePlan(plan, plan.workers === 0 ? 'in process' : `${plan.workers} local worker(s)`));
    if (plan.workers === 0) {
      const { trainInProcess } = await import('../in-process-run.js');
      process.exitCode = await trainInProcess(plan, progress);
    } else {
      const { coordinatedRun } = await import('../coordinated-run.js');
      process.exitCode = await coordinatedRun(plan, progress, { localWorkers: plan.workers });
    }
  });
  return cmd;
}
