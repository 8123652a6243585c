import { describe, expect, it } from 'vitest';
import { blobs } from './data/index.js';
import { DptrainError } from './errors.js';
import { initParams } from './init.js';
import { type Kernels, createWasmKernels, jsKernels, wasmSupported } from './kernels/index.js';
import { LeafComputer, treeBuffers } from './leaf.js';
import { nodeDefinition } from './leaf-test-util.js';
import { Network, kernelsForModel } from './network.js';
import type { ModelSpec } from './spec.js';
import { alignedNodes, leafCount, nextPow2 } from './tree.js';

const spec: ModelSpec = {
  inputSize: 5,
  layers: [
    { units: 7, activation: 'tanh', dropout: 0.25 },
    { units: 6, activation: 'relu' },
    { units: 3, activation: 'softmax' },
  ],
  loss: 'softmax_cross_entropy',
};
const data = blobs(300, { centers: 3, dims: 5, seed: 4 });
const LEAF = 8;
const SEED = 11;
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** The definition (leaf-test-util.ts): every leaf by its own pass, summed by the fixed tree. */
function definition(K: Kernels, params: Float32Array, indices: number[], step: number, node: { lo: number; size: number }): Float32Array {
  return nodeDefinition({ spec, data, kernels: K, params, indices, leafSize: LEAF, seed: SEED, step, node }).grad;
}

const kernelSets: Array<[string, () => Kernels]> = [['js', () => jsKernels]];
if (wasmSupported()) {
  kernelSets.push(['wasm, tree in its memory', () => kernelsForModel('wasm', spec, [LEAF], treeBuffers(100, LEAF))]);
}
// kernels whose memory is full once the network has its buffers: the tree levels fall back
// to plain arrays
kernelSets.push([
  'memory full after the network',
  () => {
    const K = wasmSupported() ? createWasmKernels({ memoryMiB: 1 }) : jsKernels;
    const full: Kernels & { inner: Kernels; isFull: boolean; refused: number } = {
      ...K,
      name: K.name,
      inner: K,
      isFull: false,
      refused: 0,
      alloc: (n: number) => {
        if (full.isFull) {
          full.refused++;
          throw new DptrainError('E_KERNEL_MEMORY', 'full (test)');
        }
        return K.alloc(n);
      },
    };
    return full;
  },
]);

describe.each(kernelSets)('LeafComputer.computeNode (%s)', (_name, make) => {
  const indices = Array.from({ length: 100 }, (_, i) => (i * 37 + 5) % data.n); // 13 leaves: a padded tree
  const L = leafCount(indices.length, LEAF);
  const params = initParams(spec, 3);

  it('gives the bits of the leaves summed by the fixed tree, for the root and for every aligned node of a split', () => {
    const K = make();
    const computer = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels: K });
    if ('isFull' in K) K.isFull = true;
    computer.setParams(params);
    const out = new Float32Array(computer.paramCount);
    const batch = { step: 5, leafCount: L, batchSize: indices.length, indices, indexBase: 0 };
    const root = { lo: 0, size: nextPow2(L) };
    const st = computer.computeNode(batch, root, out);
    expect(st.samples).toBe(100);
    const inner = (K as { inner?: Kernels }).inner;
    if (inner) expect((K as unknown as { refused: number }).refused).toBeGreaterThan(0);
    const D = inner ?? K;
    expect(bits(out)).toEqual(bits(definition(D, params, indices, 5, root)));
    // the nodes a worker holding leaves [3, 13) returns, computed from its own slice of indices
    for (const node of alignedNodes(3, L, L)) {
      const got = new Float32Array(computer.paramCount).fill(Number.NaN);
      computer.computeNode({ ...batch, indices: indices.slice(3 * LEAF), indexBase: 3 }, node, got);
      expect(bits(got), `node (${node.lo}, ${node.size})`).toEqual(bits(definition(D, params, indices, 5, node)));
    }
  });

  it('refuses an output buffer of the wrong length', () => {
    const computer = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels: make() });
    expect(() => computer.computeNode({ step: 0, leafCount: L, batchSize: 100, indices, indexBase: 0 }, { lo: 0, size: 1 }, new Float32Array(3))).toThrow(
      /gradient buffer has 3 values, expected \d+/,
    );
  });
});

describe.each(kernelSets)('LeafComputer.computeNodeView (%s)', (_name, make) => {
  const indices = Array.from({ length: 100 }, (_, i) => (i * 37 + 5) % data.n); // 13 leaves
  const L = leafCount(indices.length, LEAF);
  const params = initParams(spec, 3);
  const batch = { step: 5, leafCount: L, batchSize: indices.length, indices: indices.slice(3 * LEAF), indexBase: 3 };

  it('gives the bits and stats of computeNode, in one buffer that the next call overwrites', () => {
    const K = make();
    const viewer = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels: K });
    const copier = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels: K });
    if ('isFull' in K) K.isFull = true;
    viewer.setParams(params);
    copier.setParams(params);
    const nodes = alignedNodes(3, L, L); // (3, 1), (4, 4), (8, 8)
    expect(nodes).toHaveLength(3);
    const views = nodes.map((node) => {
      const want = new Float32Array(viewer.paramCount);
      const wantStats = copier.computeNode(batch, node, want, { scan: true });
      const v = viewer.computeNodeView(batch, node, { scan: true });
      expect(v.stats, `node (${node.lo}, ${node.size})`).toEqual(wantStats);
      expect(v.stats.firstNonFinite).toBe(-1);
      expect(bits(v.grad), `node (${node.lo}, ${node.size})`).toEqual(bits(want));
      return { grad: v.grad, want };
    });
    // every call hands out the same buffer: an earlier view now reads the last node
    expect(views[1].grad).toBe(views[0].grad);
    expect(views[2].grad).toBe(views[0].grad);
    expect(bits(views[0].grad)).toEqual(bits(views[2].want));
    expect(bits(views[0].grad)).not.toEqual(bits(views[0].want));
  });

  it('overwrites every value of the view: what a caller wrote into it does not reach the next node', () => {
    const computer = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels: make() });
    computer.setParams(params);
    const node = { lo: 4, size: 4 };
    const want = Float32Array.from(computer.computeNodeView(batch, node).grad);
    computer.computeNodeView(batch, node).grad.fill(Number.NaN);
    const again = computer.computeNodeView(batch, node, { scan: true });
    expect(again.stats.firstNonFinite).toBe(-1);
    expect(bits(again.grad)).toEqual(bits(want));
    // and computeNode, built on it, copies out the fresh sum too
    computer.computeNodeView(batch, node).grad.fill(Number.POSITIVE_INFINITY);
    const out = new Float32Array(computer.paramCount);
    computer.computeNode(batch, node, out);
    expect(bits(out)).toEqual(bits(want));
  });
});

describe('Network.lossAndGrad into another buffer', () => {
  it('writes the same bits as into its own grad, and refuses a buffer that is too short', () => {
    const net = new Network(spec, { maxRows: LEAF, kernels: jsKernels });
    net.setParams(initParams(spec, 9));
    for (let r = 0; r < LEAF; r++) {
      net.input.set(data.x.subarray(r * 5, r * 5 + 5), r * 5);
      net.target.set(data.y.subarray(r * 3, r * 3 + 3), r * 3);
    }
    const opts = { training: true, dropoutSeed: 1, step: 2, sampleIds: [0, 1, 2, 3, 4, 5, 6, 7] };
    const other = new Float32Array(net.layout.total).fill(Number.NaN);
    const a = net.lossAndGrad(LEAF, opts, other);
    net.grad.fill(Number.NaN);
    const b = net.lossAndGrad(LEAF, opts);
    expect(a).toEqual(b);
    expect(bits(other)).toEqual(bits(net.grad));
    expect(() => net.lossAndGrad(LEAF, opts, new Float32Array(4))).toThrow(/gradient buffer has 4 values/);
  });
});

describe('LeafComputer.computeNode with scan', () => {
  it('reports -1 for a finite gradient and the first non-finite index of the output otherwise', () => {
    const kernels = wasmSupported() ? kernelsForModel('wasm', spec, [LEAF], 3) : jsKernels;
    const computer = new LeafComputer(spec, data, { leafSize: LEAF, seed: SEED, kernels });
    const indices = Array.from({ length: 32 }, (_, i) => i);
    const batch = { step: 1, leafCount: 4, batchSize: 32, indices, indexBase: 0 };
    const out = new Float32Array(computer.paramCount);
    const params = initParams(spec, 3);
    computer.setParams(params);
    expect(computer.computeNode(batch, { lo: 0, size: 4 }, out, { scan: true }).firstNonFinite).toBe(-1);
    expect(computer.computeNode(batch, { lo: 0, size: 4 }, out).firstNonFinite).toBeUndefined();
    // a huge weight in the last layer: the softmax overflows for some rows
    const bad = Float32Array.from(params);
    bad.fill(Number.POSITIVE_INFINITY, computer.net.layout.tensors[4].offset, computer.net.layout.tensors[4].offset + 3);
    computer.setParams(bad);
    const st = computer.computeNode(batch, { lo: 0, size: 4 }, out, { scan: true });
    const first = out.findIndex((v) => !Number.isFinite(v));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(st.firstNonFinite).toBe(first);
  });
});
