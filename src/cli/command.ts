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

/**
 * node:util parseArgs, with its errors (unknown option, missing value) as UsageErrors. A
 * negative number after a string option (`--steps -1`) is taken as its value, as `--steps=-1`,
 * so that the option's own check names what it expects; parseArgs alone would call it an
 * "ambiguous" argument.
 */
export function parseCliArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    const opts = config.options ?? {};
    const args = config.args?.slice();
    if (args) {
      for (let i = 0; i + 1 < args.length && args[i] !== '--'; i++) {
        const name = /^--([^=]+)$/.exec(args[i]!)?.[1];
        if (name && opts[name]?.type === 'string' && /^-(\d|\.\d)/.test(args[i + 1]!)) args.splice(i, 2, `--${name}=${args[i + 1]}`);
      }
    }
    return parseArgs(args ? { ...config, args } : config) as ReturnType<typeof parseArgs<T>>;
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
