import { resolve } from 'node:path';
import { DataError, blobs, idxDataset, mnistSplit, oneHot, parseCsv, spirals, splitDataset, xorDataset } from '@dptrain/core';
import type { Dataset, DatasetSplit } from '@dptrain/core';
import { fingerprintNode, readInput, readText } from './files.js';
import { loadMnist } from './mnist.js';
import type { Progress } from './mnist.js';
import { parseDataRef } from './ref.js';
import type { DataRef } from './ref.js';

export interface LoadDatasetOptions {
  onProgress?: Progress;
  /** MNIST cache directory (default node_modules/.cache/dptrain), or false to bypass the cache. */
  cacheDir?: string | false;
}

export interface LoadedDataset {
  split: DatasetSplit;
  /** The reference in canonical form (defaults filled in, paths absolute): loads the same data from any directory. */
  ref: string;
  /** One line for humans, e.g. "mnist: 8000 train / 2000 test, 784 inputs, 10 classes". */
  description: string;
  /** fingerprint() of train and test (computed with node:crypto, same digest as core). */
  fingerprints: { train: string; test: string };
}

const IDX_IMAGES = 'an IDX images file (magic 00 00 08 <ndims>, optionally gzipped)';
const IDX_LABELS = 'an IDX labels file (magic 00 00 08 01, optionally gzipped)';
const CSV = 'a numeric CSV file, one sample per line';

/** The deterministic split used for every set without an explicit test part: 20% test, shuffled with seed 0. */
const autoSplit = (ds: Dataset) => splitDataset(ds, { testFraction: 0.2, seed: 0, shuffle: true });

/** Give train and test the same number of classes (the larger), and check their input widths agree. */
function harmonize(split: DatasetSplit, what: string): DatasetSplit {
  const { train, test } = split;
  if (train.inputSize !== test.inputSize) {
    throw new DataError(`${what}: the training set has ${train.inputSize} inputs per sample but the test set has ${test.inputSize}`);
  }
  if (train.classes === undefined || test.classes === undefined || train.classes === test.classes) return split;
  const classes = Math.max(train.classes, test.classes);
  const widen = (d: Dataset): Dataset => ({ ...d, outputSize: classes, classes, y: oneHot(d.labels!, classes) });
  return { train: widen(train), test: widen(test) };
}

function canonical(r: DataRef): string {
  switch (r.kind) {
    case 'mnist':
    case 'xor':
      return r.kind;
    case 'spirals':
      return `spirals:${r.n};seed=${r.seed};noise=${r.noise}`;
    case 'blobs':
      return `blobs:${r.n};seed=${r.seed};centers=${r.centers};dims=${r.dims};spread=${r.spread}`;
    case 'idx':
      return `idx:${resolve(r.images)},${resolve(r.labels)}` + (r.test ? `;test=${resolve(r.test.images)},${resolve(r.test.labels)}` : '');
    case 'csv':
      return (
        `csv:${resolve(r.path)}` +
        (r.test ? `;test=${resolve(r.test)}` : '') +
        `;label=${r.label};header=${r.header === 'auto' ? 'auto' : r.header ? 'yes' : 'no'};task=${r.task}`
      );
  }
}

async function build(r: DataRef, opts: LoadDatasetOptions): Promise<{ split: DatasetSplit; note: string }> {
  switch (r.kind) {
    case 'mnist':
      return { split: mnistSplit(await loadMnist(opts)), note: 'fixed stratified split' };
    case 'xor': {
      // A held-out XOR point would make the task unlearnable: train and test are both the 4 points.
      return { split: { train: xorDataset(), test: xorDataset() }, note: 'train = test = the 4 points' };
    }
    case 'spirals':
      return { split: autoSplit(spirals(r.n, { seed: r.seed, noise: r.noise })), note: '20% test, seed 0' };
    case 'blobs':
      return { split: autoSplit(blobs(r.n, r)), note: '20% test, seed 0' };
    case 'idx': {
      const load = async (p: { images: string; labels: string }) => {
        const images = await readInput(p.images, IDX_IMAGES);
        const labels = await readInput(p.labels, IDX_LABELS);
        return idxDataset(images, labels);
      };
      opts.onProgress?.('read', 0, r.test ? 2 : 1);
      const train = await load(r);
      opts.onProgress?.('read', 1, r.test ? 2 : 1);
      if (!r.test) return { split: autoSplit(train), note: '20% test, seed 0' };
      const test = await load(r.test);
      opts.onProgress?.('read', 2, 2);
      return { split: harmonize({ train, test }, 'idx'), note: 'explicit test files' };
    }
    case 'csv': {
      const csvOpts = { labelColumn: r.label, header: r.header, task: r.task } as const;
      const load = async (path: string) => {
        const text = await readText(path, CSV);
        try {
          return parseCsv(text, csvOpts);
        } catch (e) {
          throw e instanceof DataError ? new DataError(`${resolve(path)}: ${(e as Error).message}`) : e;
        }
      };
      const train = await load(r.path);
      if (!r.test) return { split: autoSplit(train), note: '20% test, seed 0' };
      return { split: harmonize({ train, test: await load(r.test) }, 'csv'), note: 'explicit test file' };
    }
  }
}

/**
 * Load a dataset named by a `--data` reference (grammar in ./ref.ts) and split it into train
 * and test deterministically. Bad references throw ConfigError('data'); missing, unreadable
 * or malformed files throw DataError naming the path and what was expected.
 */
export async function loadDataset(ref: string, opts: LoadDatasetOptions = {}): Promise<LoadedDataset> {
  const parsed = parseDataRef(ref);
  const { split, note } = await build(parsed, opts);
  const { train, test } = split;
  const target = train.classes !== undefined ? `${train.classes} classes` : `${train.outputSize} target(s)`;
  return {
    split,
    ref: canonical(parsed),
    description: `${parsed.kind}: ${train.n} train / ${test.n} test (${note}), ${train.inputSize} inputs, ${target}`,
    fingerprints: { train: fingerprintNode(train), test: fingerprintNode(test) },
  };
}
