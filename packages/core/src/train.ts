import { type Dataset, type DatasetSplit, EpochSampler, splitDataset } from './data/index.js';
import { EarlyStopping } from './early-stopping.js';
import { ConfigError } from './errors.js';
import { initParams } from './init.js';
import { type KernelName, allocOrPlain } from './kernels/index.js';
import { LeafComputer, leafChunkRows, treeBuffers } from './leaf.js';
import { type EvalResult, evaluate } from './metrics.js';
import { Network, kernelsForModel } from './network.js';
import { type OptimizerConfig, type OptimizerState, createOptimizerState, optimizerSlotNames, validateOptimizerConfig } from './optim/index.js';
import { deriveSeed } from './rng.js';
import { type ModelSpec, validateModelSpec } from './spec.js';
import { leafCount, nextPow2 } from './tree.js';
import { applyUpdate } from './update.js';

/** Monotonic clock of browsers and Node (core has no DOM or Node typings). */
declare const performance: { now(): number };

/** The seeds a run derives from its one seed; the distributed coordinator uses the same. */
export function runSeeds(seed: number): { init: number; sampler: number; dropout: number } {
  return { init: deriveSeed(seed, 1), sampler: deriveSeed(seed, 2), dropout: deriveSeed(seed, 3) };
}

export interface EarlyStoppingOptions {
  monitor?: 'loss' | 'accuracy';
  patience?: number;
  minDelta?: number;
  restoreBest?: boolean;
}

export interface StepInfo {
  step: number;
  epoch: number;
  /** Mean training loss over the batch. */
  loss: number;
  accuracy: number;
  samples: number;
  samplesPerSec: number;
  lr: number;
  gradNorm: number;
}

export interface EpochInfo {
  epoch: number;
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  validation?: EvalResult;
  test?: EvalResult;
}

export interface TrainOptions {
  spec: ModelSpec;
  data: DatasetSplit;
  optimizer: OptimizerConfig;
  batchSize?: number;
  /** Rows per leaf of the fixed reduction tree (default min(32, batchSize)); the distributed run must use the same. */
  leafSize?: number;
  /** Stop after this many epochs (default 1 when steps is not given). */
  epochs?: number;
  /** Stop after this many updates. */
  steps?: number;
  seed?: number;
  shuffle?: boolean;
  kernel?: KernelName;
  /** Evaluate on the test split every N steps (0: only at epoch ends). */
  evalEvery?: number;
  /** Start from these parameters instead of the seeded initialisation. */
  initParams?: Float32Array;
  /** Monitors a validation split carved from the end of the training set. */
  earlyStopping?: EarlyStoppingOptions;
  /** Fraction of the training set held out for validation (default 0.1 with early stopping, else 0). */
  validationFraction?: number;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (e: EpochInfo) => void;
  onEval?: (step: number, r: EvalResult) => void;
}

export interface TrainResult {
  params: Float32Array;
  optimizer: { config: OptimizerConfig; state: OptimizerState };
  steps: number;
  epochs: number;
  stoppedEarly: boolean;
  test: EvalResult;
  history: EpochInfo[];
}

function posInt(field: string, v: unknown, max = 1 << 30): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(field, `expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Train in one process with the same leaves, tree and update as a distributed run,
 * so its final weights are bit-identical to a run with any number of workers.
 */
export function train(opts: TrainOptions): TrainResult {
  const spec = validateModelSpec(opts.spec);
  const optimizer = validateOptimizerConfig(opts.optimizer);
  const batchSize = posInt('batchSize', opts.batchSize ?? 128);
  const leafSize = posInt('leafSize', opts.leafSize ?? Math.min(32, batchSize));
  if (leafSize > batchSize) throw new ConfigError('leafSize', `must be at most batchSize (${batchSize}), got ${leafSize}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ConfigError('seed', `expected an integer in [0, 4294967295], got ${seed}`);
  if (opts.epochs !== undefined) posInt('epochs', opts.epochs);
  if (opts.steps !== undefined) posInt('steps', opts.steps);
  const evalEvery = opts.evalEvery ?? 0;
  if (!Number.isInteger(evalEvery) || evalEvery < 0) throw new ConfigError('evalEvery', `expected an integer >= 0, got ${evalEvery}`);
  const seeds = runSeeds(seed);

  let trainSet: Dataset = opts.data.train;
  let validation: Dataset | undefined;
  const vf = opts.validationFraction ?? (opts.earlyStopping ? 0.1 : 0);
  if (!(vf >= 0 && vf < 1)) throw new ConfigError('validationFraction', `expected a number in [0, 1), got ${vf}`);
  if (vf > 0) {
    const s = splitDataset(trainSet, { testFraction: vf, shuffle: false });
    trainSet = s.train;
    validation = s.test;
  }
  if (batchSize > trainSet.n) throw new ConfigError('batchSize', `must be at most the training set size (${trainSet.n}), got ${batchSize}`);

  // room in the kernels' memory for the tree, the parameters and the optimizer's state: the
  // update's passes then run there without copies, as in the coordinator
  const slots = optimizerSlotNames(optimizer.name);
  const kernels = kernelsForModel(opts.kernel ?? 'js', spec, [leafChunkRows(leafSize), 256], treeBuffers(batchSize, leafSize) + 1 + slots.length);
  const computer = new LeafComputer(spec, trainSet, { leafSize, seed: seeds.dropout, kernels });
  const evalNet = new Network(spec, { maxRows: 256, kernels });
  const P = computer.paramCount;
  const start = opts.initParams ?? initParams(spec, seeds.init);
  if (start.length !== P) throw new ConfigError('initParams', `expected ${P} values for this model, got ${start.length}`);
  const params = allocOrPlain(kernels, P);
  params.set(start);
  const state = createOptimizerState(optimizer, P, (n) => allocOrPlain(kernels, n));
  const sampler = new EpochSampler({ n: trainSet.n, batchSize, seed: seeds.sampler, shuffle: opts.shuffle ?? true });
  const perEpoch = Math.ceil(trainSet.n / batchSize);
  const totalSteps = opts.steps ?? (opts.epochs ?? 1) * perEpoch;
  const stopper = opts.earlyStopping
    ? new EarlyStopping({
        monitor: opts.earlyStopping.monitor ?? 'loss',
        patience: opts.earlyStopping.patience ?? 3,
        minDelta: opts.earlyStopping.minDelta ?? 0,
        restoreBest: opts.earlyStopping.restoreBest ?? true,
      })
    : undefined;

  const history: EpochInfo[] = [];
  let epochLoss = 0;
  let epochCorrect = 0;
  let epochSamples = 0;
  let stoppedEarly = false;
  let step = 0;
  let epochsDone = 0;
  while (step < totalSteps) {
    const t0 = performance.now();
    const b = sampler.next();
    const B = b.indices.length;
    const L = leafCount(B, leafSize);
    computer.setParams(params);
    // the batch's gradient sum stays where the tree summed it (the update may rewrite it: the next step overwrites it anyway)
    const { stats: st, grad } = computer.computeNodeView({ step, leafCount: L, batchSize: B, indices: b.indices, indexBase: 0 }, { lo: 0, size: nextPow2(L) });
    const up = applyUpdate(params, grad, B, optimizer, state, step, kernels);
    step++;
    epochLoss += st.lossSum;
    epochCorrect += st.correct;
    epochSamples += st.samples;
    const dt = (performance.now() - t0) / 1000;
    opts.onStep?.({ step, epoch: b.epoch, loss: st.lossSum / B, accuracy: st.correct / B, samples: B, samplesPerSec: B / Math.max(dt, 1e-9), lr: up.lr, gradNorm: up.gradNorm });
    if (evalEvery > 0 && step % evalEvery === 0) opts.onEval?.(step, evaluate(evalNet, params, opts.data.test));
    const epochEnd = b.batchInEpoch === b.batchesPerEpoch - 1;
    if (epochEnd || step === totalSteps) {
      if (epochEnd) epochsDone = b.epoch + 1;
      const info: EpochInfo = { epoch: b.epoch, step, trainLoss: epochLoss / epochSamples, trainAccuracy: epochCorrect / epochSamples };
      if (validation) info.validation = evaluate(evalNet, params, validation);
      if (epochEnd) info.test = evaluate(evalNet, params, opts.data.test);
      history.push(info);
      opts.onEpoch?.(info);
      epochLoss = epochCorrect = epochSamples = 0;
      if (stopper && info.validation && epochEnd) {
        const v = stopper.options.monitor === 'accuracy' ? info.validation.accuracy : info.validation.loss;
        if (stopper.update(v, params)) {
          stoppedEarly = true;
          const best = stopper.bestParams();
          if (best) params.set(best);
          break;
        }
      }
    }
  }
  const test = evaluate(evalNet, params, opts.data.test, { confusion: true });
  // the result owns plain copies, not views of the kernels' memory
  const finalState: OptimizerState = { t: state.t, slots: Object.fromEntries(Object.entries(state.slots).map(([k, v]) => [k, Float32Array.from(v)])) };
  return { params: Float32Array.from(params), optimizer: { config: optimizer, state: finalState }, steps: step, epochs: epochsDone, stoppedEarly, test, history };
}
