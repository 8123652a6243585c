import { DptrainError } from '@dptrain/core';
import { ProtocolError, isProtocolErrorCode } from './errors.js';
import { truncateUtf8 } from './fields.js';
import { LIMITS, PROTOCOL_VERSION, type ErrorMessage } from './messages.js';

const CODE = /^[A-Z][A-Z0-9_]*$/;

/**
 * Turn any thrown value into an `error` message to send to the peer: the code of a
 * DptrainError (E_INTERNAL for anything else), the message cut to the wire limit, and
 * `fatal` from the ProtocolError or the option (default false).
 */
export function toErrorMessage(err: unknown, opts: { fatal?: boolean; step?: number } = {}): ErrorMessage {
  const code = err instanceof DptrainError && CODE.test(err.code) && err.code.length <= LIMITS.errorCode ? err.code : 'E_INTERNAL';
  const text = err instanceof Error ? err.message : String(err);
  const fatal = opts.fatal ?? (err instanceof ProtocolError ? err.fatal : false);
  const m: ErrorMessage = { type: 'error', v: PROTOCOL_VERSION, code, message: truncateUtf8(text, LIMITS.errorMessage), fatal };
  if (opts.step !== undefined) m.step = opts.step;
  return m;
}

/** The error a received `error` message describes: a ProtocolError for protocol codes, else a DptrainError. */
export function fromErrorMessage(m: ErrorMessage): DptrainError {
  return isProtocolErrorCode(m.code) ? new ProtocolError(m.code, m.message, { fatal: m.fatal }) : new DptrainError(m.code, m.message);
}
