// A `ctvlm` subcommand. Each lives in its own file under src/cli/ and is loaded lazily,
// so `ctvlm data mine` does not start a GPU device.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../app-errors.ts';
import { setTuning, type Tuning } from '../gpu/tuning.ts';

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
  // Number('') and Number(' ') are 0: an empty value would silently mean zero.
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) throw new UsageError(`--${name}: expected a ${integer ? 'non-negative integer' : 'non-negative number'}, got '${v}'`);
  return n;
}

/** The --tuning option's help line (profile, train). */
export const TUNING_USAGE = `  --tuning F=V       set a kernel choice of gpu.tuning (src/gpu/tuning.ts) for the run, e.g.
                     matmul.uniformB=false or attention.variant=tiled (repeatable)`;

/** Applies --tuning FIELD=VALUE options to a device's tuning; a bad one is a UsageError naming
 * it (setTuning's message). Returns the assignments, for the run's description. */
export function applyTuningOptions(tuning: Tuning, assignments: readonly string[] | undefined): string[] {
  for (const t of assignments ?? []) {
    try {
      setTuning(tuning, t);
    } catch (e) {
      throw new UsageError(`--${(e as Error).message}`);
    }
  }
  return [...(assignments ?? [])];
}
