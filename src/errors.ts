// The framework's errors, meant for users: a command-line tool prints their message alone
// (no stack trace), because the message already names what is wrong and where (the op and
// its shapes, the tensor, the kernel and field, the file and field).

/** Base of every error the framework raises for bad use or bad input. */
export class FrameworkError extends Error {
  override name = 'FrameworkError';
}

/** Shapes that do not fit the op: ranks, dimensions, broadcasting, axes. Names the op and the shapes. */
export class ShapeError extends FrameworkError {
  override name = 'ShapeError';
}

/** A bad argument value or a misuse that is not about shapes: a non-finite scalar, a wrong
 * dtype, a disposed tensor, tensors on two devices, an option out of range. */
export class ValueError extends FrameworkError {
  override name = 'ValueError';
}

/** Errors raised by the GPU runtime (validation, out of memory, device loss, no adapter,
 * a kernel's declaration or launch). */
export class GpuError extends FrameworkError {
  override name = 'GpuError';
}

/** Bad input data: names the file (or other source) and the field at fault. */
export class DataError extends FrameworkError {
  override name = 'DataError';
  constructor(
    readonly source: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${source}: ${field}: ${detail}`);
  }
}
