import { ConfigError, ShapeError } from '../errors.js';

/**
 * Per-column affine normalisation, plain data (JSON-safe, can go into a checkpoint):
 * x' = (x - offset[c]) * scale[c]. For 'minmax' offset = min and scale = 1 / (max - min);
 * for 'standard' offset = mean and scale = 1 / std (population). A constant column gets
 * scale 1, so it maps to 0.
 */
export interface NormStats {
  kind: 'minmax' | 'standard';
  offset: number[];
  scale: number[];
}

function computeStats(x: Float32Array, cols: number, kind: NormStats['kind']): NormStats {
  const rows = x.length / cols;
  const offset: number[] = [];
  const scale: number[] = [];
  for (let c = 0; c < cols; c++) {
    if (kind === 'minmax') {
      let lo = Infinity;
      let hi = -Infinity;
      for (let r = 0; r < rows; r++) {
        const v = x[r * cols + c];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (rows === 0) lo = hi = 0;
      offset.push(lo);
      scale.push(hi > lo ? 1 / (hi - lo) : 1);
    } else {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += x[r * cols + c];
      const mean = rows > 0 ? sum / rows : 0;
      let ss = 0;
      for (let r = 0; r < rows; r++) {
        const d = x[r * cols + c] - mean;
        ss += d * d;
      }
      const std = rows > 0 ? Math.sqrt(ss / rows) : 0;
      offset.push(mean);
      scale.push(std > 0 ? 1 / std : 1);
    }
  }
  return { kind, offset, scale };
}

/**
 * Normalise the columns of a row-major matrix into a new array. Without `stats` they are
 * computed from `x` (do this on the training set); pass the returned stats to apply the
 * same transform to the test set.
 */
export function normalize(
  x: Float32Array,
  cols: number,
  kind: 'minmax' | 'standard',
  stats?: NormStats,
): { x: Float32Array; stats: NormStats } {
  if (kind !== 'minmax' && kind !== 'standard') throw new ConfigError('kind', `expected 'minmax' or 'standard', got ${JSON.stringify(kind)}`);
  if (!Number.isInteger(cols) || cols < 1) throw new ConfigError('cols', `expected a positive integer, got ${cols}`);
  if (x.length % cols !== 0) throw new ShapeError(`normalize: ${x.length} values is not a whole number of rows of ${cols} columns`);
  if (stats !== undefined) {
    if (stats.kind !== kind) throw new ConfigError('stats.kind', `expected '${kind}', got ${JSON.stringify(stats.kind)}`);
    if (stats.offset?.length !== cols || stats.scale?.length !== cols) {
      throw new ConfigError('stats', `expected offset and scale of ${cols} values each`);
    }
  }
  const s = stats ?? computeStats(x, cols, kind);
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += cols) {
    for (let c = 0; c < cols; c++) out[r + c] = (x[r + c] - s.offset[c]) * s.scale[c];
  }
  return { x: out, stats: s };
}
