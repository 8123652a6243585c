import { defineConfig } from 'vite';

// base './': the coordinator serves the page from any path (or behind a proxy prefix).
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm exec -w apps/dashboard vite` against a coordinator on :8080 during development
    proxy: { '/events': { target: 'ws://127.0.0.1:8080', ws: true } },
  },
});
