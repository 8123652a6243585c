import { DptrainError } from '@dptrain/core';

/**
 * WebSocket close codes used by dptrain. 1000–1009 are the RFC 6455 codes; 4000–4005
 * are application codes (the 4000–4999 range is reserved for applications).
 */
export const CLOSE_CODES = {
  /** Normal closure (bye sent or received, run over for this peer). */
  NORMAL: 1000,
  /** The peer is shutting down (process exit, coordinator stopping). */
  GOING_AWAY: 1001,
  /** Policy violation (e.g. a connection refused before any message, such as a bad origin). */
  POLICY: 1008,
  /** A frame larger than the receiver accepts. */
  TOO_BIG: 1009,
  /** A malformed, invalid or out-of-order message. */
  PROTOCOL_ERROR: 4000,
  /** The peers speak different protocol versions. */
  VERSION_MISMATCH: 4001,
  /** The worker's dataset fingerprint differs from the coordinator's. */
  DATA_MISMATCH: 4002,
  /** Authentication failed (missing or wrong token). */
  AUTH_FAILED: 4003,
  /** The run has finished; the worker should exit. */
  RUN_FINISHED: 4004,
  /** Too many workers, or this worker is not needed. */
  NOT_NEEDED: 4005,
  /** The shared-memory data plane failed; the worker reconnects and uses the socket alone. */
  SHM_FAILED: 4006,
} as const;

export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

interface ErrorCodeInfo {
  /** What the code means. */
  readonly description: string;
  /** The close code a receiver should use if it closes the connection for this error. */
  readonly closeCode: CloseCode;
  /** Whether the connection should be closed by default (the caller decides). */
  readonly fatal: boolean;
}

/** Stable error codes carried by ProtocolError and by `error` messages on the wire. */
export const ERROR_CODES = {
  E_DECODE: { description: 'the frame is not a valid dptrain frame (bad prefix, truncated, not msgpack, forbidden msgpack type)', closeCode: 4000, fatal: true },
  E_TYPE: { description: 'unknown message type, or a type this peer must not send', closeCode: 4000, fatal: true },
  E_FIELD: { description: 'a field is missing or has the wrong type or range (the message names the field and the expected type)', closeCode: 4000, fatal: true },
  E_VERSION: { description: 'the peer speaks another protocol version (the message names both versions)', closeCode: 4001, fatal: true },
  E_LENGTH: { description: 'a binary payload has the wrong length (the message names expected and actual)', closeCode: 4000, fatal: true },
  E_NONFINITE: { description: 'a parameter or gradient payload holds NaN or ±Infinity (the message names the first bad index)', closeCode: 4000, fatal: false },
  E_TOO_LARGE: { description: 'a frame, header, string or array exceeds its size limit', closeCode: 1009, fatal: true },
  E_AUTH: { description: 'authentication failed (missing or wrong token)', closeCode: 4003, fatal: true },
  E_DATA_MISMATCH: { description: "the worker's dataset fingerprint differs from the coordinator's", closeCode: 4002, fatal: true },
  E_STATE: { description: 'a valid message arrived out of order for the session state', closeCode: 4000, fatal: true },
  E_STALE: { description: 'a result for an old step or a duplicate node; dropped and counted', closeCode: 4000, fatal: false },
  E_WORKER: { description: 'a worker-side failure while loading data or computing a task', closeCode: 4000, fatal: false },
  E_SHM: {
    description: 'the shared-memory data plane failed (a slot file could not be read or written, or a slot was rewritten before it was read); the connection is closed and the worker rejoins over the socket alone',
    closeCode: 4006,
    fatal: true,
  },
  E_INTERNAL: { description: 'a bug or unexpected condition on the side that reports it', closeCode: 4000, fatal: true },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ProtocolErrorCode = keyof typeof ERROR_CODES;

/** True if `code` is one of the protocol's error codes. */
export function isProtocolErrorCode(code: unknown): code is ProtocolErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** A wire-level error with a stable code and the close code to use if the connection is closed for it. */
export class ProtocolError extends DptrainError {
  declare readonly code: ProtocolErrorCode;
  /** Suggested WebSocket close code (see CLOSE_CODES). */
  readonly closeCode: CloseCode;
  /** Whether the connection should be closed by default. */
  readonly fatal: boolean;
  /** The offending field as a dotted path (E_FIELD, E_LENGTH, E_NONFINITE), if any. */
  readonly field?: string;

  constructor(code: ProtocolErrorCode, message: string, options: { field?: string; closeCode?: CloseCode; fatal?: boolean; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.closeCode = options.closeCode ?? ERROR_CODES[code].closeCode;
    this.fatal = options.fatal ?? ERROR_CODES[code].fatal;
    if (options.field !== undefined) this.field = options.field;
  }
}
