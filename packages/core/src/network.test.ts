import { describe, expect, it } from 'vitest';
import { Network } from './network.js';
import { gradientCheck } from './gradcheck.js';
import { initParams } from './init.js';
import { Rng } from './rng.js';
import { type Activation, type LayerSpec, type LossName, type ModelSpec, paramLayout } from './spec.js';

const HIDDEN: Activation[] = ['identity', 'sigmoid', 'tanh', 'relu', 'leaky_relu'];
const OUTPUTS: { loss: LossName; act: Activation; units: number }[] = [
  { loss: 'mse', act: 'identity', units: 3 },
  { loss: 'mse', act: 'sigmoid', units: 2 },
  { loss: 'mse', act: 'tanh', units: 2 },
  { loss: 'mse', act: 'relu', units: 2 },
  { loss: 'mse', act: 'leaky_relu', units: 2 },
  { loss: 'bce', act: 'sigmoid', units: 2 },
  { loss: 'softmax_cross_entropy', act: 'softmax', units: 4 },
];

function targetsFor(loss: LossName, rows: number, units: number, rng: Rng): Float64Array {
  const y = new Float64Array(rows * units);
  for (let r = 0; r < rows; r++) {
    if (loss === 'softmax_cross_entropy') y[r * units + rng.nextInt(units)] = 1;
    else if (loss === 'bce') for (let j = 0; j < units; j++) y[r * units + j] = rng.nextInt(2);
    else for (let j = 0; j < units; j++) y[r * units + j] = rng.uniform(-1, 1);
  }
  return y;
}

describe('gradient check: every hidden activation × output/loss on 1 to 4 layers', () => {
  const rng = new Rng(7);
  for (const out of OUTPUTS) {
    for (let depth = 1; depth <= 4; depth++) {
      const hidden = HIDDEN[(depth + OUTPUTS.indexOf(out)) % HIDDEN.length];
      it(`${depth} layer(s), hidden ${depth > 1 ? hidden : '-'}, output ${out.act} + ${out.loss}`, () => {
        const layers: LayerSpec[] = [];
        for (let d = 0; d < depth - 1; d++) layers.push({ units: 3 + rng.nextInt(4), activation: hidden });
        layers.push({ units: out.units, activation: out.act });
        const spec: ModelSpec = { inputSize: 2 + rng.nextInt(4), layers, loss: out.loss };
        const params = initParams(spec, rng.nextU32());
        // non-zero biases keep pre-activations off the relu kink at exactly 0
        for (const t of paramLayout(spec).tensors) if (t.name.endsWith('bias')) for (let i = 0; i < t.length; i++) params[t.offset + i] = rng.uniform(-0.5, 0.5);
        const rows = 5;
        const x = Float64Array.from({ length: rows * spec.inputSize }, () => rng.uniform(-1.5, 1.5));
        const y = targetsFor(out.loss, rows, out.units, rng);
        const r = gradientCheck(spec, params, x, y, rows);
        expect(r.checked).toBeGreaterThan(0);
        expect(r.worst, `worst tensor ${r.worstTensor}`).toBeLessThan(1e-4);
      });
    }
  }
  it('every hidden activation is checked on a 3-layer net', () => {
    for (const h of HIDDEN) {
      const spec: ModelSpec = { inputSize: 3, layers: [{ units: 4, activation: h }, { units: 5, activation: h }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
      const params = initParams(spec, 11);
      const x = Float64Array.from({ length: 12 }, () => rng.uniform(-1, 1));
      const y = targetsFor('softmax_cross_entropy', 4, 3, rng);
      expect(gradientCheck(spec, params, x, y, 4).worst, h).toBeLessThan(1e-4);
    }
  });
  it('detects a wrong gradient (the check can fail)', () => {
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 3, activation: 'tanh' }, { units: 1, activation: 'identity' }], loss: 'mse' };
    const params = initParams(spec, 3);
    const proto = Network.prototype as unknown as { lossAndGrad: Network['lossAndGrad'] };
    const orig = proto.lossAndGrad;
    proto.lossAndGrad = function (this: Network, rows, o) {
      const s = orig.call(this, rows, o);
      this.grad[0] *= 1.01; // a 1 % error in one weight
      return s;
    };
    try {
      const r = gradientCheck(spec, params, [0.3, -0.2, 0.5, 0.9], [0.1, -0.4], 2);
      expect(r.worst).toBeGreaterThan(1e-3);
      expect(r.worstTensor).toBe('layers.0.weight');
    } finally {
      proto.lossAndGrad = orig;
    }
  });
});

describe('forward', () => {
  it('a sample gives bit-identical outputs alone and in a batch of 64', () => {
    const spec: ModelSpec = { inputSize: 37, layers: [{ units: 29, activation: 'relu' }, { units: 13, activation: 'tanh' }, { units: 7, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const params = initParams(spec, 5);
    const rng = new Rng(9);
    const x = Float32Array.from({ length: 64 * 37 }, () => rng.uniform(-1, 1));
    const big = new Network(spec, { maxRows: 64 });
    big.setParams(params);
    big.input.set(x);
    const all = Float32Array.from(big.forward(64));
    const one = new Network(spec, { maxRows: 1 });
    one.setParams(params);
    for (const r of [0, 1, 31, 63]) {
      one.input.set(x.subarray(r * 37, (r + 1) * 37));
      const o = one.forward(1);
      expect(Array.from(o)).toEqual(Array.from(all.subarray(r * 7, (r + 1) * 7)));
    }
  });

  it('softmax cross-entropy stays finite for huge logits', () => {
    const spec: ModelSpec = { inputSize: 1, layers: [{ units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const net = new Network(spec, { maxRows: 1 });
    net.setParams(Float32Array.from([1000, -1000, 0, 0, 0, 0]));
    net.input[0] = 5;
    net.target.set([0, 1, 0]);
    const st = net.lossAndGrad(1);
    expect(Number.isFinite(st.lossSum)).toBe(true);
    expect(st.lossSum).toBeCloseTo(10000, 0);
    for (const g of net.grad) expect(Number.isFinite(g)).toBe(true);
  });

  it('rejects wrong parameter counts and row counts with clear errors', () => {
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 2, activation: 'sigmoid' }, { units: 1, activation: 'sigmoid' }], loss: 'mse' };
    const net = new Network(spec, { maxRows: 4 });
    expect(() => net.setParams(new Float32Array(5))).toThrow(/5 values, model 2-2-1 needs 9/);
    expect(() => net.forward(5)).toThrow(/rows must be an integer in \[1, 4\], got 5/);
  });
});

describe('learning', () => {
  it('the 2-2-1 sigmoid/MSE toy net decreases its loss monotonically under small-step SGD', () => {
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 2, activation: 'sigmoid' }, { units: 1, activation: 'sigmoid' }], loss: 'mse' };
    const net = new Network(spec, { maxRows: 4 });
    const params = initParams(spec, 1);
    net.input.set([0, 0, 0, 1, 1, 0, 1, 1]);
    net.target.set([0, 1, 1, 0]);
    let prev = Infinity;
    for (let it = 0; it < 300; it++) {
      net.setParams(params);
      const { lossSum } = net.lossAndGrad(4);
      expect(lossSum).toBeLessThan(prev);
      prev = lossSum;
      for (let i = 0; i < params.length; i++) params[i] -= 0.05 * net.grad[i];
    }
  });
});

describe('kernelsForModel', () => {
  it('sizes wasm memory for a model larger than the default reservation, and trains with it', async () => {
    const { kernelsForModel } = await import('./network.js');
    const { wasmSupported } = await import('./kernels/index.js');
    if (!wasmSupported()) throw new Error('this runtime lacks WebAssembly SIMD128; the wasm path cannot be tested');
    // 2048-4096-2048-10: ~16.8M parameters, 134 MB of params + grads: over the default 64 MiB
    const spec: ModelSpec = { inputSize: 2048, layers: [{ units: 4096, activation: 'relu' }, { units: 2048, activation: 'relu' }, { units: 10, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const k = kernelsForModel('wasm', spec, [2]);
    const net = new Network(spec, { maxRows: 2, kernels: k });
    net.input.fill(0.5);
    net.target[3] = 1;
    net.target[10 + 7] = 1;
    const st = net.lossAndGrad(2);
    expect(Number.isFinite(st.lossSum)).toBe(true);
    expect(kernelsForModel('js', spec, [2]).name).toBe('js');
  });
});
