import {
  type Message,
  ProtocolError,
  type ResultMessage,
  WORKER_MESSAGE_TYPES,
  decode,
  readFrame,
  validateMessage,
} from '@dptrain/protocol';

/** A decoded worker frame, or why it was refused. */
export type Intake =
  | { ok: true; msg: Message }
  /** A well-formed result whose gradient or lossSum holds NaN/±Inf: decoded anyway so the sender, step and node are known. */
  | { ok: true; msg: ResultMessage; nonFinite: ProtocolError }
  | { ok: false; error: ProtocolError };

/**
 * Decode and validate one binary frame from a worker (only worker message types; gradients
 * of exactly `paramCount` values; at most `maxFrameBytes`; a gradient's values are scanned
 * for NaN/±Infinity later, by the round, on its copy in kernel memory). A result refused only because
 * its gradient is not finite is still returned, flagged `nonFinite`, so that the coordinator
 * can apply its non-finite policy to that worker, step and node. Never throws.
 */
export function decodeWorkerFrame(bytes: Uint8Array, paramCount: number, maxFrameBytes: number): Intake {
  // the gradient's NaN/±Infinity scan is left to the round (it scans its copy in kernel memory)
  const ctx = { paramCount, maxFrameBytes, accept: WORKER_MESSAGE_TYPES, receiverScansResults: true };
  try {
    return { ok: true, msg: decode(bytes, ctx) };
  } catch (e) {
    const error = e instanceof ProtocolError ? e : new ProtocolError('E_INTERNAL', String(e));
    const badLoss = error.code === 'E_FIELD' && error.field === 'result.lossSum';
    if (error.code !== 'E_NONFINITE' && !badLoss) return { ok: false, error };
    try {
      const { header, payload } = readFrame(bytes, maxFrameBytes);
      if (header.type !== 'result') return { ok: false, error };
      const lossSum = header.lossSum;
      if (badLoss && (typeof lossSum !== 'number' || Number.isFinite(lossSum))) return { ok: false, error };
      const grad = new Float32Array(payload.byteLength / 4);
      new Uint8Array(grad.buffer).set(payload);
      const msg = validateMessage({ ...header, lossSum: badLoss ? 0 : lossSum, grad }, ctx, { checkFinite: false });
      if (msg.type !== 'result') return { ok: false, error };
      if (badLoss) msg.lossSum = lossSum as number;
      const nonFinite = badLoss ? new ProtocolError('E_NONFINITE', `result.lossSum is ${String(lossSum)}; it must be finite`, { field: 'result.lossSum' }) : error;
      return { ok: true, msg, nonFinite };
    } catch {
      return { ok: false, error };
    }
  }
}
