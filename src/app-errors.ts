// The CT application's own errors (model, training, evaluation, command line), on top of the
// framework's (src/errors.ts): the CLI prints any FrameworkError's message alone.
import { FrameworkError } from './errors.ts';

/** A misuse of the application (configuration, run folders, weights) that names what is wrong. */
export class CtvlmError extends FrameworkError {
  override name = 'CtvlmError';
}

/** Wrong command-line usage: the CLI prints the message and the command's usage. */
export class UsageError extends CtvlmError {
  override name = 'UsageError';
}
