import { defineConfig, mergeConfig } from 'vitest/config';
import { shared } from '../../vitest.shared.js';

// The state and formatting logic is pure: tests run in Node, no DOM.
export default mergeConfig(shared, defineConfig({ test: { environment: 'node', include: ['src/**/*.test.ts'] } }));
