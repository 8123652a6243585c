/** Errors with a stable `code`, so callers and peers can act on them without parsing text. */
export class DptrainError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A configuration or hyperparameter is wrong; the message names the field and the allowed range. */
export class ConfigError extends DptrainError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('E_CONFIG', `${field}: ${message}`);
    this.field = field;
  }
}

/** Arrays or tensors of the wrong size or shape. */
export class ShapeError extends DptrainError {
  constructor(message: string) {
    super('E_SHAPE', message);
  }
}

/** A checkpoint file that is truncated, corrupted or belongs to another model. */
export class CheckpointError extends DptrainError {
  constructor(message: string) {
    super('E_CHECKPOINT', message);
  }
}

/** Data that cannot be parsed or does not fit the model. */
export class DataError extends DptrainError {
  constructor(message: string) {
    super('E_DATA', message);
  }
}
