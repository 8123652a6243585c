import { ConfigError, ShapeError } from './errors.js';

export interface EarlyStoppingConfig {
  /** What is watched: 'loss' (lower is better) or 'accuracy' (higher is better). */
  monitor: 'loss' | 'accuracy';
  /** Consecutive evaluations without improvement that stop training: integer >= 0 (0 acts as 1), default 3. */
  patience?: number;
  /** An improvement must beat the best by more than this: finite >= 0, default 0. */
  minDelta?: number;
  /** Keep a copy of the parameters at the best value (bestParams()); default true. */
  restoreBest?: boolean;
}

export type ResolvedEarlyStoppingConfig = Required<EarlyStoppingConfig> & { mode: 'min' | 'max' };

/** Plain-data progress of an EarlyStopping, for checkpoints. */
export interface EarlyStoppingState {
  best: number | null;
  bestStep: number;
  wait: number;
  updates: number;
}

const KEYS = ['monitor', 'patience', 'minDelta', 'restoreBest'];

/** Check early-stopping options and merge them over the defaults. */
export function validateEarlyStopping(o: unknown): ResolvedEarlyStoppingConfig {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError('earlyStopping', 'expected an object { monitor, patience, minDelta, restoreBest }');
  const c = o as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) throw new ConfigError(`earlyStopping.${k}`, `unknown key; allowed keys: ${KEYS.join(', ')}`);
  if (c.monitor !== 'loss' && c.monitor !== 'accuracy') throw new ConfigError('earlyStopping.monitor', `expected 'loss' or 'accuracy', got ${JSON.stringify(c.monitor)}`);
  const patience = c.patience ?? 3;
  if (typeof patience !== 'number' || !Number.isSafeInteger(patience) || patience < 0) throw new ConfigError('earlyStopping.patience', `expected an integer >= 0, got ${JSON.stringify(c.patience)}`);
  const minDelta = c.minDelta ?? 0;
  if (typeof minDelta !== 'number' || !(minDelta >= 0 && Number.isFinite(minDelta))) throw new ConfigError('earlyStopping.minDelta', `expected a finite number >= 0, got ${JSON.stringify(c.minDelta)}`);
  const restoreBest = c.restoreBest ?? true;
  if (typeof restoreBest !== 'boolean') throw new ConfigError('earlyStopping.restoreBest', `expected a boolean, got ${JSON.stringify(c.restoreBest)}`);
  return { monitor: c.monitor, mode: c.monitor === 'loss' ? 'min' : 'max', patience, minDelta, restoreBest };
}

/**
 * Stop training when a validation metric stops improving (as Keras EarlyStopping): a value
 * improves when it is below best - minDelta (loss) or above best + minDelta (accuracy); NaN
 * never improves. After `patience` consecutive evaluations without improvement (at least one),
 * update() returns true. With restoreBest, a copy of the parameters at the best value is kept.
 */
export class EarlyStopping {
  readonly options: ResolvedEarlyStoppingConfig;
  private bestValue: number | undefined;
  private bestAt = -1;
  private waited = 0;
  private count = 0;
  private saved: Float32Array | undefined;

  constructor(options: EarlyStoppingConfig) {
    this.options = validateEarlyStopping(options);
  }

  /** Best value seen so far (undefined before the first update). */
  get best(): number | undefined {
    return this.bestValue;
  }

  /** 0-based index of the update() call that gave the best value, -1 before any. */
  get bestStep(): number {
    return this.bestAt;
  }

  /** Consecutive updates without improvement. */
  get wait(): number {
    return this.waited;
  }

  /** Record one evaluation of the monitored value for the current `params`; true = stop now. */
  update(value: number, params: Float32Array): boolean {
    if (typeof value !== 'number') throw new ConfigError('earlyStopping.value', `expected a number, got ${JSON.stringify(value)}`);
    if (this.saved && params.length !== this.saved.length) throw new ShapeError(`early stopping: ${params.length} parameters, earlier calls had ${this.saved.length}`);
    const { mode, minDelta, patience, restoreBest } = this.options;
    const b = this.bestValue;
    const improved = b === undefined ? !Number.isNaN(value) : mode === 'min' ? value < b - minDelta : value > b + minDelta;
    const step = this.count++;
    if (improved) {
      this.bestValue = value;
      this.bestAt = step;
      this.waited = 0;
      if (restoreBest) {
        if (!this.saved) this.saved = new Float32Array(params.length);
        this.saved.set(params);
      }
      return false;
    }
    this.waited++;
    return this.waited >= Math.max(patience, 1);
  }

  /** A copy of the parameters at the best value (restoreBest only), else undefined. */
  bestParams(): Float32Array | undefined {
    return this.saved && this.bestAt >= 0 ? this.saved.slice() : undefined;
  }

  /** Progress as plain data (the best parameters are not included). */
  state(): EarlyStoppingState {
    return { best: this.bestValue ?? null, bestStep: this.bestAt, wait: this.waited, updates: this.count };
  }

  /** Rebuild from options and state(); pass the saved best parameters to keep restoreBest working. */
  static fromState(options: EarlyStoppingConfig, s: EarlyStoppingState, bestParams?: Float32Array): EarlyStopping {
    const e = new EarlyStopping(options);
    const ints = [s.bestStep, s.wait, s.updates];
    if (ints.some((v) => !Number.isSafeInteger(v)) || s.updates < 0 || s.wait < 0 || s.bestStep < -1 || s.bestStep >= s.updates) {
      throw new ConfigError('earlyStopping.state', `inconsistent state ${JSON.stringify(s)}`);
    }
    if (s.best !== null && typeof s.best !== 'number') throw new ConfigError('earlyStopping.state.best', `expected a number or null, got ${JSON.stringify(s.best)}`);
    e.bestValue = s.best ?? undefined;
    e.bestAt = s.bestStep;
    e.waited = s.wait;
    e.count = s.updates;
    if (bestParams) e.saved = bestParams.slice();
    return e;
  }
}
