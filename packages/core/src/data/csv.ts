import { ConfigError, DataError } from '../errors.js';
import type { Dataset } from './dataset.js';
import { oneHot } from './dataset.js';

export interface CsvOptions {
  /** Column holding the label/target: 'first' (default), 'last' or a 0-based index. */
  labelColumn?: number | 'first' | 'last';
  /** Whether the first row is a header: true, false, or 'auto' (default: a header iff a cell of the first row is not a number). */
  header?: boolean | 'auto';
  /** Classification only: number of classes (default max label + 1). */
  classes?: number;
  /** 'classification' (default): integer labels, one-hot targets. 'regression': one float target. */
  task?: 'classification' | 'regression';
  /** Dataset name (default 'csv'). */
  name?: string;
}

/** A numeric cell: optional surrounding spaces or double quotes; empty, non-numeric and non-finite cells are rejected. */
function num(cell: string): number {
  let s = cell.trim();
  if (s.length >= 2 && s[0] === '"' && s[s.length - 1] === '"') s = s.slice(1, -1).trim();
  if (s === '') return NaN;
  const v = Number(s);
  return Number.isFinite(v) ? v : NaN;
}

function validate(opts: CsvOptions) {
  const o = { labelColumn: 'first' as CsvOptions['labelColumn'], header: 'auto' as CsvOptions['header'], task: 'classification', ...opts };
  const lc = o.labelColumn;
  if (!(lc === 'first' || lc === 'last' || (typeof lc === 'number' && Number.isInteger(lc) && lc >= 0))) {
    throw new ConfigError('labelColumn', `expected 'first', 'last' or a column index >= 0, got ${JSON.stringify(lc)}`);
  }
  if (!(o.header === true || o.header === false || o.header === 'auto')) throw new ConfigError('header', `expected true, false or 'auto', got ${JSON.stringify(o.header)}`);
  if (o.task !== 'classification' && o.task !== 'regression') throw new ConfigError('task', `expected 'classification' or 'regression', got ${JSON.stringify(o.task)}`);
  if (o.classes !== undefined && !(Number.isInteger(o.classes) && o.classes >= 1)) throw new ConfigError('classes', `expected a positive integer, got ${o.classes}`);
  return o;
}

/**
 * Parse a comma-separated numeric table: one sample per line, one column the label, the
 * others the inputs. Blank lines are skipped; CRLF is fine. Errors name the line (1-based,
 * counting every line of the text) and the column (1-based).
 */
export function parseCsv(text: string, opts: CsvOptions = {}): Dataset {
  const o = validate(opts);
  const lines = text.split(/\r?\n/);
  const rows: { line: number; cells: string[] }[] = [];
  for (let i = 0; i < lines.length; i++) if (lines[i].trim() !== '') rows.push({ line: i + 1, cells: lines[i].split(',') });
  if (rows.length === 0) throw new DataError('csv: no rows');
  const hasHeader = o.header === 'auto' ? rows[0].cells.some((c) => Number.isNaN(num(c))) : o.header;
  const data = hasHeader ? rows.slice(1) : rows;
  if (data.length === 0) throw new DataError('csv: a header but no data rows');
  const cols = rows[0].cells.length;
  if (cols < 2) throw new DataError(`csv line ${rows[0].line}: expected at least 2 columns (label and inputs), got ${cols}`);
  const lc = o.labelColumn === 'first' ? 0 : o.labelColumn === 'last' ? cols - 1 : (o.labelColumn as number);
  if (lc >= cols) throw new ConfigError('labelColumn', `expected a column index in [0, ${cols - 1}], got ${lc}`);
  const n = data.length;
  const inputSize = cols - 1;
  const x = new Float32Array(n * inputSize);
  const target = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const { line, cells } = data[r];
    if (cells.length !== cols) throw new DataError(`csv line ${line}: expected ${cols} columns, got ${cells.length}`);
    let k = r * inputSize;
    for (let c = 0; c < cols; c++) {
      const v = num(cells[c]);
      if (Number.isNaN(v)) throw new DataError(`csv line ${line}, column ${c + 1}: expected a finite number, got ${JSON.stringify(cells[c].trim())}`);
      if (c === lc) target[r] = v;
      else x[k++] = v;
    }
  }
  const name = o.name ?? 'csv';
  if (o.task === 'regression') return { name, n, inputSize, outputSize: 1, x, y: Float32Array.from(target) };
  const labels = new Int32Array(n);
  let max = 0;
  for (let r = 0; r < n; r++) {
    const v = target[r];
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new DataError(`csv line ${data[r].line}, column ${lc + 1}: expected a class label (integer >= 0), got ${v}`);
    }
    labels[r] = v;
    if (v > max) max = v;
  }
  const classes = o.classes ?? max + 1;
  if (classes < max + 1) throw new ConfigError('classes', `expected at least ${max + 1} (max label + 1), got ${classes}`);
  return { name, n, inputSize, outputSize: classes, x, y: oneHot(labels, classes), labels, classes };
}
