import { Rng } from './rng.js';
import { type InitName, type ModelSpec, paramLayout } from './spec.js';
import { ConfigError } from './errors.js';

/** Default weight initialiser for a layer: He for (leaky) ReLU, Xavier/Glorot otherwise. */
export function defaultInit(activation: string): InitName {
  return activation === 'relu' || activation === 'leaky_relu' ? 'he_normal' : 'xavier_uniform';
}

/**
 * Fill a weight tensor [fanOut, fanIn] in row-major order from rng.
 * - normal: N(0, 1)
 * - xavier_uniform: U(±sqrt(6 / (fanIn + fanOut)));  xavier_normal: N(0, 2 / (fanIn + fanOut))
 * - he_uniform: U(±sqrt(6 / fanIn));                  he_normal: N(0, 2 / fanIn)
 * - zeros
 */
export function fillWeights(out: Float32Array, fanIn: number, fanOut: number, kind: InitName, rng: Rng): void {
  switch (kind) {
    case 'zeros':
      out.fill(0);
      return;
    case 'normal':
      for (let i = 0; i < out.length; i++) out[i] = rng.nextNormal();
      return;
    case 'xavier_uniform': {
      const a = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-a, a);
      return;
    }
    case 'xavier_normal': {
      const s = Math.sqrt(2 / (fanIn + fanOut));
      for (let i = 0; i < out.length; i++) out[i] = s * rng.nextNormal();
      return;
    }
    case 'he_uniform': {
      const a = Math.sqrt(6 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-a, a);
      return;
    }
    case 'he_normal': {
      const s = Math.sqrt(2 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = s * rng.nextNormal();
      return;
    }
    default:
      throw new ConfigError('init', `unknown initialiser ${JSON.stringify(kind)}`);
  }
}

/**
 * Seeded initial parameters for a spec: weights by each layer's initialiser (layer
 * order, row-major), biases zero. One Rng(seed) stream for the whole model.
 */
export function initParams(spec: ModelSpec, seed: number): Float32Array {
  const layout = paramLayout(spec);
  const params = new Float32Array(layout.total);
  const rng = new Rng(seed);
  spec.layers.forEach((l, i) => {
    const w = layout.tensors[2 * i];
    const [fanOut, fanIn] = w.shape;
    fillWeights(params.subarray(w.offset, w.offset + w.length), fanIn, fanOut, l.init ?? defaultInit(l.activation), rng);
  });
  return params;
}
