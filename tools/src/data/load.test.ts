import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '@dptrain/core';
import { loadDataset } from './load.js';
import { parseDataRef } from './ref.js';

const dir = mkdtempSync(join(tmpdir(), 'dptrain-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An IDX uint8 file with the given dims and values. */
function idx(dims: number[], values: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(values)]);
}

describe('parseDataRef', () => {
  it('parses every form and rejects bad ones with ConfigError("data")', () => {
    expect(parseDataRef('spirals:300;seed=4')).toMatchObject({ kind: 'spirals', n: 300, seed: 4, noise: 0.05 });
    expect(parseDataRef('blobs')).toMatchObject({ kind: 'blobs', n: 1000, centers: 3 });
    expect(parseDataRef('idx:a,b;test=c,d')).toEqual({ kind: 'idx', images: 'a', labels: 'b', test: { images: 'c', labels: 'd' } });
    expect(parseDataRef('csv:f.csv;label=last')).toMatchObject({ kind: 'csv', path: 'f.csv', label: 'last', header: 'auto' });
    expect(parseDataRef('csv:f.csv;label=2')).toMatchObject({ label: 2 });
    for (const bad of ['', 'cifar', 'spirals:abc', 'spirals:10;sed=1', 'idx:onlyone', 'csv:', 'mnist:5', 'csv:f;label=middle']) {
      expect(() => parseDataRef(bad), bad).toThrow(ConfigError);
    }
    expect(() => parseDataRef('cifar')).toThrow(/^data: unknown dataset "cifar"/);
  });
});

describe('loadDataset', () => {
  it('generates synthetic sets with a deterministic 20% split', async () => {
    const a = await loadDataset('spirals:200');
    const b = await loadDataset('spirals:200;seed=0');
    expect([a.split.train.n, a.split.test.n]).toEqual([160, 40]);
    expect(a.fingerprints).toEqual(b.fingerprints);
    expect(a.ref).toBe('spirals:200;seed=0;noise=0.05');
    const c = await loadDataset('blobs:100;centers=4;dims=3');
    expect(c.split.train).toMatchObject({ inputSize: 3, outputSize: 4 });
    const x = await loadDataset('xor');
    expect([x.split.train.n, x.split.test.n, x.split.train.outputSize]).toEqual([4, 4, 1]);
  });

  it('loads IDX files, plain or gzipped, with an explicit test set', async () => {
    const images = idx([5, 2, 2], Array.from({ length: 20 }, (_, i) => i * 12));
    writeFileSync(join(dir, 'img.idx'), images);
    writeFileSync(join(dir, 'lab.idx.gz'), gzipSync(idx([5], [0, 1, 2, 1, 0])));
    writeFileSync(join(dir, 'timg.idx'), idx([2, 2, 2], [0, 255, 0, 255, 1, 1, 1, 1]));
    writeFileSync(join(dir, 'tlab.idx'), idx([2], [3, 0]));
    const r = await loadDataset(`idx:${dir}/img.idx,${dir}/lab.idx.gz;test=${dir}/timg.idx,${dir}/tlab.idx`);
    const { train, test } = r.split;
    expect(train).toMatchObject({ n: 5, inputSize: 4, outputSize: 4, classes: 4 });
    expect(test).toMatchObject({ n: 2, inputSize: 4, outputSize: 4 });
    expect(train.x[1]).toBeCloseTo(12 / 255, 6);
    expect(Array.from(test.y.subarray(0, 4))).toEqual([0, 0, 0, 1]);
    const auto = await loadDataset(`idx:${dir}/img.idx,${dir}/lab.idx.gz`);
    expect([auto.split.train.n, auto.split.test.n]).toEqual([4, 1]);
  });

  it('loads CSV files with a label column and a test file', async () => {
    writeFileSync(join(dir, 'train.csv'), 'a,b,y\n0.5,1,1\n2,3,0\n4,5,1\n');
    writeFileSync(join(dir, 'test.csv'), '6,7,2\n');
    const r = await loadDataset(`csv:${dir}/train.csv;test=${dir}/test.csv;label=last`);
    expect(r.split.train).toMatchObject({ n: 3, inputSize: 2, outputSize: 3 });
    expect(Array.from(r.split.train.x)).toEqual([0.5, 1, 2, 3, 4, 5]);
    expect(Array.from(r.split.test.y)).toEqual([0, 0, 1]);
    writeFileSync(join(dir, 'bad.csv'), '1,2\n0,x\n');
    await expect(loadDataset(`csv:${dir}/bad.csv`)).rejects.toThrow(/bad\.csv: csv line 2, column 2/);
  });

  it('names the missing path and what was expected', async () => {
    const missing = join(dir, 'nope.idx');
    const err = await loadDataset(`idx:${missing},${dir}/lab.idx.gz`).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toContain(missing);
    expect(err.message).toMatch(/no such file.*IDX images/);
    await expect(loadDataset(`csv:${dir}/none.csv`)).rejects.toThrow(/none\.csv.*numeric CSV/);
  });
});
