// The bench's command line, parsed by node:util's parseArgs.
import { parseArgs } from 'node:util';
import { SECTIONS, type Section } from './row.ts';

export interface Options {
  quick: boolean;
  only: Set<Section>;
  iters?: number;
  name?: string;
  peer: boolean;
  /** Create our device without timestamp-query (tests the wall-clock fallback). */
  wallOnly: boolean;
}

/** A bad command line: main prints the message and exits with status 2. */
export class UsageError extends Error {}

export function usage(): string {
  return [
    'usage: node .build/bench/run.js [options]   (npm run bench -- [options])',
    '  --quick            fewer sizes and iterations (a smoke run, < 2 min on lavapipe)',
    `  --only LIST        comma-separated sections: ${SECTIONS.join(', ')}`,
    '  --iters N          exactly N timed calls per measurement (default: sized by a time budget)',
    '  --name NAME        results file bench/results/NAME.json (default: <device>-<date and time to the second>)',
    '  --no-peer          skip tfjs-backend-webgpu',
    '  --wall             our device without timestamp-query: wall clock only (the fallback path)',
  ].join('\n');
}

function parseRaw(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        only: { type: 'string' },
        iters: { type: 'string' },
        name: { type: 'string' },
        'no-peer': { type: 'boolean' },
        wall: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    // Unknown options, missing values, positional arguments.
    throw new UsageError(`${(e as Error).message}\n${usage()}`);
  }
}

/** Parses the bench's arguments; prints the usage and exits on --help; throws UsageError. */
export function parseOptions(argv: string[]): Options {
  const values = parseRaw(argv);
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  const o: Options = { quick: !!values.quick, only: new Set(SECTIONS), peer: !values['no-peer'], wallOnly: !!values.wall };
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    for (const n of names) if (!(SECTIONS as readonly string[]).includes(n)) throw new UsageError(`--only: unknown section '${n}' (sections: ${SECTIONS.join(', ')})`);
    o.only = new Set(names as Section[]);
  }
  if (values.iters !== undefined) {
    const n = Number(values.iters);
    if (!Number.isInteger(n) || n < 1) throw new UsageError('--iters needs a positive integer');
    o.iters = n;
  }
  if (values.name !== undefined) {
    if (!/^[\w.-]+$/.test(values.name)) throw new UsageError('--name: letters, digits, ".", "_" and "-" only');
    o.name = values.name;
  }
  // The sections' environment variables, checked before any device work (one line, exit 2).
  const dev = process.env.STEP_PEER_DEVICE;
  if (dev !== undefined && dev !== 'cpu' && dev !== 'cuda') throw new UsageError(`STEP_PEER_DEVICE must be cpu or cuda, not '${dev}'`);
  for (const x of process.env.BENCH_MATMUL_SQUARES?.split(',') ?? []) {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1 || n > 8192) throw new UsageError(`BENCH_MATMUL_SQUARES: '${x}' is not a size from 1 to 8192`);
  }
  return o;
}
