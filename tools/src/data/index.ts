export type { LoadDatasetOptions, LoadedDataset } from './load.js';
export { loadDataset } from './load.js';
export type { DataRef } from './ref.js';
export { DATA_REF_HELP, parseDataRef } from './ref.js';
export type { MnistLoadOptions, Progress } from './mnist.js';
export { loadMnist, locateMnist } from './mnist.js';
export { fingerprintNode, readInput, readText } from './files.js';
