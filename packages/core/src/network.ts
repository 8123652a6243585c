import { type KernelName, type Kernels, createWasmKernels, getKernels } from './kernels/index.js';
import { type Activation, type ModelSpec, type ParamLayout, paramLayout, validateModelSpec } from './spec.js';
import { Rng, deriveSeed } from './rng.js';
import { ShapeError } from './errors.js';

/** Options of one forward/backward pass. */
export interface PassOptions {
  /** Apply inverted dropout (training only). Needs dropoutSeed, step and sampleIds. */
  training?: boolean;
  dropoutSeed?: number;
  step?: number;
  /** Global sample index of each row: dropout masks depend on (seed, step, sample, layer), never on the process. */
  sampleIds?: ArrayLike<number>;
}

export interface LossStats {
  /** Sum of per-sample losses over the rows. */
  lossSum: number;
  /** Rows classified correctly (argmax, or threshold 0.5 for one output). */
  correct: number;
}

/**
 * A dense MLP with preallocated buffers for up to maxRows rows.
 *
 * Forward per layer: Z = A_prev·Wᵀ + b, A = g(Z) (then inverted dropout while
 * training). Backward: δ(L) from the loss (fused with softmax / sigmoid where that
 * is the stable form), dW = δᵀ·A_prev, db = Σ_rows δ, and for hidden layers
 * δ(l) = (δ(l+1)·W(l+1)) ⊙ mask ⊙ g'(z(l)). The gradient is the SUM over rows;
 * dividing by the global batch is the caller's job (it must happen once, after
 * the fixed reduction tree).
 *
 * Losses per sample: mse = ½ Σ_j (a_j − y_j)²; bce = −Σ_j [y log σ(z) + (1−y) log(1−σ(z))]
 * computed from the logit; softmax_cross_entropy = logsumexp(z) − Σ_j y_j z_j (for rows whose targets sum to 1).
 */
export class Network {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  readonly kernels: Kernels;
  readonly maxRows: number;
  /** Parameters the passes read (fill with setParams). */
  readonly params: Float32Array;
  /** Gradient sum of the last backward pass. */
  readonly grad: Float32Array;
  /** Input rows [maxRows, inputSize]: fill directly, then call forward/backward. */
  readonly input: Float32Array;
  /** Target rows [maxRows, outputSize]. */
  readonly target: Float32Array;
  private readonly W: Float32Array[] = [];
  private readonly b: Float32Array[] = [];
  private readonly dW: Float32Array[] = [];
  private readonly db: Float32Array[] = [];
  private readonly z: Float32Array[] = [];
  /** Activation before dropout (h) and after (a); the same buffer without dropout. */
  private readonly h: Float32Array[] = [];
  private readonly a: Float32Array[] = [];
  private readonly delta: Float32Array[] = [];
  private readonly mask: (Float32Array | undefined)[] = [];
  private readonly sizes: number[];
  private readonly slope: number;

  constructor(specIn: ModelSpec, opts: { maxRows: number; kernels?: Kernels }) {
    this.spec = validateModelSpec(specIn);
    this.layout = paramLayout(this.spec);
    this.kernels = opts.kernels ?? getKernels('js');
    if (!Number.isInteger(opts.maxRows) || opts.maxRows < 1) throw new ShapeError(`maxRows must be a positive integer, got ${opts.maxRows}`);
    this.maxRows = opts.maxRows;
    this.slope = this.spec.leakySlope ?? 0.01;
    const K = this.kernels;
    this.params = K.alloc(this.layout.total);
    this.grad = K.alloc(this.layout.total);
    this.sizes = [this.spec.inputSize, ...this.spec.layers.map((l) => l.units)];
    this.input = K.alloc(this.maxRows * this.spec.inputSize);
    this.target = K.alloc(this.maxRows * this.outputSize);
    this.spec.layers.forEach((l, i) => {
      const w = this.layout.tensors[2 * i];
      const bb = this.layout.tensors[2 * i + 1];
      this.W.push(this.params.subarray(w.offset, w.offset + w.length));
      this.b.push(this.params.subarray(bb.offset, bb.offset + bb.length));
      this.dW.push(this.grad.subarray(w.offset, w.offset + w.length));
      this.db.push(this.grad.subarray(bb.offset, bb.offset + bb.length));
      const n = this.maxRows * l.units;
      this.z.push(K.alloc(n));
      const h = K.alloc(n);
      this.h.push(h);
      const drop = (l.dropout ?? 0) > 0;
      this.a.push(drop ? K.alloc(n) : h);
      this.mask.push(drop ? new Float32Array(n) : undefined);
      this.delta.push(K.alloc(n));
    });
  }

  get inputSize(): number {
    return this.spec.inputSize;
  }

  get outputSize(): number {
    return this.spec.layers[this.spec.layers.length - 1].units;
  }

  /** Copy parameters in (length checked). */
  setParams(p: Float32Array): void {
    if (p.length !== this.layout.total) throw new ShapeError(`parameters have ${p.length} values, model ${describe(this.spec)} needs ${this.layout.total}`);
    this.params.set(p);
  }

  /** Forward pass over the first `rows` rows of `input`; returns the output activations view [rows, outputSize]. */
  forward(rows: number, opts: PassOptions = {}): Float32Array {
    this.checkRows(rows);
    const K = this.kernels;
    const L = this.spec.layers.length;
    let prev = this.input;
    for (let l = 0; l < L; l++) {
      const layer = this.spec.layers[l];
      const n = layer.units;
      const k = this.sizes[l];
      if (layer.activation === 'relu' && l < L - 1) {
        // hidden ReLU fused into the GEMM: h = max(0, X·Wᵀ + b) directly (z is not kept:
        // the backward pass reads ReLU's derivative off h, h > 0 exactly when z > 0)
        K.gemmABt(rows, n, k, prev, this.W[l], this.h[l], this.b[l], true);
      } else {
        K.gemmABt(rows, n, k, prev, this.W[l], this.z[l], this.b[l]);
        activate(layer.activation, this.z[l], this.h[l], rows, n, this.slope);
      }
      const p = layer.dropout ?? 0;
      if (p > 0) {
        const mask = this.mask[l]!;
        if (opts.training) {
          if (opts.dropoutSeed === undefined || opts.sampleIds === undefined || opts.step === undefined) {
            throw new ShapeError('dropout while training needs dropoutSeed, step and sampleIds');
          }
          fillDropoutMask(mask, rows, n, p, opts.dropoutSeed, opts.step, opts.sampleIds, l);
        } else {
          mask.fill(1, 0, rows * n);
        }
        const h = this.h[l];
        const a = this.a[l];
        for (let i = 0; i < rows * n; i++) a[i] = h[i] * mask[i];
      }
      prev = this.a[l];
    }
    return this.a[L - 1].subarray(0, rows * this.outputSize);
  }

  /**
   * Loss of the last forward pass against target rows (without backward).
   * Used by evaluation; lossAndGrad computes the same numbers.
   */
  loss(rows: number): LossStats {
    return this.outputDelta(rows, false);
  }

  /**
   * Forward + backward over `rows` rows of input/target; writes the gradient sum into
   * `gradOut` (default `grad`), a flat buffer in the parameter layout — best one from
   * `kernels.alloc`, which the kernels write in place (any other is correct, just slower).
   */
  lossAndGrad(rows: number, opts: PassOptions = {}, gradOut: Float32Array = this.grad): LossStats {
    this.checkGradOut(gradOut);
    this.forward(rows, opts);
    const stats = this.outputDelta(rows, true);
    this.backwardDeltas(rows);
    this.rowGradient(0, rows, gradOut);
    return stats;
  }

  /**
   * Forward pass and the δ of every layer over `rows` rows of input/target, without the
   * weight gradients: the first half of lossAndGrad, for many leaves' rows at once (a
   * row's values depend only on that row, in every kernel). Each row's loss goes into
   * `rowLoss[r]` and whether it was classified correctly into `rowCorrect[r]` (1 or 0).
   * Then rowGradient gives the gradient sum of any run of these rows.
   */
  forwardDeltas(rows: number, opts: PassOptions, rowLoss: Float64Array, rowCorrect: Uint8Array): void {
    if (rowLoss.length < rows || rowCorrect.length < rows) throw new ShapeError(`per-row outputs hold ${Math.min(rowLoss.length, rowCorrect.length)} rows, the pass has ${rows}`);
    this.forward(rows, opts);
    this.outputDelta(rows, true, rowLoss, rowCorrect);
    this.backwardDeltas(rows);
  }

  /**
   * Gradient sum of rows [r0, r0 + rows) of the last forwardDeltas (or lossAndGrad) pass into
   * `gradOut`: dW = δᵀ·A_prev and db = Σ_rows δ of those rows, layer by layer — the same
   * bits as lossAndGrad over just those rows.
   */
  rowGradient(r0: number, rows: number, gradOut: Float32Array): void {
    this.checkGradOut(gradOut);
    if (!Number.isInteger(r0) || !Number.isInteger(rows) || r0 < 0 || rows < 1 || r0 + rows > this.maxRows) throw new ShapeError(`rows [${r0}, ${r0 + rows}) are outside the pass's ${this.maxRows} rows`);
    const K = this.kernels;
    const own = gradOut === this.grad;
    const t = this.layout.tensors;
    for (let l = this.spec.layers.length - 1; l >= 0; l--) {
      const n = this.sizes[l + 1];
      const k = this.sizes[l];
      const d = this.delta[l].subarray(r0 * n, (r0 + rows) * n);
      const prevAll = l === 0 ? this.input : this.a[l - 1];
      const prev = prevAll.subarray(r0 * k, (r0 + rows) * k);
      const dW = own ? this.dW[l] : gradOut.subarray(t[2 * l].offset, t[2 * l].offset + t[2 * l].length);
      const db = own ? this.db[l] : gradOut.subarray(t[2 * l + 1].offset, t[2 * l + 1].offset + t[2 * l + 1].length);
      K.gemmAtB(rows, n, k, d, prev, dW);
      K.colSums(rows, n, d, db);
    }
  }

  private checkGradOut(gradOut: Float32Array): void {
    if (gradOut.length < this.layout.total) throw new ShapeError(`gradient buffer has ${gradOut.length} values, model ${describe(this.spec)} needs ${this.layout.total}`);
  }

  private checkRows(rows: number): void {
    if (!Number.isInteger(rows) || rows < 1 || rows > this.maxRows) throw new ShapeError(`rows must be an integer in [1, ${this.maxRows}], got ${rows}`);
  }

  /** Loss and δ(L) = ∂loss/∂z(L) (the fused form for softmax+CE and sigmoid+BCE). */
  private outputDelta(rows: number, withDelta: boolean, rowLoss?: Float64Array, rowCorrect?: Uint8Array): LossStats {
    const L = this.spec.layers.length - 1;
    const out = this.outputSize;
    const z = this.z[L];
    const a = this.a[L];
    const y = this.target;
    const d = this.delta[L];
    const act = this.spec.layers[L].activation;
    let lossSum = 0;
    let correct = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * out;
      let loss = 0;
      if (this.spec.loss === 'softmax_cross_entropy') {
        let m = -Infinity;
        for (let j = 0; j < out; j++) if (z[o + j] > m) m = z[o + j];
        let s = 0;
        for (let j = 0; j < out; j++) s += Math.exp(z[o + j] - m);
        const lse = m + Math.log(s);
        let sy = 0;
        for (let j = 0; j < out; j++) {
          sy += y[o + j];
          loss += y[o + j] * (lse - z[o + j]);
        }
        if (withDelta) for (let j = 0; j < out; j++) d[o + j] = a[o + j] * sy - y[o + j];
      } else if (this.spec.loss === 'bce') {
        for (let j = 0; j < out; j++) {
          const zz = z[o + j];
          const t = y[o + j];
          loss += Math.max(zz, 0) - zz * t + Math.log1p(Math.exp(-Math.abs(zz)));
          if (withDelta) d[o + j] = a[o + j] - t;
        }
      } else {
        for (let j = 0; j < out; j++) {
          const e = a[o + j] - y[o + j];
          loss += 0.5 * e * e;
          if (withDelta) d[o + j] = e * derivative(act, z[o + j], a[o + j], this.slope);
        }
      }
      lossSum += loss;
      let hit: boolean;
      if (out === 1) {
        hit = a[o] >= 0.5 === y[o] >= 0.5;
      } else {
        let ai = 0;
        let yi = 0;
        for (let j = 1; j < out; j++) {
          if (a[o + j] > a[o + ai]) ai = j;
          if (y[o + j] > y[o + yi]) yi = j;
        }
        hit = ai === yi;
      }
      if (hit) correct++;
      if (rowLoss) rowLoss[r] = loss;
      if (rowCorrect) rowCorrect[r] = hit ? 1 : 0;
    }
    return { lossSum, correct };
  }

  /** δ of every hidden layer, top down: δ(l) = (δ(l+1)·W(l+1)) ⊙ mask ⊙ g'(z(l)) (δ of the output layer is outputDelta's). */
  private backwardDeltas(rows: number): void {
    const K = this.kernels;
    for (let l = this.spec.layers.length - 1; l > 0; l--) {
      const n = this.sizes[l + 1];
      const k = this.sizes[l];
      const dPrev = this.delta[l - 1];
      K.gemmAB(rows, n, k, this.delta[l], this.W[l], dPrev);
      const layer = this.spec.layers[l - 1];
      const mask = this.mask[l - 1];
      const z = this.z[l - 1];
      const h = this.h[l - 1];
      const cnt = rows * k;
      if (mask) for (let i = 0; i < cnt; i++) dPrev[i] *= mask[i];
      if (layer.activation === 'relu') K.reluGrad(cnt, dPrev, h);
      else derivativeInPlace(layer.activation, dPrev, z, h, cnt, this.slope);
    }
  }
}

function describe(spec: ModelSpec): string {
  return [spec.inputSize, ...spec.layers.map((l) => l.units)].join('-');
}

/** h = g(z) over rows×n values; softmax per row. */
function activate(act: Activation, z: Float32Array, h: Float32Array, rows: number, n: number, slope: number): void {
  const cnt = rows * n;
  switch (act) {
    case 'identity':
      for (let i = 0; i < cnt; i++) h[i] = z[i];
      return;
    case 'relu':
      for (let i = 0; i < cnt; i++) h[i] = z[i] > 0 ? z[i] : 0;
      return;
    case 'leaky_relu':
      for (let i = 0; i < cnt; i++) h[i] = z[i] > 0 ? z[i] : slope * z[i];
      return;
    case 'sigmoid':
      for (let i = 0; i < cnt; i++) h[i] = 1 / (1 + Math.exp(-z[i]));
      return;
    case 'tanh':
      for (let i = 0; i < cnt; i++) h[i] = Math.tanh(z[i]);
      return;
    case 'softmax':
      for (let r = 0; r < rows; r++) {
        const o = r * n;
        let m = -Infinity;
        for (let j = 0; j < n; j++) if (z[o + j] > m) m = z[o + j];
        let s = 0;
        for (let j = 0; j < n; j++) s += Math.exp(z[o + j] - m);
        for (let j = 0; j < n; j++) h[o + j] = Math.exp(z[o + j] - m) / s;
      }
      return;
  }
}

/** g'(z), using the activation value where that is the exact identity (sigmoid, tanh). */
function derivative(act: Activation, z: number, a: number, slope: number): number {
  switch (act) {
    case 'identity':
      return 1;
    case 'relu':
      return z > 0 ? 1 : 0;
    case 'leaky_relu':
      return z > 0 ? 1 : slope;
    case 'sigmoid':
      return a * (1 - a);
    case 'tanh':
      return 1 - a * a;
    default:
      throw new ShapeError(`no elementwise derivative for ${act}`);
  }
}

/** d *= g'(z) for a hidden layer (h = g(z) before dropout). */
function derivativeInPlace(act: Activation, d: Float32Array, z: Float32Array, h: Float32Array, cnt: number, slope: number): void {
  switch (act) {
    case 'identity':
      return;
    case 'relu':
      // h = max(0, z): h > 0 exactly when z > 0 (and z is not kept for fused ReLU layers)
      for (let i = 0; i < cnt; i++) if (!(h[i] > 0)) d[i] = 0;
      return;
    case 'leaky_relu':
      for (let i = 0; i < cnt; i++) if (!(z[i] > 0)) d[i] *= slope;
      return;
    case 'sigmoid':
      for (let i = 0; i < cnt; i++) d[i] *= h[i] * (1 - h[i]);
      return;
    case 'tanh':
      for (let i = 0; i < cnt; i++) d[i] *= 1 - h[i] * h[i];
      return;
    default:
      throw new ShapeError(`activation ${act} cannot be used on a hidden layer`);
  }
}

/** Inverted-dropout mask: keep with probability 1−p, scaled by 1/(1−p); one stream per (seed, step, sample, layer). */
function fillDropoutMask(mask: Float32Array, rows: number, n: number, p: number, seed: number, step: number, ids: ArrayLike<number>, layer: number): void {
  const scale = 1 / (1 - p);
  for (let r = 0; r < rows; r++) {
    const rng = new Rng(deriveSeed(seed, step, ids[r], layer));
    const o = r * n;
    for (let j = 0; j < n; j++) mask[o + j] = rng.nextFloat() < p ? 0 : scale;
  }
}

/** Bytes a Network's buffers take in kernel memory for up to maxRows rows. */
export function networkBytes(spec: ModelSpec, maxRows: number): number {
  const layout = paramLayout(spec);
  const sizes = [spec.inputSize, ...spec.layers.map((l) => l.units)];
  let floats = 2 * layout.total + maxRows * (spec.inputSize + sizes[sizes.length - 1]);
  spec.layers.forEach((l) => {
    floats += maxRows * l.units * ((l.dropout ?? 0) > 0 ? 4 : 3);
  });
  return floats * 4;
}

/**
 * Kernels sized for networks of this spec with the given row counts: 'js' is shared;
 * 'wasm' gets its own memory, large enough for the networks' buffers plus the packing
 * scratch of the largest layer (its weights and a block of rows, twice over), plus
 * `gradBuffers` more parameter-sized buffers (a LeafComputer's reduction tree: see
 * treeBuffers).
 */
export function kernelsForModel(name: KernelName, spec: ModelSpec, maxRows: number[], gradBuffers = 0): Kernels {
  if (name !== 'wasm' && name !== 'wasm-fma') return getKernels(name);
  const sizes = [spec.inputSize, ...spec.layers.map((l) => l.units)];
  let largest = 0;
  for (let i = 1; i < sizes.length; i++) largest = Math.max(largest, (sizes[i] + Math.max(...maxRows)) * (sizes[i - 1] + 8));
  const base = maxRows.reduce((s, r) => s + networkBytes(spec, r) + 256, 0) + 2 * 4 * largest + (8 << 20);
  // as many of the gradient buffers as fit in the 2 GiB a memory may have (a LeafComputer
  // puts the rest in plain arrays)
  const per = paramLayout(spec).total * 4 + 64;
  const grads = Math.max(0, Math.min(gradBuffers, Math.floor((2048 * (1 << 20) - base) / per))) * per;
  return createWasmKernels({ memoryMiB: Math.max(16, Math.min(2048, Math.ceil((base + grads) / (1 << 20)))), fma: name === 'wasm-fma' });
}
