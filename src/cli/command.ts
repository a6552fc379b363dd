// A `ctvlm` subcommand. Each lives in its own file under src/cli/ and is loaded lazily,
// so `ctvlm data mine` does not start a GPU device.
export interface Command {
  /** e.g. "data synth" */
  name: string;
  summary: string;
  /** Full usage text printed by `ctvlm help <name>` and on a UsageError. */
  usage: string;
  run(argv: string[]): Promise<number | void>;
}
