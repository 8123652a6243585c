import { spawnSync } from 'node:child_process';

/**
 * Finding a Python that has PyTorch, for the interop tests and comparisons that use it.
 * PyTorch is optional: Debian's `python3-torch` lives in /usr/bin/python3, which a pyenv or
 * venv `python3` earlier on PATH can hide, so both are tried ($DPTRAIN_PYTHON first).
 */
export interface TorchPython {
  /** The interpreter that imports torch, or undefined. */
  python?: string;
  /** torch.__version__ when found; otherwise why not, for the skip message. */
  detail: string;
}

let cached: TorchPython | undefined;

export function findTorchPython(): TorchPython {
  if (cached) return cached;
  const candidates = [process.env.DPTRAIN_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const tried: string[] = [];
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return (cached = { python: py, detail: r.stdout.trim() });
    const last = (r.error?.message ?? r.stderr ?? '').trim().split('\n').pop() ?? '';
    tried.push(`${py}: ${last || `exit ${r.status}`}`);
  }
  return (cached = {
    detail: `no Python with PyTorch (${tried.join('; ')}); install it with apt-get install -y python3-torch libopenblas0-pthread`,
  });
}

/** Run a Python script with the torch interpreter; throws with its stderr when it fails. */
export function runTorchScript(python: string, script: string, args: string[], timeoutMs = 120_000): string {
  const r = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`python script failed (exit ${r.status}): ${r.error?.message ?? ''}\n${r.stderr}`);
  return r.stdout;
}
