import { CheckpointError } from '../errors.js';
import { paramLayout, type ModelSpec } from '../spec.js';
import { decodeSafetensors } from './safetensors.js';

/** One tensor of a foreign file and the dptrain tensor it was mapped onto. */
export interface ForeignMapping {
  from: string;
  shape: number[];
  to: string;
}

/** Compare names by their numeric parts as numbers ("2.weight" < "10.weight"); keeps weight before bias. */
function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    const na = Number(pa[i]);
    const nb = Number(pb[i]);
    if (i % 2 === 1 && na !== nb) return na - nb;
    const wa = /^\W*weight/.test(pa[i]) ? 0 : /^\W*bias/.test(pa[i]) ? 1 : 2;
    const wb = /^\W*weight/.test(pb[i]) ? 0 : /^\W*bias/.test(pb[i]) ? 1 : 2;
    if (wa !== wb) return wa - wb;
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Map a safetensors file without dptrain metadata (e.g. a PyTorch nn.Sequential of nn.Linear state dict:
 * 0.weight [out,in], 0.bias [out], 2.weight, ...) onto `spec`'s layers by natural name order and shape.
 * Bytes in, flat params out; errors name the first tensor that does not fit, or why the tensors do not pair up.
 */
export function mapForeignSafetensors(bytes: Uint8Array, spec: ModelSpec): { params: Float32Array; mapping: ForeignMapping[] } {
  const { tensors } = decodeSafetensors(bytes);
  const names = [...tensors.keys()].sort(naturalCompare);
  const layout = paramLayout(spec);
  const fail = (m: string): never => {
    throw new CheckpointError(`no dptrain metadata and ${m}`);
  };
  if (names.length % 2 !== 0) fail(`the ${names.length} tensors do not pair up as weight/bias (odd count: ${names.join(', ')})`);
  for (let i = 0; i < names.length; i += 2) {
    const w = tensors.get(names[i])!;
    const b = tensors.get(names[i + 1])!;
    if (w.shape.length !== 2 || b.shape.length !== 1 || b.shape[0] !== w.shape[0]) {
      fail(`tensors do not pair up as weight/bias: ${names[i]} [${w.shape}] and ${names[i + 1]} [${b.shape}] (need [out,in] then [out])`);
    }
  }
  if (names.length !== layout.tensors.length) {
    fail(`the file has ${names.length / 2} weight/bias pairs but the model has ${spec.layers.length} layers`);
  }
  const params = new Float32Array(layout.total);
  const mapping: ForeignMapping[] = [];
  names.forEach((name, i) => {
    const t = tensors.get(name)!;
    const info = layout.tensors[i];
    if (t.shape.length !== info.shape.length || t.shape.some((d, k) => d !== info.shape[k])) {
      throw new CheckpointError(`tensor ${name} has shape [${t.shape}], expected [${info.shape}] for ${info.name}`);
    }
    params.set(t.data, info.offset);
    mapping.push({ from: name, shape: t.shape, to: info.name });
  });
  return { params, mapping };
}
