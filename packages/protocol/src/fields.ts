import { ProtocolError } from './errors.js';

/** Helpers that read one field of an untrusted object and throw E_FIELD naming it. */

export type Obj = Record<string, unknown>;

/** A short, safe rendering of an untrusted value for error messages. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}…` : JSON.stringify(v);
  return String(v);
}

export function fieldError(path: string, expected: string, got: unknown): ProtocolError {
  return new ProtocolError('E_FIELD', `${path}: expected ${expected}, got ${show(got)}`, { field: path });
}

/** Bytes of `s` in UTF-8 (lone surrogates count 3, as their replacement character is encoded). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Cut `s` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (s.length <= maxBytes / 3 || utf8Length(s) <= maxBytes) return s;
  let n = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const w = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (n + w > maxBytes) break;
    n += w;
    if (pair) i++;
  }
  return s.slice(0, i);
}

export const U32_MAX = 0xffffffff;

const join = (path: string, key: string) => (key.startsWith('[') ? `${path}${key}` : `${path}.${key}`);

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** An integer in [lo, hi]. */
export function int(o: Obj, path: string, key: string, lo = 0, hi = U32_MAX): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw fieldError(join(path, key), `an integer in [${lo}, ${hi}]`, v);
  return v;
}

/** A finite number in [lo, hi]. */
export function num(o: Obj, path: string, key: string, lo = -Number.MAX_VALUE, hi = Number.MAX_VALUE): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw fieldError(join(path, key), lo === -Number.MAX_VALUE ? 'a finite number' : `a finite number ≥ ${lo}`, v);
  }
  return v;
}

export function bool(o: Obj, path: string, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw fieldError(join(path, key), 'a boolean', v);
  return v;
}

/** A string of minBytes..maxBytes UTF-8 bytes, optionally matching a pattern. */
export function str(o: Obj, path: string, key: string, minBytes: number, maxBytes: number, pattern?: RegExp, patternText?: string): string {
  const v = o[key];
  const expected = `a string of ${minBytes}–${maxBytes} bytes${patternText ? ` (${patternText})` : ''}`;
  if (typeof v !== 'string') throw fieldError(join(path, key), expected, v);
  const n = utf8Length(v);
  if (n > maxBytes) {
    throw new ProtocolError('E_TOO_LARGE', `${join(path, key)}: expected at most ${maxBytes} bytes, got ${n}`, { field: join(path, key) });
  }
  if (n < minBytes || (pattern && !pattern.test(v))) throw fieldError(join(path, key), expected, v);
  return v;
}

/** True if the optional field is present (absent and nil both mean absent). */
export function has(o: Obj, key: string): boolean {
  return o[key] !== undefined && o[key] !== null;
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(o: Obj, path: string, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw fieldError(join(path, key), `one of ${values.join(', ')}`, v);
  return v as T;
}

/** A nested map. */
export function obj(o: Obj, path: string, key: string): Obj {
  const v = o[key];
  if (!isObj(v)) throw fieldError(join(path, key), 'a map', v);
  return v;
}
