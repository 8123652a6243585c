import { describe, expect, it } from 'vitest';
import { mapForeignSafetensors } from './foreign.js';
import { encodeSafetensors } from './safetensors.js';
import { parseModelShorthand } from '../spec.js';

const t = (name: string, shape: number[]) => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i + name.length) });

describe('mapForeignSafetensors', () => {
  it('maps torch-style names by natural order and shape', () => {
    const spec = parseModelShorthand('4-8-3');
    const bytes = encodeSafetensors([t('2.bias', [3]), t('0.weight', [8, 4]), t('2.weight', [3, 8]), t('0.bias', [8])]);
    const { params, mapping } = mapForeignSafetensors(bytes, spec);
    expect(mapping.map((m) => `${m.from} -> ${m.to}`)).toEqual(['0.weight -> layers.0.weight', '0.bias -> layers.0.bias', '2.weight -> layers.1.weight', '2.bias -> layers.1.bias']);
    expect(params.length).toBe(32 + 8 + 24 + 3);
    expect(params[0]).toBe(8); // '0.weight'.length + 0
    expect(params[32]).toBe(6);
  });
  it('orders 2 before 10', () => {
    const spec = parseModelShorthand('4-8-5-3');
    const bytes = encodeSafetensors([t('10.weight', [3, 5]), t('10.bias', [3]), t('2.weight', [5, 8]), t('2.bias', [5]), t('0.weight', [8, 4]), t('0.bias', [8])]);
    expect(mapForeignSafetensors(bytes, spec).mapping.map((m) => m.from)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias', '10.weight', '10.bias']);
  });
  it('names the first tensor whose shape does not fit', () => {
    const bytes = encodeSafetensors([t('0.weight', [8, 5]), t('0.bias', [8]), t('2.weight', [3, 8]), t('2.bias', [3])]);
    expect(() => mapForeignSafetensors(bytes, parseModelShorthand('4-8-3'))).toThrow(/tensor 0\.weight has shape \[8,5\], expected \[8,4\]/);
  });
  it('names the cause when tensors do not pair up', () => {
    const bytes = encodeSafetensors([t('0.weight', [8, 4]), t('0.bias', [8]), t('2.weight', [3, 8])]);
    expect(() => mapForeignSafetensors(bytes, parseModelShorthand('4-8-3'))).toThrow(/no dptrain metadata and .*do not pair up/);
  });
});
