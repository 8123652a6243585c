export { encodeCheckpoint, decodeCheckpoint, CHECKPOINT_FORMAT } from './checkpoint.js';
export type { CheckpointContents } from './checkpoint.js';
export { encodeSafetensors, decodeSafetensors, MAX_HEADER_BYTES } from './safetensors.js';
export type { NamedTensor, DecodedSafetensors } from './safetensors.js';
export { mapForeignSafetensors } from './foreign.js';
export type { ForeignMapping } from './foreign.js';
