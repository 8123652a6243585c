import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private directory (mode 0700, under the system's temp dir) holding the Unix socket
 * a coordinator listens on for its local workers (CoordinatorOptions.ipcPath): the same
 * protocol as ws://, without the TCP stack. `path` is undefined where Unix sockets are not
 * used (Windows, or when `enabled` is false); remove() deletes the directory (safe twice).
 */
export function ipcSocketDir(enabled = true): { path?: string; remove(): void } {
  if (!enabled || process.platform === 'win32') return { remove: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-'));
  return {
    path: join(dir, 'coordinator.sock'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
