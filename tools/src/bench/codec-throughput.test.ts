import { describe, expect, it } from 'vitest';
import { codecThroughput } from './codec-throughput.js';

describe('codecThroughput', () => {
  it('times every operation on frames of 4 bytes per parameter plus a small aligned header', () => {
    const r = codecThroughput(4096, 2);
    expect(r.paramCount).toBe(4096);
    for (const bytes of [r.frameBytes.params, r.frameBytes.result]) {
      expect(bytes % 4).toBe(0);
      expect(bytes - 4 * 4096).toBeGreaterThan(12);
      expect(bytes - 4 * 4096).toBeLessThan(12 + 256);
    }
    expect(Object.keys(r.gbPerSec).sort()).toEqual(
      ['bufferCopy', 'float32ArraySet', 'paramsDecode', 'paramsEncode', 'paramsRoundTrip', 'resultDecode', 'resultEncode', 'resultFrameFinish', 'resultFrameRoundTrip', 'resultRoundTrip'].sort(),
    );
    for (const s of Object.values(r.gbPerSec)) {
      expect(s.n).toBe(2);
      expect(s.min).toBeLessThanOrEqual(s.median);
      expect(s.median).toBeLessThanOrEqual(s.max);
    }
    // a round trip takes the time of both halves: slower than either
    expect(r.gbPerSec.paramsRoundTrip.median).toBeLessThan(Math.min(r.gbPerSec.paramsEncode.max, r.gbPerSec.paramsDecode.max));
  });
});
