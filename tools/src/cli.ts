#!/usr/bin/env node
import './wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { main } from './program.js';

// The `dptrain` entry point (tools/bin/dptrain.js imports this file).
const code = await main(process.argv.slice(2));
process.exit(code);
