import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Network, decodeCheckpoint, decodeSafetensors } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test, type TestContext } from 'vitest';
import { runCli } from './testing/cli-process.js';
import { findTorchPython, runTorchScript } from './testing/torch.js';

/**
 * Models in and out with real PyTorch, both ways:
 * - an nn.Sequential(Linear(4,8), ReLU, Linear(8,3)) built and saved by PyTorch as a plain
 *   safetensors state dict is loaded by `dptrain train --init`, trained one full-batch SGD
 *   step, and every tensor equals torch.optim.SGD's own step on the same batch within 1e-5;
 * - dptrain's final checkpoint, renamed `layers.N.` -> `2N.` with its optimizer tensors left
 *   out, loads into the same nn.Sequential with load_state_dict(strict=True), and PyTorch's
 *   softmax outputs on the test rows equal dptrain's forward pass within 1e-5.
 * PyTorch is optional here: without it the tests skip and say why.
 */
const torch = findTorchPython();
const TOL = 1e-5;
const LR = 0.5;
const TRAIN = 24;
const TEST = 12;

/** Safetensors by hand (Debian has no Python safetensors package): header JSON padded to 8, F32 little-endian. */
const PY_HELPERS = String.raw`
import json, struct, sys, torch
def save(path, sd):
    header, off, blobs = {}, 0, []
    for k, v in sd.items():
        flat = v.detach().contiguous().to(torch.float32).flatten().tolist()
        b = struct.pack('<%df' % len(flat), *flat)
        header[k] = {'dtype': 'F32', 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    out = {}
    for k, e in header.items():
        if k == '__metadata__': continue
        assert e['dtype'] == 'F32', e
        a, b = e['data_offsets']
        vals = struct.unpack('<%df' % ((b - a) // 4), data[a:b])
        out[k] = torch.tensor(vals, dtype=torch.float32).reshape(e['shape'])
    return out
def model():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
d = sys.argv[1]
`;

const PY_STEP = PY_HELPERS + String.raw`
torch.manual_seed(3)
m = model()
save(d + '/torch-init.safetensors', m.state_dict())
batch = json.load(open(d + '/batch.json'))
x = torch.tensor(batch['x'], dtype=torch.float32)
y = torch.tensor(batch['y'], dtype=torch.long)
opt = torch.optim.SGD(m.parameters(), lr=batch['lr'])
loss = torch.nn.functional.cross_entropy(m(x), y)
opt.zero_grad(); loss.backward(); opt.step()
save(d + '/torch-step.safetensors', m.state_dict())
print(json.dumps({'loss': loss.item()}))
`;

const PY_LOAD = PY_HELPERS + String.raw`
ck = load(sys.argv[2])
sd = {}
for k, v in ck.items():
    if not k.startswith('layers.'): continue
    _, i, kind = k.split('.')
    sd['%d.%s' % (2 * int(i), kind)] = v
m = model()
m.load_state_dict(sd, strict=True)
x = torch.tensor(json.load(open(d + '/test.json')), dtype=torch.float32)
with torch.no_grad():
    p = torch.softmax(m(x), dim=1)
print(json.dumps({'dropped': sorted(k for k in ck if not k.startswith('layers.')), 'probs': p.tolist()}))
`;

/** A fixed, seeded-by-formula 3-class problem in 4 inputs (no Math.random). */
function rows(n: number, offset: number): { x: number[][]; y: number[] } {
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i + offset;
    const c = k % 3;
    const r = [0, 1, 2, 3].map((j) => Math.fround(Math.sin(1.7 * k + 0.9 * j) + (j === c ? 1.5 : 0)));
    x.push(r);
    y.push(c);
  }
  return { x, y };
}
const csv = (d: { x: number[][]; y: number[] }) => d.x.map((r, i) => [...r, d.y[i]].join(',')).join('\n') + '\n';

let dir = '';
const train = rows(TRAIN, 0);
const testRows = rows(TEST, 1000);

function requireTorch(ctx: TestContext): string {
  if (torch.python) return torch.python;
  console.warn(`[pytorch interop] NOT RUN: ${torch.detail}`);
  ctx.skip(torch.detail);
  return '';
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-torch-'));
  await writeFile(join(dir, 'train.csv'), csv(train));
  await writeFile(join(dir, 'test.csv'), csv(testRows));
  await writeFile(join(dir, 'batch.json'), JSON.stringify({ x: train.x, y: train.y, lr: LR }));
  await writeFile(join(dir, 'test.json'), JSON.stringify(testRows.x));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`PyTorch interop (${torch.python ? `torch ${torch.detail} at ${torch.python}` : 'torch missing'})`, () => {
  let ckpt = '';

  test('a PyTorch-saved state dict trains one SGD step in dptrain equal to torch.optim.SGD', async (ctx) => {
    const py = requireTorch(ctx);
    runTorchScript(py, PY_STEP, [dir]);
    // One step over the whole training split: the batch is every row, so both sides average
    // the same 24 gradients (in their own order: equal within float rounding, not bit for bit).
    const data = `csv:${join(dir, 'train.csv')};test=${join(dir, 'test.csv')};label=last;header=no`;
    const out = join(dir, 'run');
    const r = await runCli([
      'train', '--data', data, '--model', '4-8-3', '--init', join(dir, 'torch-init.safetensors'),
      '--optimizer', 'sgd', '--lr', String(LR), '--batch-size', String(TRAIN), '--leaf-size', '8',
      '--steps', '1', '--workers', '0', '--checkpoint-dir', out,
    ], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('init: 0.weight [8,4] -> layers.0.weight');
    expect(r.stderr).toContain('init: 2.bias [3] -> layers.1.bias');
    ckpt = join(out, 'final.safetensors');

    const ours = decodeSafetensors(new Uint8Array(await readFile(ckpt))).tensors;
    const theirs = decodeSafetensors(new Uint8Array(await readFile(join(dir, 'torch-step.safetensors')))).tensors;
    const init = decodeSafetensors(new Uint8Array(await readFile(join(dir, 'torch-init.safetensors')))).tensors;
    const byName = (ts: typeof ours, n: string) => ts.get(n) ?? expect.fail(`no tensor ${n}`);
    for (const [torchName, ourName] of [['0.weight', 'layers.0.weight'], ['0.bias', 'layers.0.bias'], ['2.weight', 'layers.1.weight'], ['2.bias', 'layers.1.bias']]) {
      const a = byName(ours, ourName);
      const b = byName(theirs, torchName);
      expect(a.shape, ourName).toEqual(b.shape);
      let maxDiff = 0;
      let moved = 0;
      const b0 = byName(init, torchName).data;
      for (let i = 0; i < a.data.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a.data[i] - b.data[i]));
        moved = Math.max(moved, Math.abs(b.data[i] - b0[i]));
      }
      expect(maxDiff, `${ourName} vs torch ${torchName}: max |diff|`).toBeLessThanOrEqual(TOL);
      // the step really moved the tensor, so the comparison is of a step and not of the init
      expect(moved, `${torchName} moved by torch's step`).toBeGreaterThan(100 * TOL);
    }
  });

  test("dptrain's checkpoint loads into PyTorch with strict=True and gives the same outputs", async (ctx) => {
    const py = requireTorch(ctx);
    expect(ckpt, 'the first test wrote the checkpoint').not.toBe('');
    const res = JSON.parse(runTorchScript(py, PY_LOAD, [dir, ckpt]).trim().split('\n').pop()!) as { dropped: string[]; probs: number[][] };
    // only optimizer state is left out (plain SGD may keep none); every layer tensor was loaded strictly
    expect(res.dropped.every((k) => k.startsWith('optimizer.'))).toBe(true);

    const { spec, params } = decodeCheckpoint(new Uint8Array(await readFile(ckpt)));
    const net = new Network(spec, { maxRows: TEST });
    net.setParams(params);
    net.input.set(testRows.x.flat());
    const outs = net.forward(TEST);
    expect(res.probs.length).toBe(TEST);
    let maxDiff = 0;
    res.probs.forEach((row, i) => row.forEach((p, j) => (maxDiff = Math.max(maxDiff, Math.abs(p - outs[i * 3 + j])))));
    expect(maxDiff, 'max |torch softmax - dptrain forward|').toBeLessThanOrEqual(TOL);
  });
});
