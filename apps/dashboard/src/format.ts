/** Number formatting for the dashboard (pure). Missing values render as an en dash. */

export const DASH = '–';

const ok = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** `digits` significant digits, without exponent for ordinary magnitudes. */
export function fmtNum(v: number | null | undefined, digits = 4): string {
  if (!ok(v)) return DASH;
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(Math.max(0, digits - 1));
  return String(Number(v.toPrecision(digits)));
}

/** Integer with thin thousands separators: 12 345. */
export function fmtInt(v: number | null | undefined): string {
  if (!ok(v)) return DASH;
  return Math.round(v).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
}

/** Fraction as a percentage: 0.9123 → "91.23 %". */
export function fmtPct(v: number | null | undefined, decimals = 2): string {
  return ok(v) ? `${(v * 100).toFixed(decimals)} %` : DASH;
}

/** Bytes in binary units: 1536 → "1.5 KiB". */
export function fmtBytes(v: number | null | undefined): string {
  if (!ok(v)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = Math.abs(v);
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(x)) : x.toFixed(x < 10 ? 1 : 0);
  return `${v < 0 ? '-' : ''}${s} ${units[u]}`;
}

/** Milliseconds: "0.42 ms", "12.3 ms", "1.25 s", "3 min 20 s". */
export function fmtMs(v: number | null | undefined): string {
  if (!ok(v)) return DASH;
  const a = Math.abs(v);
  if (a < 10) return `${v.toFixed(2)} ms`;
  if (a < 1000) return `${v.toFixed(1)} ms`;
  if (a < 60_000) return `${(v / 1000).toFixed(2)} s`;
  return fmtDuration(v);
}

/** Long durations: "3 min 20 s", "2 h 05 min". */
export function fmtDuration(ms: number | null | undefined): string {
  if (!ok(ms)) return DASH;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Throughput: 1234.5 → "1.23k/s". */
export function fmtRate(v: number | null | undefined): string {
  if (!ok(v)) return DASH;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M/s`;
  if (Math.abs(v) >= 1e3) return `${(v / 1e3).toFixed(2)}k/s`;
  return `${v.toFixed(v < 10 ? 2 : 0)}/s`;
}

/** How long ago `t` was, seen from `now` (both ms since the epoch): "3 s ago". */
export function fmtAgo(t: number | null | undefined, now: number): string {
  if (!ok(t)) return DASH;
  const d = now - t;
  if (d < 1000) return 'just now';
  return `${fmtDuration(d)} ago`;
}

/** Wall-clock time of day, HH:MM:SS (local time). */
export function fmtClock(t: number | null | undefined): string {
  if (!ok(t)) return DASH;
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Flatten a config object to "a.b" → printable value pairs (the model is shown separately and skipped). */
export function flattenConfig(obj: Record<string, unknown>, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'model') continue;
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...flattenConfig(v as Record<string, unknown>, key + '.'));
    else out.push([key, typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  return out;
}
