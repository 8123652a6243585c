/**
 * RoundMachine: the coordinator's pure state machine (training state, rounds, membership
 * decisions). Owns the run's state; must not touch sockets, timers or files (it speaks only
 * through MachineOutput). Admission refusals live in ./admission.ts.
 */
import {
  ConfigError,
  type DatasetSplit,
  DptrainError,
  EpochSampler,
  type EvalResult,
  type Kernels,
  Network,
  type OptimizerState,
  type RunConfig,
  type SamplerState,
  ShapeError,
  allocOrPlain,
  applyUpdate,
  createOptimizerState,
  createWasmKernels,
  evaluate,
  initParams,
  jsKernels,
  kernelsForModel,
  leafCount,
  optimizerSlotNames,
  paramLayout,
  runSeeds,
  validateRunConfig,
  wasmSupported,
} from '@dptrain/core';
import type { RunEventInit, WorkerInfo } from '@dptrain/protocol';
import { chooseSplit } from '../assign.js';
import { fingerprintRefusal, helloRefusal, readyStateRefusal } from './admission.js';
import { encodeFinalCheckpoint } from '../checkpoint-io.js';
import { StepDeadline } from '../deadline.js';
import type { Balance, MachineOptions, MachineOutput, MachineState, NonFinitePolicy, Refusal, WelcomeInit } from '../machine-io.js';
import { Membership, type WorkerHello } from '../membership.js';
import { RoundTiming, sendOrder } from '../round-timing.js';
import { BufferPool } from '../buffer-pool.js';
import { type ResultHandling, type ResultInit, Round, type TaskInit, type Verdict } from '../round.js';

export type { Balance, MachineOptions, MachineOutput, MachineState, NonFinitePolicy, Refusal, WelcomeInit } from '../machine-io.js';

/** Weight of the old speed estimate when a step's measurement comes in (the new one gets the rest). */
const SPEED_KEEP = 0.7;
export type { WorkerHello } from '../membership.js';

const posInt = (field: string, v: unknown, lo: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo) throw new ConfigError(field, `expected an integer >= ${lo}, got ${JSON.stringify(v)}`);
  return v;
};

/**
 * The parameter server's round logic, without sockets or timers: membership,
 * assignment, reduction, update, evaluation. Inputs are method calls; outputs go
 * to `output`. It follows core's train() step for step (same seeds, sampler, leaves,
 * tree and update), so its parameters are bit-identical to train()'s.
 */
export class RoundMachine {
  readonly config: RunConfig;
  readonly runId: string;
  readonly fingerprint: string;
  readonly paramCount: number;
  readonly params: Float32Array;
  readonly optState: OptimizerState;
  readonly minWorkers: number;
  readonly totalSteps: number;
  readonly sampler: EpochSampler;
  /** Leaves of a full batch: the most workers a run can use. */
  readonly maxWorkers: number;
  private readonly data: DatasetSplit;
  private readonly out: MachineOutput;
  private readonly clock: () => number;
  private readonly stragglerMinMs: number;
  private readonly policy: NonFinitePolicy;
  private readonly balance: Balance;
  /** Evaluations during the run (MachineOptions.periodicEvaluation). */
  private readonly periodicEvaluation: boolean;
  /** The leaf split of the last step under balance 'speed', for the same leaf count and workers. */
  private split: { key: string; leaves: number[] } | undefined;
  private readonly maxRetries: number;
  private readonly deadline: StepDeadline;
  private readonly evalNet: Network;
  private readonly workers: Membership;
  /** Reduction buffers for results the round must copy (see ResultHandling.owned). */
  private readonly pool: BufferPool;
  /** Kernels whose memory holds the reduction buffers: results are copied in, scanned and summed there (SIMD where available). */
  private readonly reduceKernels: Kernels;
  private round: Round | undefined;
  /** The sampler's position before the current round's batch was drawn (what a checkpoint records mid-step). */
  private roundSampler: SamplerState | undefined;
  private members: string[] = [];
  private timing = new RoundTiming(0);
  private waitingNote = '';
  /** Steps started by this machine (minWorkers only gates the first). */
  private stepsRun = 0;
  private _state: MachineState = 'idle';
  private _step = 0;
  private _version = 0;
  private _epochsDone = 0;
  private _lastStep: RunEventInit | undefined;
  private _lastEval: EvalResult | undefined;
  /** Step of the last `eval` event emitted (-1: none). */
  private evalStep = -1;
  /** This step's params, evaluated while the next step runs (allocated at the first evaluation). */
  private evalCopy: Float32Array | undefined;
  private _final: EvalResult | undefined;
  private _error: Error | undefined;
  private _samplesDone = 0;
  /** Results dropped because they were for another step. */
  staleDropped = 0;
  /** Results dropped because the node was already received or not owed by the sender. */
  duplicatesDropped = 0;
  /** Results refused as invalid (wrong sample count, non-finite values). */
  invalidResults = 0;
  /** Bad results and worker error reports handled by the non-finite policy (dropped, never applied). */
  badResults = 0;
  /** Nodes re-executed on another worker because their owner was past the step deadline. */
  reexecuted = 0;

  constructor(opts: MachineOptions) {
    this.config = validateRunConfig(opts.config);
    const spec = this.config.model;
    const train = opts.data?.train;
    const test = opts.data?.test;
    if (!train || !test) throw new ConfigError('data', 'expected a DatasetSplit { train, test }');
    const outUnits = spec.layers[spec.layers.length - 1].units;
    for (const [name, ds] of [['train', train], ['test', test]] as const) {
      if (ds.inputSize !== spec.inputSize || ds.outputSize !== outUnits) {
        throw new ShapeError(`data.${name} is ${ds.inputSize}→${ds.outputSize}, the model is ${spec.inputSize}→${outUnits}`);
      }
    }
    if (this.config.batchSize > train.n) throw new ConfigError('batchSize', `must be at most the training set size (${train.n}), got ${this.config.batchSize}`);
    if (typeof opts.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(opts.fingerprint)) throw new ConfigError('fingerprint', 'expected 64 lower-case hex digits');
    this.data = opts.data;
    this.fingerprint = opts.fingerprint;
    this.runId = opts.runId;
    this.out = opts.output;
    this.minWorkers = posInt('minWorkers', opts.minWorkers ?? 1, 1);
    this.workers = new Membership({
      deadAfterMs: posInt('deadAfterMs', opts.deadAfterMs ?? 10_000, 1),
      loadTimeoutMs: posInt('loadTimeoutMs', opts.loadTimeoutMs ?? 120_000, 1),
    });
    this.stragglerMinMs = posInt('stragglerMinMs', opts.stragglerMinMs ?? 1000, 0);
    const policy = opts.nonFinitePolicy ?? 'stop';
    if (policy !== 'stop' && policy !== 'skip') throw new ConfigError('nonFinitePolicy', `expected "stop" or "skip", got ${JSON.stringify(policy)}`);
    this.policy = policy;
    this.maxRetries = posInt('maxRetries', opts.maxRetries ?? 3, 0);
    const balance = opts.balance ?? 'even';
    if (balance !== 'speed' && balance !== 'even') throw new ConfigError('balance', `expected "speed" or "even", got ${JSON.stringify(balance)}`);
    this.balance = balance;
    if (opts.periodicEvaluation !== undefined && typeof opts.periodicEvaluation !== 'boolean') throw new ConfigError('periodicEvaluation', `expected true or false, got ${JSON.stringify(opts.periodicEvaluation)}`);
    this.periodicEvaluation = opts.periodicEvaluation ?? true;
    const fixed = opts.stepTimeoutMs === undefined ? undefined : posInt('stepTimeoutMs', opts.stepTimeoutMs, 1);
    this.deadline = new StepDeadline(fixed, posInt('stepTimeoutMinMs', opts.stepTimeoutMinMs ?? 10_000, 1));
    this.clock = opts.clock ?? (() => performance.now());
    const seeds = runSeeds(this.config.seed);
    this.paramCount = paramLayout(spec).total;
    const samplerOpts = { n: train.n, batchSize: this.config.batchSize, seed: seeds.sampler, shuffle: this.config.shuffle };
    const resume = opts.resume;
    if (resume && opts.initParams) throw new ConfigError('initParams', 'cannot be combined with resume: a resumed run continues from the checkpoint\'s parameters');
    const start = resume ? resume.params : (opts.initParams ?? initParams(spec, seeds.init));
    if (start.length !== this.paramCount) throw new ConfigError(resume ? 'resume.params' : 'initParams', `expected ${this.paramCount} values for this model, got ${start.length}`);
    // the master parameters, the optimizer's state and the reduction buffers live in the
    // reduction kernels' memory, so the update's passes run there without copies
    this.reduceKernels = reductionKernels(this.paramCount, optimizerSlotNames(this.config.optimizer.name).length);
    const alloc = (n: number): Float32Array => allocOrPlain(this.reduceKernels, n);
    this.params = alloc(this.paramCount);
    this.params.set(start);
    this.optState = createOptimizerState(this.config.optimizer, this.paramCount, alloc);
    this.sampler = resume ? EpochSampler.fromState(samplerOpts, resume.sampler) : new EpochSampler(samplerOpts);
    this.totalSteps = this.config.steps ?? this.config.epochs * this.sampler.batchesPerEpoch;
    if (resume) {
      if (!Number.isSafeInteger(resume.step) || resume.step < 0 || resume.step > this.totalSteps) {
        throw new ConfigError('resume.step', `expected an integer in [0, ${this.totalSteps}] (the run's steps), got ${resume.step}`);
      }
      for (const [slot, a] of Object.entries(this.optState.slots)) {
        const from = resume.optimizer.slots[slot];
        if (!(from instanceof Float32Array) || from.length !== this.paramCount) throw new ConfigError(`resume.optimizer.slots.${slot}`, `expected a Float32Array of ${this.paramCount} values`);
        a.set(from);
      }
      this.optState.t = resume.optimizer.t;
      this._step = resume.step;
      this._version = resume.step;
      this._epochsDone = resume.epoch;
    }
    this.maxWorkers = leafCount(this.config.batchSize, this.config.leafSize);
    this.pool = new BufferPool(this.paramCount, alloc);
    this.evalNet = new Network(spec, { maxRows: 256, kernels: kernelsForModel(this.config.kernel, spec, [256]) });
  }

  get state(): MachineState {
    return this._state;
  }
  /** Updates applied so far. */
  get step(): number {
    return this._step;
  }
  /** Parameter version (bumped by every update). */
  get version(): number {
    return this._version;
  }
  /** Full epochs completed. */
  get epochsDone(): number {
    return this._epochsDone;
  }
  /** Samples processed by completed steps. */
  get samplesDone(): number {
    return this._samplesDone;
  }
  get lastStep(): RunEventInit | undefined {
    return this._lastStep;
  }
  get lastEval(): EvalResult | undefined {
    return this._lastEval;
  }
  /** The final test evaluation (with confusion matrix), once finished. */
  get finalEval(): EvalResult | undefined {
    return this._final;
  }
  get error(): Error | undefined {
    return this._error;
  }
  /** The step in progress (or next to start). */
  get currentStep(): number {
    return this.round?.step ?? this._step;
  }
  /** Reduction buffers allocated so far: at most a step's worth, reused from step to step. */
  get buffersAllocated(): number {
    return this.pool.allocated;
  }
  /**
   * A reduction buffer (the update kernels' memory) for a gradient read straight into it,
   * e.g. from a shared-memory slot: pass the result with `owned: true`, and give the buffer
   * back with giveResultBuffer unless the verdict is 'accepted' (the round then holds it).
   */
  takeResultBuffer(): Float32Array {
    return this.pool.take();
  }

  /** Return a buffer from takeResultBuffer whose result was not accepted. */
  giveResultBuffer(b: Float32Array): void {
    this.pool.give(b);
  }

  /** The current step deadline, ms after the step's tasks went out. */
  get stepDeadlineMs(): number {
    return this.deadline.ms;
  }

  /** Announce the run and wait for workers. */
  start(): void {
    if (this._state !== 'idle') return;
    this._state = 'waiting';
    if (this._step > 0) this.out.log(`resuming at step ${this._step} of ${this.totalSteps} (epoch ${this._epochsDone}, sampler at sample ${this.sampler.state().cursor} of epoch ${this.sampler.state().epoch})`);
    this.out.event({ kind: 'run_started', runId: this.runId, config: this.config as unknown as Record<string, unknown>, model: this.config.model, paramCount: this.paramCount });
    this.advance();
  }

  /** A worker said hello. Returns its welcome, or a refusal (the worker is then forgotten). */
  workerJoined(id: string, hello: WorkerHello, nowMs: number): { welcome: WelcomeInit } | { refused: Refusal } {
    const { batchSize, leafSize, kernel } = this.config;
    const refused = helloRefusal({ state: this._state, runId: this.runId, kernel, live: this.workers.live().length, maxWorkers: this.maxWorkers, batchSize, leafSize }, hello);
    if (refused) return { refused };
    this.workers.add(id, hello, nowMs);
    this.out.event({ kind: 'worker_joined', workerId: id, host: hello.host });
    this.emitWorkers();
    const c = this.config;
    const dropout = c.model.layers.some((l) => (l.dropout ?? 0) > 0);
    return {
      welcome: {
        workerId: id,
        runId: this.runId,
        model: c.model,
        data: c.data,
        fingerprint: this.fingerprint,
        run: { seed: c.seed, leafSize: c.leafSize, kernel: c.kernel, dropout },
        paramCount: this.paramCount,
      },
    };
  }

  /** A worker loaded its data. Returns a refusal on a fingerprint mismatch (the worker is then removed). */
  workerReady(id: string, fingerprint: string, nowMs: number): Refusal | undefined {
    const w = this.workers.get(id);
    const notReady = readyStateRefusal(id, w?.state);
    if (notReady || !w) return notReady;
    w.lastSeen = nowMs;
    const mismatch = fingerprintRefusal(this.config.data, fingerprint, this.fingerprint);
    if (mismatch) {
      this.workerLeft(id, 'data mismatch');
      return mismatch;
    }
    w.state = 'ready';
    this.emitWorkers();
    const r = this.round;
    if (r && r.orphans().length > 0) this.redistribute();
    else this.advance();
    return undefined;
  }

  /** A message arrived from a worker (liveness). */
  touch(id: string, nowMs: number): void {
    this.workers.touch(id, nowMs);
  }

  /** A worker left or its connection closed; its outstanding nodes go to live workers at once. */
  workerLeft(id: string, reason: string, dead = false): void {
    if (!this.workers.remove(id, dead)) return;
    this.out.event({ kind: dead ? 'worker_dead' : 'worker_left', workerId: id, reason });
    const r = this.round;
    if (r && this._state === 'running') {
      const lost = r.release(id);
      if (lost.length > 0) this.redistribute();
    }
    this.emitWorkers();
  }

  /**
   * A decoded result from a worker. Dropped results never touch state. A result for a
   * step never assigned, or an invalid one (NaN/Inf, wrong sample count...), goes to the
   * non-finite policy: the run stops, or (skip) the node is recomputed elsewhere.
   * `how` says whether res.grad is already checked finite and whether the machine may keep
   * and overwrite it (see ResultHandling); by default it is scanned and copied.
   */
  /**
   * Whether a result of `id` for node (lo, size) of `step` would be taken now (the run is
   * on, that step is in progress, `id` owes that node). A transport can skip fetching the
   * gradient of a result it would only drop (and then hand resultReceived an empty one,
   * which is dropped and counted the same way).
   */
  wantsResult(id: string, step: number, lo: number, size: number): boolean {
    if (this._state !== 'running' && this._state !== 'waiting') return false;
    return this.round?.wants(id, step, lo, size) ?? false;
  }

  /**
   * A worker that skipped a task of a step already over (its params were replaced before it
   * read them) is alive and current again: it may get leaves from the next step on, as a
   * result of its would have allowed.
   */
  workerCaughtUp(id: string, nowMs?: number): void {
    if (nowMs !== undefined) this.touch(id, nowMs);
    const w = this.workers.get(id);
    if (w && w.state === 'ready') w.lagging = false;
  }

  resultReceived(id: string, res: ResultInit, nowMs?: number, how?: ResultHandling): Verdict {
    if (nowMs !== undefined) this.touch(id, nowMs);
    const r = this.round;
    const w = this.workers.get(id);
    if (w && w.state === 'ready') w.lagging = false; // it is alive: it may get leaves again
    if (this._state !== 'running' && this._state !== 'waiting') {
      this.staleDropped++;
      return { status: 'stale', reason: `result for step ${res.step} after the run ${this._state}` };
    }
    if (!w || w.state !== 'ready') {
      this.duplicatesDropped++;
      return { status: 'unexpected', reason: `result from ${id}, which is not a ready worker` };
    }
    const current = this.currentStep;
    if (res.step > current || (!r && res.step === current)) {
      const reason = `result for step ${res.step}, which was never assigned (step ${current} is ${r ? 'in progress' : 'next'})`;
      this.badResult(id, 'E_WORKER', reason, 'none');
      return { status: 'invalid', code: 'E_FIELD', reason };
    }
    if (!r) {
      this.staleDropped++;
      return { status: 'stale', reason: `result for step ${res.step} while no step is in progress` };
    }
    const t0 = this.clock();
    const v = r.accept(id, res, how);
    const t1 = this.clock();
    if (v.status === 'stale') this.staleDropped++;
    else if (v.status === 'duplicate' || v.status === 'unexpected') this.duplicatesDropped++;
    else if (v.status === 'invalid') {
      this.invalidResults++;
      this.badResult(id, v.code === 'E_NONFINITE' ? 'E_NONFINITE' : 'E_WORKER', v.reason, { lo: res.nodeLo, size: res.nodeSize });
    }
    if (v.status !== 'accepted') return v;
    this.timing.reduceMs += t1 - t0;
    this.timing.last = t1;
    if (r.outstanding(id).length === 0) {
      this.timing.workerDone(id, t1);
      w.lastComputeMs = r.computeMs.get(id) ?? 0;
      w.lastSamplesPerSec = w.lastComputeMs > 0 ? ((r.samplesBy.get(id) ?? 0) * 1000) / w.lastComputeMs : 0;
      const speed = w.lastSamplesPerSec / 1000;
      if (speed > 0 && Number.isFinite(speed)) w.speed = w.speed > 0 ? SPEED_KEEP * w.speed + (1 - SPEED_KEEP) * speed : speed;
    }
    w.computeMsTotal += res.computeMs;
    if (v.complete) this.finishRound();
    return v;
  }

  /**
   * A ready worker reported an error (an `error` message). It is handled by the
   * non-finite policy like a bad result for every node it owes. Errors from workers not
   * yet ready are the transport's business (they concern joining, not training).
   */
  workerError(id: string, code: string, message: string): void {
    if (!this.workers.isReady(id) || (this._state !== 'running' && this._state !== 'waiting')) return;
    this.badResult(id, code === 'E_NONFINITE' ? 'E_NONFINITE' : 'E_WORKER', `reported ${code}: ${message}`, 'all');
  }

  /** Periodic check (the transport calls it, e.g. every heartbeat): dead workers, stragglers, the step deadline. */
  tick(nowMs: number): void {
    for (const { id, why } of this.workers.silent(nowMs)) {
      this.workerLeft(id, why, true);
      this.out.closeWorker(id, { code: 'E_TIMEOUT', message: `worker ${id}: ${why}`, closeCode: 4000 });
    }
    this.checkDeadlines();
  }

  /**
   * Stragglers and the step deadline, by the machine's clock (tick() does this too). The
   * transport calls it when msToDeadline() has run out, so a deadline shorter than its
   * heartbeat is kept to within a timer's precision.
   */
  checkDeadlines(): void {
    if (this._state !== 'running') return;
    const flagged = this.checkStragglers() + this.checkDeadline();
    if (flagged > 0) this.emitWorkers();
  }

  /**
   * Ms from now (by the machine's clock) until the earliest step deadline of a worker that
   * still owes nodes and is not yet past it; undefined when there is none (no step in
   * progress, or every busy worker already missed it). The transport arms a timer for it
   * and then calls checkDeadlines().
   */
  msToDeadline(): number | undefined {
    const r = this.round;
    if (!r || this._state !== 'running') return undefined;
    const now = this.clock();
    const limit = this.deadline.ms;
    let min: number | undefined;
    for (const id of r.busyWorkers()) {
      if (this.timing.isLate(id)) continue;
      const left = Math.max(0, limit - this.timing.sinceGiven(id, now));
      if (min === undefined || left < min) min = left;
    }
    return min;
  }

  /** Workers as the observer events describe them (bytes are filled in by the transport). */
  workerInfos(): WorkerInfo[] {
    return this.workers.infos(this.round);
  }

  /** Total compute time a worker reported, ms. */
  computeMsOf(id: string): number {
    return this.workers.get(id)?.computeMsTotal ?? 0;
  }

  /**
   * The checkpoint of the last completed step: parameters, optimizer state, step, epoch,
   * sampler position (as it was before the batch of a step in progress was drawn) and the
   * run config. Deterministic bytes: at the end of a run, the same as for core's train().
   * It is also the resume checkpoint (see resumeStateFrom): never a half-applied step.
   */
  checkpointBytes(): Uint8Array {
    return encodeFinalCheckpoint({
      config: this.config,
      params: this.params,
      optimizer: this.optState,
      step: this._step,
      epoch: this._epochsDone,
      sampler: this.round ? this.roundSampler! : this.sampler.state(),
    });
  }

  /** Stop: no more steps (used when the transport closes early). */
  abort(err: Error): void {
    if (this._state === 'finished' || this._state === 'failed' || this._state === 'stopped') return;
    this.fail(err);
  }

  /**
   * Stop cleanly: the step in progress is abandoned (nothing of it was applied), no further
   * step starts, no output is produced. checkpointBytes() still gives the last completed step.
   */
  stop(reason: string): void {
    if (this._state === 'finished' || this._state === 'failed' || this._state === 'stopped') return;
    this._state = 'stopped';
    this.out.log(`stopping at step ${this._step} of ${this.totalSteps}: ${reason}${this.round ? ` (step ${this.round.step} abandoned)` : ''}`);
  }

  /** Members of the current step that are still ready. */
  private liveMembers(): string[] {
    return this.members.filter((id) => this.workers.isReady(id));
  }

  /** Start the next step if possible, or finish. */
  private advance(): void {
    if (this.round || (this._state !== 'waiting' && this._state !== 'running')) return;
    if (this._step >= this.totalSteps) return this.finish();
    const ready = this.workers.readyIds();
    // minWorkers gates the first step of this session; later steps go on with whoever is ready
    const need = this.stepsRun > 0 ? 1 : this.minWorkers;
    if (ready.length < need) {
      const note = `waiting for ${need - ready.length} more worker(s): ${ready.length} ready, ${this.stepsRun > 0 ? 'at least 1 needed' : `minWorkers ${this.minWorkers}`}`;
      if (note !== this.waitingNote) this.out.log(note);
      this.waitingNote = note;
      this._state = 'waiting';
      return;
    }
    this.waitingNote = '';
    this._state = 'running';
    // a worker that missed the last deadline sits out until it shows signs of life (unless nobody else is left)
    const prompt = ready.filter((id) => !this.workers.get(id)!.lagging);
    this.startRound(prompt.length > 0 ? prompt : ready);
  }

  private startRound(ready: string[]): void {
    const start = this.clock();
    this.stepsRun++;
    this.roundSampler = this.sampler.state();
    const batch = this.sampler.next();
    const r = new Round({
      step: this._step,
      version: this._version,
      batch,
      leafSize: this.config.leafSize,
      paramCount: this.paramCount,
      takeBuffer: () => this.pool.take(),
      releaseBuffer: (b) => this.pool.give(b),
      add: this.reduceKernels.add,
      scan: this.reduceKernels.firstNonFinite,
    });
    this.round = r;
    this.members = ready;
    const before = this.timing;
    this.timing = new RoundTiming(start);
    const tasks = sendOrder(r.assign(ready, this.weights(ready, r.L)), before);
    // params then task, worker by worker: the first starts computing while the next is sent to
    for (const { workerId, task } of tasks) {
      this.broadcast([workerId]);
      this.out.sendTask(workerId, task);
    }
    this.timing.sent = this.clock();
    for (const { workerId } of tasks) this.timing.gave(workerId, this.timing.sent);
  }

  /**
   * Leaf weights (leaves per worker) of a step of L leaves under balance 'speed': the split
   * chooseSplit keeps or picks from the workers' smoothed speeds, a worker not measured yet
   * counting as the median of the others, every speed kept within 1/8 of the largest (so a
   * worker measured in a bad moment still gets leaves to be measured again). Undefined (an
   * even split) under 'even', for one worker, more workers than leaves, or none measured.
   */
  private weights(ids: readonly string[], L: number): number[] | undefined {
    if (this.balance === 'even' || ids.length < 2 || ids.length > L) return undefined;
    const speeds = ids.map((id) => this.workers.get(id)!.speed);
    const known = speeds.filter((s) => s > 0).sort((a, b) => a - b);
    if (known.length === 0) return undefined;
    const median = known[known.length >> 1];
    const max = known[known.length - 1];
    const key = `${L}:${ids.join(',')}`;
    const current = this.split?.key === key ? this.split.leaves : undefined;
    const leaves = chooseSplit(L, speeds.map((s) => Math.max(s > 0 ? s : median, max / 8)), current);
    this.split = { key, leaves };
    return leaves;
  }

  /** Send the current params to those of `ids` that lack this version. */
  private broadcast(ids: string[]): void {
    const need = ids.filter((id) => this.workers.get(id)!.version !== this._version);
    if (need.length === 0) return;
    const t0 = this.clock();
    this.out.sendParams(need, this._version, this.params);
    this.timing.broadcastMs += this.clock() - t0;
    for (const id of need) this.workers.get(id)!.version = this._version;
  }

  /**
   * Workers to give orphaned nodes to, best first: the step's live members, else ready
   * workers that joined during the step (taken into it), else workers that missed the
   * deadline, else `exclude` itself (the only worker left: a retry).
   */
  private helpers(exclude?: string): string[] {
    const ok = (id: string) => id !== exclude && this.workers.isReady(id) && !this.workers.get(id)!.lagging;
    let live = this.members.filter(ok);
    if (live.length === 0) {
      live = this.workers.readyIds().filter((id) => ok(id) && !this.members.includes(id));
      this.members.push(...live);
    }
    if (live.length === 0) live = this.workers.readyIds().filter((id) => id !== exclude);
    if (live.length === 0 && exclude !== undefined && this.workers.isReady(exclude)) live = [exclude];
    for (const id of live) if (!this.members.includes(id)) this.members.push(id);
    return live;
  }

  /**
   * Give orphaned nodes of the round to helpers (see helpers()), round-robin in node
   * order. With no ready worker at all, the nodes wait for the next worker to become ready.
   */
  private redistribute(exclude?: string): void {
    const r = this.round!;
    const orphans = r.orphans();
    if (orphans.length === 0) return;
    const live = this.helpers(exclude);
    if (live.length === 0) {
      this.out.log(`step ${r.step}: ${orphans.length} node(s) wait for a worker (no live worker)`);
      return;
    }
    orphans.forEach(({ node, from }, i) => {
      const to = live[i % live.length];
      const task = r.reassign(node, to);
      this.broadcast([to]);
      this.out.sendTask(to, task);
      this.timing.gave(to, this.clock());
      this.out.event({ kind: 'reassigned', step: r.step, from, to, leaves: [task.leafLo, task.leafHi] });
    });
  }

  /**
   * A bad result for a node, a result for no node (a step never assigned: 'none') or a
   * worker's error report ('all' its nodes): nothing of it is applied. 'stop' fails the run
   * naming the worker and the step; 'skip' counts it and recomputes the node(s) elsewhere,
   * each node at most maxRetries times.
   */
  private badResult(id: string, code: 'E_NONFINITE' | 'E_WORKER', detail: string, which: { lo: number; size: number } | 'none' | 'all'): void {
    this.badResults++;
    const r = this.round;
    const step = this.currentStep;
    const name = this.workers.get(id)?.hello.workerName;
    const message = `worker ${id}${name && name !== id ? ` (${name})` : ''} at step ${step}: ${detail}`;
    if (this.policy === 'stop') return this.fail(new DptrainError(code, message));
    this.out.log(`${message}; dropped (nonFinitePolicy skip)`);
    this.out.event({ kind: 'error', code, message: `${message}; dropped`, workerId: id });
    if (!r) return;
    const nodes = which === 'all' ? r.outstanding(id) : which === 'none' ? [] : [which];
    let orphaned = false;
    for (const n of nodes) {
      const f = r.fail(id, n.lo, n.size);
      if (!f) continue;
      if (f.failures > this.maxRetries) {
        return this.fail(new DptrainError(code, `${message}; node (${n.lo}, ${n.size}) of step ${step} failed ${f.failures} times, more than maxRetries ${this.maxRetries}`));
      }
      orphaned ||= f.orphaned;
    }
    if (orphaned) this.redistribute(id);
  }

  /** Report the step's stragglers (each once); returns how many were reported. */
  private checkStragglers(): number {
    const r = this.round;
    if (!r) return 0;
    const found = this.timing.stragglers(this.clock(), r.busyWorkers(), this.stragglerMinMs);
    for (const s of found) {
      this.out.event({ kind: 'straggler', workerId: s.id, step: r.step, computeMs: s.elapsedMs, medianMs: s.medianMs });
    }
    return found.length;
  }

  /**
   * Past the step deadline (counted from the worker's latest assignment in the step), a
   * worker still owing nodes is reported as a straggler, sits
   * out the next steps until it delivers again, and its nodes are re-executed on other
   * workers (it keeps them too: the first valid result wins, the other is dropped).
   * Returns how many workers went past the deadline.
   */
  private checkDeadline(): number {
    const r = this.round;
    if (!r) return 0;
    const now = this.clock();
    const limit = this.deadline.ms;
    let late = 0;
    for (const id of r.busyWorkers()) {
      const elapsed = this.timing.sinceGiven(id, now);
      if (elapsed <= limit || !this.timing.markLate(id)) continue;
      late++;
      const w = this.workers.get(id);
      if (w) w.lagging = true;
      if (this.timing.flag(id)) this.out.event({ kind: 'straggler', workerId: id, step: r.step, computeMs: elapsed, medianMs: this.deadline.medianMs });
      const busy = r.busyWorkers();
      const others = this.workers.readyIds().filter((x) => x !== id && !this.workers.get(x)!.lagging);
      // idle workers first, in join order
      const helpers = [...others.filter((x) => !busy.has(x)), ...others.filter((x) => busy.has(x))];
      const nodes = r.outstanding(id);
      if (helpers.length === 0) {
        this.out.log(`step ${r.step}: worker ${id} is past the step deadline (${Math.round(limit)} ms) with ${nodes.length} node(s); no other worker can take them`);
        continue;
      }
      this.out.log(`step ${r.step}: worker ${id} is past the step deadline (${Math.round(limit)} ms); re-executing its ${nodes.length} node(s) elsewhere`);
      nodes.forEach((node, i) => {
        let to: string | undefined;
        for (let k = 0; k < helpers.length && to === undefined; k++) {
          const c = helpers[(i + k) % helpers.length];
          if (!r.owes(c, node)) to = c;
        }
        if (to === undefined) return;
        if (!this.members.includes(to)) this.members.push(to);
        const task = r.duplicate(node, to);
        this.reexecuted++;
        this.broadcast([to]);
        this.out.sendTask(to, task);
        this.timing.gave(to, now);
        this.out.event({ kind: 'reassigned', step: r.step, from: id, to, leaves: [task.leafLo, task.leafHi] });
      });
    }
    return late;
  }

  private finishRound(): void {
    const r = this.round!;
    const st = r.stats();
    const grad = r.gradSum();
    const t0 = this.clock();
    let lr: number;
    try {
      lr = applyUpdate(this.params, grad, r.B, this.config.optimizer, this.optState, r.step, this.reduceKernels).lr;
    } catch (e) {
      this.pool.give(grad);
      return this.fail(e instanceof Error ? e : new DptrainError('E_INTERNAL', String(e)));
    }
    const t1 = this.clock();
    this.pool.give(grad);
    this.deadline.record(this.timing.last - this.timing.sent);
    this._step++;
    this._version++;
    this._samplesDone += r.B;
    this.round = undefined;
    this.roundSampler = undefined;
    const phases = this.timing.phases(Math.max(0, ...r.computeMs.values()), t1 - t0, t1);
    const totalMs = phases.totalMs;
    const fin = (x: number) => (Number.isFinite(x) ? x : null);
    const b = r.batch;
    const ev: RunEventInit = {
      kind: 'step',
      step: this._step,
      epoch: b.epoch,
      loss: fin(st.lossSum / r.B),
      accuracy: fin(st.correct / r.B),
      samples: r.B,
      samplesPerSec: totalMs > 0 ? (r.B * 1000) / totalMs : 0,
      lr,
      phases,
      workers: r.participants.size,
    };
    const epochEnd = b.batchInEpoch === b.batchesPerEpoch - 1;
    if (epochEnd) this._epochsDone = b.epoch + 1;
    this._lastStep = ev;
    this.out.event(ev);
    const every = this.config.evalEvery;
    const evalDue = this.periodicEvaluation && ((every > 0 && this._step % every === 0) || epochEnd);
    this.out.stepDone?.(this._step);
    // The next step's tasks go out first: the workers compute while the test set is
    // evaluated here, on a copy of this step's params (a transport that delivered results
    // within sendTask could otherwise update them first). After the last step, finish()
    // makes the final evaluation, which is this step's eval.
    let evalParams: Float32Array | undefined;
    if (evalDue && this._step < this.totalSteps) {
      evalParams = this.evalCopy ??= new Float32Array(this.paramCount);
      evalParams.set(this.params);
    }
    this.advance();
    if (evalParams && this.evalStep !== this._step && (this._state === 'running' || this._state === 'waiting')) {
      const e = evaluate(this.evalNet, evalParams, this.data.test);
      this._lastEval = e;
      this.evalStep = this._step;
      this.out.event({ kind: 'eval', step: this._step, epoch: b.epoch, loss: fin(e.loss), accuracy: fin(e.accuracy) });
    }
    // after advance(): the next step's leaves are out (busy/idle, leaves of the step in progress)
    this.emitWorkers();
  }

  /** The final evaluation; it is also an `eval` event (for the charts) unless this step already had one. */
  private finish(): void {
    this._state = 'finished';
    const e = evaluate(this.evalNet, this.params, this.data.test, { confusion: true });
    this._final = e;
    this._lastEval = e;
    if (this.evalStep !== this._step) {
      this.evalStep = this._step;
      const fin = (x: number) => (Number.isFinite(x) ? x : null);
      // the epoch of the last batch: the sampler is past it (at cursor 0 of the next epoch if it ended one)
      const s = this.sampler.state();
      const epoch = this._lastStep?.kind === 'step' ? this._lastStep.epoch : s.cursor === 0 && s.epoch > 0 ? s.epoch - 1 : s.epoch;
      this.out.event({ kind: 'eval', step: this._step, epoch, loss: fin(e.loss), accuracy: fin(e.accuracy) });
    }
    this.out.runFinished();
  }

  private fail(err: Error): void {
    this._state = 'failed';
    this._error = err;
    this.out.event({ kind: 'error', code: err instanceof DptrainError ? err.code : 'E_INTERNAL', message: err.message });
    this.out.runFailed(err);
  }

  private emitWorkers(): void {
    this.out.event({ kind: 'workers', step: this._step, list: this.workerInfos() });
  }
}

/**
 * The kernels the reduction runs on, whatever the run's kernel: add and firstNonFinite
 * give the same bits in every implementation, so this is only about speed. WebAssembly
 * where available, with room for the parameters, the optimizer's `slots` state buffers and
 * 16 gradient buffers (up to 2 GiB; beyond, plain arrays).
 */
function reductionKernels(paramCount: number, slots: number): Kernels {
  if (!wasmSupported()) return jsKernels;
  const mib = Math.min(2048, Math.ceil(((17 + slots) * (paramCount * 4 + 64) + (4 << 20)) / (1 << 20)));
  return createWasmKernels({ memoryMiB: Math.max(4, mib) });
}
