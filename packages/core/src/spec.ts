import { ConfigError } from './errors.js';

export const ACTIVATIONS = ['identity', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export const LOSSES = ['mse', 'bce', 'softmax_cross_entropy'] as const;
export type LossName = (typeof LOSSES)[number];
export const INITS = ['normal', 'xavier_uniform', 'xavier_normal', 'he_uniform', 'he_normal', 'zeros'] as const;
export type InitName = (typeof INITS)[number];

export interface LayerSpec {
  /** Output width of this dense layer. */
  units: number;
  activation: Activation;
  /** Inverted-dropout probability applied to this layer's output while training (hidden layers only). */
  dropout?: number;
  /** Weight initialiser; default he_normal for relu/leaky_relu, xavier_uniform otherwise. */
  init?: InitName;
}

/** A sequential MLP as plain JSON. */
export interface ModelSpec {
  inputSize: number;
  layers: LayerSpec[];
  loss: LossName;
  /** Slope for leaky_relu on negative inputs (default 0.01). */
  leakySlope?: number;
}

export interface TensorInfo {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface ParamLayout {
  total: number;
  tensors: TensorInfo[];
}

const isInt = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** Check a spec and return a normalised copy; errors name the field and the allowed values. */
export function validateModelSpec(spec: unknown): ModelSpec {
  if (typeof spec !== 'object' || spec === null) throw new ConfigError('model', 'expected an object { inputSize, layers, loss }');
  const s = spec as Record<string, unknown>;
  if (!isInt(s.inputSize, 1, 1 << 24)) throw new ConfigError('model.inputSize', `expected an integer in [1, 16777216], got ${JSON.stringify(s.inputSize)}`);
  if (!Array.isArray(s.layers) || s.layers.length < 1 || s.layers.length > 64) {
    throw new ConfigError('model.layers', 'expected an array of 1 to 64 layers');
  }
  if (!LOSSES.includes(s.loss as LossName)) throw new ConfigError('model.loss', `expected one of ${LOSSES.join(', ')}, got ${JSON.stringify(s.loss)}`);
  const leakySlope = s.leakySlope === undefined ? 0.01 : s.leakySlope;
  if (typeof leakySlope !== 'number' || !(leakySlope >= 0 && leakySlope < 1)) throw new ConfigError('model.leakySlope', `expected a number in [0, 1), got ${JSON.stringify(s.leakySlope)}`);
  const layers: LayerSpec[] = s.layers.map((l: unknown, i: number) => {
    const f = `model.layers[${i}]`;
    if (typeof l !== 'object' || l === null) throw new ConfigError(f, 'expected an object { units, activation }');
    const L = l as Record<string, unknown>;
    if (!isInt(L.units, 1, 1 << 20)) throw new ConfigError(`${f}.units`, `expected an integer in [1, 1048576], got ${JSON.stringify(L.units)}`);
    if (!ACTIVATIONS.includes(L.activation as Activation)) throw new ConfigError(`${f}.activation`, `expected one of ${ACTIVATIONS.join(', ')}, got ${JSON.stringify(L.activation)}`);
    const out: LayerSpec = { units: L.units as number, activation: L.activation as Activation };
    if (L.dropout !== undefined) {
      if (typeof L.dropout !== 'number' || !(L.dropout >= 0 && L.dropout < 1)) throw new ConfigError(`${f}.dropout`, `expected a number in [0, 1), got ${JSON.stringify(L.dropout)}`);
      if (i === (s.layers as unknown[]).length - 1 && L.dropout > 0) throw new ConfigError(`${f}.dropout`, 'dropout is not allowed on the output layer');
      if (L.dropout > 0) out.dropout = L.dropout;
    }
    if (L.init !== undefined) {
      if (!INITS.includes(L.init as InitName)) throw new ConfigError(`${f}.init`, `expected one of ${INITS.join(', ')}, got ${JSON.stringify(L.init)}`);
      out.init = L.init as InitName;
    }
    return out;
  });
  const last = layers[layers.length - 1];
  layers.forEach((l, i) => {
    if (l.activation === 'softmax' && i !== layers.length - 1) throw new ConfigError(`model.layers[${i}].activation`, 'softmax is only allowed on the output layer');
  });
  const loss = s.loss as LossName;
  if (loss === 'softmax_cross_entropy' && last.activation !== 'softmax') {
    throw new ConfigError(`model.layers[${layers.length - 1}].activation`, 'softmax_cross_entropy needs a softmax output layer');
  }
  if (last.activation === 'softmax' && loss !== 'softmax_cross_entropy') {
    throw new ConfigError('model.loss', 'a softmax output layer needs loss softmax_cross_entropy');
  }
  if (loss === 'softmax_cross_entropy' && last.units < 2) throw new ConfigError(`model.layers[${layers.length - 1}].units`, 'softmax needs at least 2 units');
  if (loss === 'bce' && last.activation !== 'sigmoid') {
    throw new ConfigError(`model.layers[${layers.length - 1}].activation`, 'bce needs a sigmoid output layer');
  }
  const out: ModelSpec = { inputSize: s.inputSize as number, layers, loss };
  if (s.leakySlope !== undefined) out.leakySlope = leakySlope as number;
  return out;
}

/** Flat parameter layout: per layer, weight [out, in] then bias [out], as PyTorch nn.Linear names them. */
export function paramLayout(spec: ModelSpec): ParamLayout {
  const tensors: TensorInfo[] = [];
  let offset = 0;
  let fanIn = spec.inputSize;
  spec.layers.forEach((l, i) => {
    const w = l.units * fanIn;
    tensors.push({ name: `layers.${i}.weight`, shape: [l.units, fanIn], offset, length: w });
    offset += w;
    tensors.push({ name: `layers.${i}.bias`, shape: [l.units], offset, length: l.units });
    offset += l.units;
    fanIn = l.units;
  });
  return { total: offset, tensors };
}

/** Named views into a flat array laid out by paramLayout. */
export function namedViews(layout: ParamLayout, flat: Float32Array): Map<string, Float32Array> {
  if (flat.length !== layout.total) throw new RangeError(`flat array has ${flat.length} values, layout needs ${layout.total}`);
  const m = new Map<string, Float32Array>();
  for (const t of layout.tensors) m.set(t.name, flat.subarray(t.offset, t.offset + t.length));
  return m;
}

/** Parse the shorthand "784-128-10" (ReLU hidden layers, softmax output, cross-entropy). */
export function parseModelShorthand(text: string, hidden: Activation = 'relu'): ModelSpec {
  const parts = text.split('-').map((p) => Number(p));
  if (parts.length < 2 || parts.some((p) => !Number.isInteger(p) || p < 1)) {
    throw new ConfigError('model', `expected sizes like "784-128-10", got ${JSON.stringify(text)}`);
  }
  const out = parts[parts.length - 1];
  const layers: LayerSpec[] = parts.slice(1).map((u, i, a) =>
    i === a.length - 1 ? { units: u, activation: out >= 2 ? 'softmax' : 'sigmoid' } : { units: u, activation: hidden },
  );
  return validateModelSpec({ inputSize: parts[0], layers, loss: out >= 2 ? 'softmax_cross_entropy' : 'bce' });
}
