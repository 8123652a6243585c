/**
 * Cumulative sums for a stacked area chart: out[k][i] = ys[0][i] + … + ys[k][i]. A
 * missing value counts as 0 unless the whole column is missing (then every level is null,
 * leaving a gap). Pure.
 */
export function stackSeries(ys: readonly (readonly (number | null)[])[]): (number | null)[][] {
  const n = ys.length === 0 ? 0 : ys[0].length;
  const out = ys.map(() => new Array<number | null>(n));
  for (let i = 0; i < n; i++) {
    let any = false;
    for (const y of ys) if (y[i] !== null && y[i] !== undefined) any = true;
    let acc = 0;
    for (let k = 0; k < ys.length; k++) {
      const v = ys[k][i];
      acc += typeof v === 'number' && Number.isFinite(v) ? v : 0;
      out[k][i] = any ? acc : null;
    }
  }
  return out;
}

/** Number of non-null values of a series. */
export function countPoints(y: readonly (number | null)[]): number {
  let n = 0;
  for (const v of y) if (v !== null) n++;
  return n;
}
