import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Shared vitest settings: workspace packages resolve to their TypeScript sources. */
export const shared = defineConfig({
  resolve: {
    alias: {
      '@dptrain/core': src('./packages/core/src/index.ts'),
      '@dptrain/protocol': src('./packages/protocol/src/index.ts'),
      '@dptrain/worker': src('./packages/worker/src/index.ts'),
      '@dptrain/coordinator': src('./packages/coordinator/src/index.ts'),
    },
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // WebAssembly relaxed SIMD (kernel wasm-fma) is behind a flag on Node 20, as in the CLI
    execArgv: Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
