/** Types of build-wasm.mjs, for the test that checks the committed gemm.wasm.ts is fresh. */
export declare const watPath: string;
export declare const outPath: string;
export declare function assembleWat(source: string, filename?: string, fma?: boolean): Promise<Uint8Array>;
export declare function fmaSource(source: string): string;
export declare function renderModule(bytes: Uint8Array, fmaBytes: Uint8Array): string;
export declare function expectedModule(): Promise<string>;
