import { ConfigError, DptrainError } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { fromErrorMessage, toErrorMessage } from './error-message.js';
import { CLOSE_CODES, ERROR_CODES, ProtocolError } from './errors.js';
import { truncateUtf8, utf8Length } from './fields.js';

const utf8 = (s: string) => new (globalThis as unknown as { TextEncoder: new () => { encode(s: string): Uint8Array } }).TextEncoder().encode(s).length;

describe('error messages', () => {
  it('carry the code of a DptrainError and E_INTERNAL for anything else', () => {
    expect(toErrorMessage(new ConfigError('lr', 'expected > 0'))).toMatchObject({ code: 'E_CONFIG', message: 'lr: expected > 0', fatal: false });
    expect(toErrorMessage(new TypeError('boom'), { step: 4 })).toMatchObject({ code: 'E_INTERNAL', message: 'boom', step: 4 });
    expect(toErrorMessage('plain string')).toMatchObject({ code: 'E_INTERNAL', message: 'plain string' });
    expect(toErrorMessage(new DptrainError('bad code!', 'x')).code).toBe('E_INTERNAL');
  });

  it('take fatal from a ProtocolError, and always encode even for huge multibyte messages', () => {
    const m = toErrorMessage(new ProtocolError('E_DATA_MISMATCH', '€'.repeat(5000)));
    expect(m.fatal).toBe(true);
    expect(utf8Length(m.message)).toBeLessThanOrEqual(4096);
    expect(m.message.length).toBe(1365);
    expect(decode(encode(m))).toEqual(m);
  });

  it('turn back into errors', () => {
    const e = fromErrorMessage(toErrorMessage(new ProtocolError('E_AUTH', 'wrong token')));
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).closeCode).toBe(CLOSE_CODES.AUTH_FAILED);
    const d = fromErrorMessage({ type: 'error', v: 1, code: 'E_CONFIG', message: 'x', fatal: false });
    expect(d).not.toBeInstanceOf(ProtocolError);
    expect(d.code).toBe('E_CONFIG');
  });
});

describe('ProtocolError and codes', () => {
  it('defaults close code and fatality from ERROR_CODES', () => {
    expect(new ProtocolError('E_VERSION', 'x').closeCode).toBe(4001);
    expect(new ProtocolError('E_TOO_LARGE', 'x').closeCode).toBe(1009);
    expect(new ProtocolError('E_STALE', 'x').fatal).toBe(false);
    expect(new ProtocolError('E_STALE', 'x', { fatal: true, closeCode: 1000 })).toMatchObject({ fatal: true, closeCode: 1000, name: 'ProtocolError' });
    expect(new ProtocolError('E_FIELD', 'x')).toBeInstanceOf(DptrainError);
    for (const info of Object.values(ERROR_CODES)) expect(Object.values(CLOSE_CODES)).toContain(info.closeCode);
  });
});

describe('utf8 helpers', () => {
  it('count and cut like a UTF-8 encoder', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀b', '\ud800x', 'x\udc00']) expect(utf8Length(s), s).toBe(utf8(s));
    expect(truncateUtf8('a😀b', 4)).toBe('a');
    expect(truncateUtf8('a😀b', 5)).toBe('a😀');
    expect(truncateUtf8('héllo', 2)).toBe('h');
  });
});
