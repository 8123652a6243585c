import { describe, expect, it } from 'vitest';
import { DataError } from '../errors.js';
import { parseCsv } from './csv.js';

describe('parseCsv', () => {
  it('parses without a header, label first', () => {
    const ds = parseCsv('1,0.5,2\n0,1.5,-3\r\n\n2,0,0\n');
    expect(ds).toMatchObject({ name: 'csv', n: 3, inputSize: 2, outputSize: 3, classes: 3 });
    expect(Array.from(ds.x)).toEqual([0.5, 2, 1.5, -3, 0, 0]);
    expect(Array.from(ds.labels!)).toEqual([1, 0, 2]);
    expect(Array.from(ds.y)).toEqual([0, 1, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('auto-detects a header and honours labelColumn last / index', () => {
    const text = 'a,b,label\n1,2,1\n3,4,0\n';
    const last = parseCsv(text, { labelColumn: 'last' });
    expect(last.n).toBe(2);
    expect(Array.from(last.x)).toEqual([1, 2, 3, 4]);
    expect(Array.from(last.labels!)).toEqual([1, 0]);
    const mid = parseCsv('5,1,6\n7,0,8', { labelColumn: 1, classes: 4 });
    expect(Array.from(mid.x)).toEqual([5, 6, 7, 8]);
    expect(mid.outputSize).toBe(4);
    expect(parseCsv('1,2\n0,3', { header: true }).n).toBe(1);
  });

  it('supports regression targets', () => {
    const ds = parseCsv('x,y\n1,2.5\n2,-1.25', { labelColumn: 'last', task: 'regression' });
    expect(ds).toMatchObject({ n: 2, inputSize: 1, outputSize: 1 });
    expect(ds.labels).toBeUndefined();
    expect(Array.from(ds.y)).toEqual([2.5, -1.25]);
  });

  it('names the line and column of a bad cell, and of a ragged row', () => {
    const bad = 'label,a,b\n1,2,3\n0,4,oops\n';
    expect(() => parseCsv(bad)).toThrow(DataError);
    expect(() => parseCsv(bad)).toThrow(/line 3, column 3.*"oops"/);
    expect(() => parseCsv('1,2,3\n\n0,4\n')).toThrow(/line 3: expected 3 columns, got 2/);
    expect(() => parseCsv('1,2\n0.5,3\n')).toThrow(/line 2, column 1: expected a class label/);
    expect(() => parseCsv('1,2\n0,\n')).toThrow(/line 2, column 2/);
  });

  it('validates options', () => {
    expect(() => parseCsv('1,2', { labelColumn: 5 })).toThrow(/labelColumn/);
    expect(() => parseCsv('1,2', { task: 'other' as never })).toThrow(/task/);
    expect(() => parseCsv('3,2', { classes: 2 })).toThrow(/classes/);
    expect(() => parseCsv('\n\n')).toThrow(/no rows/);
  });
});
