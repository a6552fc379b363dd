// Errors meant for users: the CLI prints their message alone (no stack trace), because the
// message already names what is wrong and where (file, field, tensor, op, shapes).
export class CtvlmError extends Error {
  override name = 'CtvlmError';
}

/** Bad input data: names the file (or other source) and the field at fault. */
export class DataError extends CtvlmError {
  override name = 'DataError';
  constructor(
    readonly source: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${source}: ${field}: ${detail}`);
  }
}

/** Misuse of an op or tensor: names the op and the shapes involved. */
export class ShapeError extends CtvlmError {
  override name = 'ShapeError';
}

/** Errors raised by the GPU runtime (validation, out of memory, device loss, no adapter). */
export class GpuError extends CtvlmError {
  override name = 'GpuError';
}

/** Wrong command-line usage: the CLI prints the message and the command's usage. */
export class UsageError extends CtvlmError {
  override name = 'UsageError';
}
