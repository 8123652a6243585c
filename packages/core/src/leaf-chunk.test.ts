import { describe, expect, it } from 'vitest';
import { blobs } from './data/index.js';
import { initParams } from './init.js';
import { type Kernels, availableKernels } from './kernels/index.js';
import { CHUNK_ROWS, LeafComputer, leafChunkRows, treeBuffers } from './leaf.js';
import { nodeDefinition } from './leaf-test-util.js';
import { Network, kernelsForModel } from './network.js';
import type { ModelSpec } from './spec.js';
import { alignedNodes, leafCount, nextPow2 } from './tree.js';

/*
 * A LeafComputer runs the forward pass and the δ of a whole chunk of leaves as one pass and
 * then takes each leaf's weight gradient from its own rows. These tests hold it to the
 * definition — one pass per leaf, on a network holding just that leaf — bit for bit, for
 * every kernel set, leaf sizes that split the kernels' 4-row tiles across leaves, a partial
 * last leaf, dropout, every loss, and nodes larger than a chunk.
 */

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const specs: Record<string, ModelSpec> = {
  'softmax cross-entropy, tanh + dropout, relu': {
    inputSize: 6,
    layers: [
      { units: 9, activation: 'tanh', dropout: 0.3 },
      { units: 7, activation: 'relu' },
      { units: 3, activation: 'softmax' },
    ],
    loss: 'softmax_cross_entropy',
  },
  'mse, leaky relu + dropout, sigmoid': {
    inputSize: 6,
    layers: [
      { units: 10, activation: 'leaky_relu', dropout: 0.2 },
      { units: 3, activation: 'sigmoid' },
    ],
    loss: 'mse',
  },
  'bce, sigmoid hidden, one output': {
    inputSize: 6,
    layers: [
      { units: 5, activation: 'sigmoid' },
      { units: 1, activation: 'sigmoid' },
    ],
    loss: 'bce',
  },
};
const data3 = blobs(400, { centers: 3, dims: 6, seed: 8 });
// one target per sample for the bce model: class 0 against the rest
const data1 = { ...data3, outputSize: 1, y: Float32Array.from({ length: data3.n }, (_, i) => data3.y[i * 3]) };
const SEED = 5;
const STEP = 3;

/** The definition: each leaf by its own pass on a network of leafSize rows, summed by the fixed tree. */
function definition(spec: ModelSpec, K: Kernels, params: Float32Array, indices: number[], leaf: number, node: { lo: number; size: number }) {
  const data = spec.layers[spec.layers.length - 1].units === 1 ? data1 : data3;
  return nodeDefinition({ spec, data, kernels: K, params, indices, leafSize: leaf, seed: SEED, step: STEP, node });
}

describe('leafChunkRows', () => {
  it('is a power of two of whole leaves within CHUNK_ROWS rows, and at least one leaf', () => {
    for (const leaf of [1, 3, 5, 8, 32, 33, 100, CHUNK_ROWS, CHUNK_ROWS + 1, 5000]) {
      const rows = leafChunkRows(leaf);
      const leaves = rows / leaf;
      expect(Number.isInteger(leaves) && (leaves & (leaves - 1)) === 0, `leaf ${leaf}`).toBe(true);
      if (leaf <= CHUNK_ROWS) {
        expect(rows).toBeLessThanOrEqual(CHUNK_ROWS);
        expect(2 * rows).toBeGreaterThan(CHUNK_ROWS); // the largest such chunk
      } else {
        expect(rows).toBe(leaf);
      }
    }
  });
});

describe.each(availableKernels())('a chunk of leaves in one pass (%s kernels)', (kernel) => {
  describe.each(Object.keys(specs))('%s', (name) => {
    const spec = specs[name];
    const data = spec.layers[spec.layers.length - 1].units === 1 ? data1 : data3;
    const params = initParams(spec, 12);
    // leaf sizes whose leaves start inside a 4-row tile (1, 3, 5), a chunk of one leaf
    // (CHUNK_ROWS) and one larger than a chunk's worth of rows at batch 390
    it.each([1, 3, 5, 32, CHUNK_ROWS])('gives every node the bits and stats of one pass per leaf (leaf %i)', (leaf) => {
      const batchSize = 390; // a partial last leaf for every leaf size here but 1, 5
      const indices = Array.from({ length: batchSize }, (_, i) => (i * 53 + 7) % data.n);
      const L = leafCount(batchSize, leaf);
      const K = kernelsForModel(kernel, spec, [leafChunkRows(leaf), leaf], treeBuffers(batchSize, leaf));
      const D = kernelsForModel(kernel, spec, [leaf]);
      const computer = new LeafComputer(spec, data, { leafSize: leaf, seed: SEED, kernels: K });
      computer.setParams(params);
      const batch = { step: STEP, leafCount: L, batchSize, indices, indexBase: 0 };
      // the root (several chunks for the small leaves) and the nodes of a worker holding
      // leaves [1, L): nodes of every size, most starting inside what would be a chunk
      const nodes = [{ lo: 0, size: nextPow2(L) }, ...alignedNodes(1, L, L)];
      for (const node of nodes) {
        const got = new Float32Array(computer.paramCount).fill(Number.NaN);
        const st = computer.computeNode(batch, node, got);
        const want = definition(spec, D, params, indices, leaf, node);
        const where = `leaf ${leaf}, node (${node.lo}, ${node.size})`;
        expect(bits(got), where).toEqual(bits(want.grad));
        expect(st.samples, where).toBe(want.samples);
        expect(st.correct, where).toBe(want.correct);
        expect(Object.is(st.lossSum, want.lossSum), `${where}: loss ${st.lossSum} against ${want.lossSum}`).toBe(true);
      }
    });
  });
});

describe('Network.forwardDeltas / rowGradient', () => {
  const spec = specs['softmax cross-entropy, tanh + dropout, relu'];
  const net = new Network(spec, { maxRows: 16, kernels: kernelsForModel('js', spec, [16]) });
  net.setParams(initParams(spec, 1));

  it('refuses rows outside the pass and per-row outputs shorter than the pass', () => {
    const g = new Float32Array(net.layout.total);
    expect(() => net.rowGradient(10, 7, g)).toThrow(/rows \[10, 17\) are outside the pass's 16 rows/);
    expect(() => net.rowGradient(-1, 2, g)).toThrow(/outside the pass/);
    expect(() => net.rowGradient(0, 0, g)).toThrow(/outside the pass/);
    expect(() => net.rowGradient(0, 2, new Float32Array(5))).toThrow(/gradient buffer has 5 values/);
    const ids = Array.from({ length: 16 }, (_, i) => i);
    expect(() => net.forwardDeltas(16, { training: true, dropoutSeed: 1, step: 0, sampleIds: ids }, new Float64Array(8), new Uint8Array(16))).toThrow(
      /per-row outputs hold 8 rows, the pass has 16/,
    );
  });
});
