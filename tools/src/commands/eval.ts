import { readFile } from 'node:fs/promises';
import { ConfigError, type EvalResult, KERNEL_NAMES, Network, decodeCheckpoint, decodeSafetensors, evaluate, mapForeignSafetensors, parseModelShorthand, type CheckpointContents, kernelsForModel } from '@dptrain/core';
import { kernelFlag } from '../flags.js';
import { Command } from 'commander';
import { loadDataset } from '../data/index.js';

/** The confusion matrix as aligned text, rows = true class, columns = predicted class. */
export function formatConfusion(m: number[][]): string {
  const w = Math.max(3, ...m.flat().map((v) => String(v).length)) + 1;
  const head = ' '.repeat(6) + m.map((_, j) => String(j).padStart(w)).join('');
  const rows = m.map((row, i) => String(i).padStart(4) + '  ' + row.map((v) => String(v).padStart(w)).join(''));
  return [head, ...rows].join('\n');
}

/** `dptrain eval --checkpoint PATH`: loss, accuracy and confusion matrix on the test split. */
export function evalCommand(): Command {
  return new Command('eval')
    .description("evaluate a checkpoint on a dataset's test split")
    .requiredOption('--checkpoint <path>', 'a dptrain checkpoint (.safetensors)')
    .option('--model <shorthand>', 'the model, e.g. 4-8-3, for a safetensors state dict without dptrain metadata (PyTorch nn.Sequential of nn.Linear)')
    .option('--data <ref>', 'dataset (default: the one the checkpoint was trained on)')
    .option('--kernel <name>', 'js | wasm (default: the kernel the run trained with)')
    .option('--json', 'print one JSON object')
    .action(async (o: { checkpoint: string; model?: string; data?: string; kernel?: string; json?: boolean }) => {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(o.checkpoint);
      } catch (e) {
        throw new ConfigError('--checkpoint', `cannot read ${o.checkpoint}: ${(e as Error).message}`);
      }
      let ckpt: Pick<CheckpointContents, 'spec' | 'params' | 'training'>;
      if (decodeSafetensors(bytes).metadata['dptrain.format'] === undefined) {
        if (o.model === undefined) throw new ConfigError('--model', `${o.checkpoint} has no dptrain metadata; pass --model (e.g. 784-128-10) to map its tensors`);
        const spec = parseModelShorthand(o.model);
        const { params, mapping } = mapForeignSafetensors(bytes, spec);
        for (const m of mapping) process.stderr.write(`checkpoint: ${m.from} [${m.shape}] -> ${m.to}\n`);
        ckpt = { spec, params, training: undefined };
      } else ckpt = decodeCheckpoint(bytes);
      const trained = (ckpt.training?.config as { data?: unknown } | undefined)?.data;
      const ref = o.data ?? (typeof trained === 'string' ? trained : undefined);
      if (ref === undefined) throw new ConfigError('--data', `${o.checkpoint} does not say which dataset it was trained on; pass --data REF`);
      const trainedKernel = (ckpt.training?.config as { kernel?: unknown } | undefined)?.kernel;
      const kernel = kernelFlag('--kernel', o.kernel ?? ((KERNEL_NAMES as readonly unknown[]).includes(trainedKernel) ? trainedKernel : 'js'));
      const data = await loadDataset(ref);
      const net = new Network(ckpt.spec, { maxRows: 256, kernels: kernelsForModel(kernel, ckpt.spec, [256]) });
      const test = data.split.test;
      if (test.inputSize !== net.inputSize || test.outputSize !== net.outputSize) {
        throw new ConfigError('--data', `dataset ${ref} is ${test.inputSize}→${test.outputSize}, the checkpoint's model is ${net.inputSize}→${net.outputSize}`);
      }
      const r: EvalResult = evaluate(net, ckpt.params, test, { confusion: true });
      const step = (ckpt.training as { step?: unknown } | undefined)?.step;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ checkpoint: o.checkpoint, data: data.ref, step, samples: r.samples, loss: r.loss, accuracy: r.accuracy, confusion: r.confusion })}\n`);
        return;
      }
      const dims = [ckpt.spec.inputSize, ...ckpt.spec.layers.map((l) => l.units)].join('-');
      const lines = [
        `checkpoint: ${o.checkpoint} (model ${dims}${typeof step === 'number' ? `, step ${step}` : ''})`,
        `data: ${data.description}; test split, ${r.samples} samples`,
        `loss: ${r.loss.toFixed(4)}`,
        `accuracy: ${(100 * r.accuracy).toFixed(2)}%`,
      ];
      if (r.confusion) lines.push('confusion matrix (rows: true class, columns: predicted class):', formatConfusion(r.confusion));
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
