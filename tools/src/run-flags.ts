import { OPTIMIZER_NAMES, type OptimizerName } from '@dptrain/core';
import type { Command } from 'commander';

export type RunCommandKind = 'train' | 'coordinator';

/**
 * Defaults of the CLI's default job: MNIST, 784-128-10, Adam lr 0.003, batch 128, leaf 32,
 * 8 epochs, seed 0, 2 workers. (Adam 0.001 for 3 epochs reaches only about 92-93% test
 * accuracy on MNIST's 8,000 training samples; 0.003 for 8 epochs reaches about 95.5%.)
 */
export const CLI_DEFAULTS = {
  data: 'mnist',
  optimizer: 'adam' as OptimizerName,
  batchSize: 128,
  leafSize: 32,
  epochs: 8,
  seed: 0,
  workers: 2,
  minWorkers: 1,
  host: '127.0.0.1',
  port: 0,
  hidden: 128,
};

/** Learning rate used when none is given, per optimizer. */
export const DEFAULT_LR: Record<OptimizerName, number> = { sgd: 0.1, momentum: 0.05, nesterov: 0.05, adagrad: 0.01, rmsprop: 0.001, adam: 0.003, adamw: 0.003 };

/** Add the run flags shared by `train` and `coordinator` (no defaults here: unset means "not given"). */
export function addRunOptions(cmd: Command, kind: RunCommandKind): Command {
  cmd
    .option('--config <file>', 'JSON config file with the same settings in camelCase (flags override it)')
    .option('--model <spec>', 'layer sizes like 784-128-10 (ReLU hidden, softmax output) or a ModelSpec JSON file (default: <inputs>-128-<classes>)')
    .option('--data <ref>', 'dataset: mnist | xor | spirals[:N] | blobs[:N] | idx:... | csv:... (default mnist)')
    .option('--optimizer <name>', `${OPTIMIZER_NAMES.join(' | ')} (default adam)`)
    .option('--lr <number>', 'learning rate > 0 (default: 0.003 for adam/adamw, 0.1 sgd, 0.05 momentum/nesterov, 0.01 adagrad, 0.001 rmsprop)')
    .option('--momentum <number>', 'momentum in [0, 1) for momentum/nesterov (default 0.9)')
    .option('--weight-decay <number>', 'L2 weight decay >= 0 (decoupled for adamw)')
    .option('--batch-size <n>', 'global batch size (default 128)')
    .option('--leaf-size <n>', 'rows per leaf of the reduction tree, <= batch size (default 32)')
    .option('--epochs <n>', 'epochs to train (default 8)')
    .option('--steps <n>', 'updates to run (overrides --epochs)')
    .option('--seed <n>', 'run seed in [0, 4294967295] (default 0)')
    .option('--no-shuffle', 'keep the sample order instead of shuffling every epoch')
    .option('--eval-every <n>', 'evaluate on the test split every N steps (default 0: at epoch ends)')
    .option('--kernel <name>', 'js | wasm | wasm-fma (default wasm where WebAssembly SIMD works, else js; wasm-fma fuses each multiply-add, faster where the CPU has FMA; every worker of a run uses the same)');
  if (kind === 'train') cmd.option('--workers <n>', 'local worker processes; 0 trains in this process (default 2)');
  else cmd.option('--min-workers <n>', 'workers to wait for before the first step (default 1)');
  return cmd
    .option('--host <addr>', `address to listen on (default ${CLI_DEFAULTS.host})`)
    .option('--port <n>', 'port to listen on (default 0: any free port)')
    .option('--checkpoint-dir <dir>', 'where final.safetensors goes (default runs/<run-name>)')
    .option('--init <checkpoint>', 'start from the parameters of this checkpoint (same model): a dptrain checkpoint (its optimizer state is not used: this is an init, not a resume; use --resume for that) or a plain safetensors state dict, e.g. PyTorch nn.Sequential of nn.Linear (0.weight [out,in], 0.bias, 2.weight, ...), mapped by name order and shape')
    .option('--json', 'print one JSON object per line (step, eval, summary) and nothing else on stdout')
    .option('--verbose', "also print the local workers' log lines (stderr)");
}

/**
 * Add the flags of a served run (`train` and `coordinator`, not `bench`): periodic
 * checkpoints and resume, authentication and TLS, the non-finite policy and the step
 * deadline, the dashboard. Unset means "not given" here too.
 */
export function addServeOptions(cmd: Command, kind: RunCommandKind): Command {
  const local = kind === 'train' ? ' (given to the local workers through their environment)' : '';
  return cmd
    .option('--checkpoint-every <n>', 'write a resume checkpoint (latest.safetensors) every N steps (default 0: never)')
    .option('--checkpoint-every-sec <s>', 'write a resume checkpoint at the first step at least S seconds after the last one (default 0: never)')
    .option('--resume <path>', 'continue the run of this checkpoint: a file or a run directory (latest, else previous, else final.safetensors); unset settings default to the checkpoint\'s; not with --init')
    .option('--token <secret>', `shared secret the workers must present (default: $DPTRAIN_TOKEN); required on a non-loopback --host${local}`)
    .option('--allow-insecure', 'listen on a non-loopback --host without a token')
    .option('--tls-cert <file>', 'serve wss:// and https:// with this certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--non-finite <policy>', 'a NaN/Inf result or a worker error: stop (default: checkpoint the last good state and exit 1) | skip (recompute it elsewhere)')
    .option('--max-retries <n>', 'with --non-finite skip: bad results one node may have before the run stops anyway (default 3)')
    .option('--step-timeout <ms>', "re-execute a worker's leaves elsewhere when it is this late (default: max(10 s, 5 × the median step time))")
    .option('--no-dashboard', 'do not serve the dashboard (and /api/run, /metrics, /events) on the run\'s port')
    .option('--balance <how>', "split each step's leaves evenly (even, the default) or by the workers' measured speed (speed: for workers on unequal hosts)")
    .option('--no-shm', 'do not offer workers on this host the shared-memory data plane (params and gradients then go through the socket)');
}

