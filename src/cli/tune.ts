import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { autotuneEnabled, clearAutotuneCache, readAutotuneCache, type CachedFamily } from '../gpu/autotune.ts';
import { kernelTuners } from '../launch/layout-tuners.ts';

const usage = `usage: ctvlm tune [--family NAME] [--json] [--clear] [--cache-dir DIR]

Shows what autotuning has measured on this adapter: its cache file, whether 'auto' variants
follow it here, and for each kernel family (${kernelTuners.map((t) => t.family).join(', ')}) each shape class's choice
(the fastest usable variant that passed its float64 check), its time per launch, the
runners-up, variants this adapter or its tuning does not allow now (f16 not allowed), and the
variants excluded (a failed float64 check, a compile or run error), with why. Records made with other kernels (another build of this
package) are marked stale: launches ignore them and the next autotuning measures again.
The file fills when \`ctvlm train\` (after its first step) or \`ctvlm profile\` (after its
warm-up) runs where autotuning is on: on GPUs by default, on CPU adapters with
--tuning autotune=true.

options:
  --family NAME    only this family
  --json           every class with all its times and its choice, as JSON
  --clear          delete this adapter's cache file, every family (the next run measures again)
  --cache-dir DIR  the cache folder (default $XDG_CACHE_HOME/ct-vlm-webgpu, or
                   ~/.cache/ct-vlm-webgpu)`;

export const command: Command = {
  name: 'tune',
  summary: 'show (or clear) the autotuned kernel choices of this adapter and their times',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({
      args: argv,
      options: { family: { type: 'string' }, json: { type: 'boolean' }, clear: { type: 'boolean' }, 'cache-dir': { type: 'string' } },
    });
    const names = kernelTuners.map((t) => t.family);
    if (a.family !== undefined && !names.includes(a.family)) throw new UsageError(`--family: '${a.family}' is not a tuned family (${names.join(', ')})`);
    if (a.clear && a.family !== undefined) throw new UsageError('--clear deletes the whole file (every family); leave out --family');
    const gpu = await Gpu.create();
    try {
      if (a.clear) {
        const gone = await clearAutotuneCache(gpu, a['cache-dir']);
        console.log(gone ? `deleted ${gone}` : 'no autotune cache for this adapter: nothing to delete');
        return 0;
      }
      const cache = await readAutotuneCache(gpu, kernelTuners, a['cache-dir']);
      const families = cache.families.filter((f) => a.family === undefined || f.family === a.family);
      if (a.json) {
        console.log(JSON.stringify({ path: cache.path, adapter: cache.adapter, problem: cache.problem, families }, null, 1));
        return 0;
      }
      console.log(`device: ${gpu.describe()}`);
      const follows = autotuneEnabled(gpu)
        ? "'auto' variants follow these choices on this adapter"
        : "'auto' variants keep their fixed choices on this adapter (a CPU adapter; --tuning autotune=true makes them follow the choices)";
      if (!cache.exists) {
        console.log(`no autotune cache for this adapter yet (${cache.path}); ${follows}`);
        return 0;
      }
      console.log(`autotune cache: ${cache.path}; ${follows}`);
      if (cache.problem) {
        console.log(`  ${cache.problem}`);
        return 0;
      }
      if (families.length === 0) console.log(a.family ? `  no records of ${a.family}` : '  no records');
      for (const f of families) for (const line of familyLines(f)) console.log(line);
      return 0;
    } finally {
      gpu.destroy();
    }
  },
};

/** A family's header (classes, whose kernels, wins per variant) and one line per class. */
function familyLines(f: CachedFamily): string[] {
  const state = f.current === null ? 'a family this build does not tune' : f.current ? "this build's kernels" : 'stale: made with other kernels, ignored and measured again';
  const wins = new Map<string, number>();
  // Counted by variant kind (tile sizes left out), as the training log's autotune line counts.
  for (const c of f.classes) if (c.choice) wins.set(c.choice.split(' ')[0], (wins.get(c.choice.split(' ')[0]) ?? 0) + 1);
  const counts = [...wins].sort((x, y) => y[1] - x[1]).map(([v, n]) => `${v} ${n}`).join(', ');
  const out = [`${f.family}: ${f.classes.length} shape class${f.classes.length === 1 ? '' : 'es'}, ${state}${counts ? `; chosen: ${counts}` : ''}`];
  const width = Math.max(0, ...f.classes.map((c) => c.key.length));
  for (const c of [...f.classes].sort((x, y) => x.key.localeCompare(y.key, 'en', { numeric: true }))) {
    const timed = Object.entries(c.times).filter((e): e is [string, number] => typeof e[1] === 'number').sort((x, y) => x[1] - y[1]);
    const excluded = Object.entries(c.times).filter((e): e is [string, string] => typeof e[1] === 'string');
    const pick = c.choice === null ? (f.current ? 'none usable' : '-') : `${c.choice} ${ms(c.times[c.choice] as number)}`;
    const others = timed.filter(([v]) => v !== c.choice && !c.unusable.includes(v));
    const next = others.slice(0, 2).map(([v, t]) => `${v} ${ms(t)}`).join(', ');
    const more = others.length > 2 ? ` (+${others.length - 2} more)` : '';
    const barred = c.unusable.length ? `; not usable here: ${c.unusable.join(', ')}` : '';
    const ex = excluded.length ? `; excluded ${excluded.length}: ${excluded[0][0]} (${excluded[0][1]})${excluded.length > 1 ? ', ...' : ''}` : '';
    out.push(`  ${c.key.padEnd(width)}  ${pick}${next ? `; next ${next}${more}` : ''}${barred}${ex}`);
  }
  return out;
}

const ms = (t: number) => `${t < 0.1 ? t.toFixed(4) : t.toFixed(3)} ms`;
