import { describe, expect, it } from 'vitest';
import { decodeBase64 } from './base64.js';

const text = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

describe('decodeBase64', () => {
  it('decodes padded and unpadded lengths', () => {
    expect(text(decodeBase64(''))).toBe('');
    expect(text(decodeBase64('aA=='))).toBe('h');
    expect(text(decodeBase64('aGk='))).toBe('hi');
    expect(text(decodeBase64('aGVsbG8h'))).toBe('hello!');
  });

  it('decodes every byte value', () => {
    // base64 of bytes 0xfb 0xff 0xbf 0x00 0x01 uses '+', '/' and 'A'.
    expect(Array.from(decodeBase64('+/+/AAE='))).toEqual([0xfb, 0xff, 0xbf, 0x00, 0x01]);
  });

  it('rejects characters outside the alphabet', () => {
    expect(() => decodeBase64('aGk*')).toThrow(/invalid base64 character at 3/);
  });
});
