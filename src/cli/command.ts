// A `ctvlm` subcommand. Each lives in its own file under src/cli/ and is loaded lazily,
// so `ctvlm data mine` does not start a GPU device.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../app-errors.ts';

export interface Command {
  /** e.g. "data synth" */
  name: string;
  summary: string;
  /** Full usage text printed by `ctvlm help <name>` and on a UsageError. */
  usage: string;
  run(argv: string[]): Promise<number | void>;
}

/** node:util parseArgs, with its errors (unknown option, missing value) as UsageErrors. */
export function parseCliArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A numeric option: undefined when absent, a UsageError naming the option when malformed. */
export function numberOption(v: string | undefined, name: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) throw new UsageError(`--${name}: expected a ${integer ? 'non-negative integer' : 'non-negative number'}, got '${v}'`);
  return n;
}
