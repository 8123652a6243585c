/**
 * The definition of a tree node's gradient, written out independently of LeafComputer, for
 * its tests: every leaf by its own forward and backward pass on a network holding just that
 * leaf, then the tree of DESIGN.md (left + right in float32, an empty right half passes the
 * left up; loss sums added in float64 the same way). Test-only: not exported by the package.
 */
import type { Dataset } from './data/index.js';
import type { Kernels } from './kernels/index.js';
import { Network } from './network.js';
import type { ModelSpec } from './spec.js';
import { leafCount } from './tree.js';

export interface NodeSum {
  grad: Float32Array;
  lossSum: number;
  correct: number;
  samples: number;
}

export interface DefinitionInput {
  spec: ModelSpec;
  data: Dataset;
  kernels: Kernels;
  params: Float32Array;
  /** Sample indices of the whole batch, in order. */
  indices: number[];
  leafSize: number;
  /** Dropout seed. */
  seed: number;
  step: number;
  node: { lo: number; size: number };
}

export function nodeDefinition(o: DefinitionInput): NodeSum {
  const { spec, data, leafSize: leaf, indices } = o;
  const net = new Network(spec, { maxRows: leaf, kernels: o.kernels });
  net.setParams(o.params);
  const L = leafCount(indices.length, leaf);
  const fin = spec.inputSize;
  const fout = data.outputSize;
  const sum = (lo: number, size: number): NodeSum | undefined => {
    if (lo >= L) return undefined;
    if (size === 1) {
      const rows = Math.min(leaf, indices.length - lo * leaf);
      const ids = indices.slice(lo * leaf, lo * leaf + rows);
      ids.forEach((s, r) => {
        net.input.set(data.x.subarray(s * fin, (s + 1) * fin), r * fin);
        net.target.set(data.y.subarray(s * fout, (s + 1) * fout), r * fout);
      });
      const st = net.lossAndGrad(rows, { training: true, dropoutSeed: o.seed, step: o.step, sampleIds: ids });
      return { grad: Float32Array.from(net.grad), lossSum: st.lossSum, correct: st.correct, samples: rows };
    }
    const left = sum(lo, size / 2)!;
    const right = sum(lo + size / 2, size / 2);
    if (!right) return left;
    for (let i = 0; i < left.grad.length; i++) left.grad[i] = Math.fround(left.grad[i] + right.grad[i]);
    return { grad: left.grad, lossSum: left.lossSum + right.lossSum, correct: left.correct + right.correct, samples: left.samples + right.samples };
  };
  return sum(o.node.lo, o.node.size)!;
}
