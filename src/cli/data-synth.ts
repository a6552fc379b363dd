import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Progress } from './progress.ts';
import { LABELS } from '../data/labels.ts';

const usage = `usage: ctvlm data synth --out DIR [--n N] [--seed S] [--lang en|de] [size options]

Writes the built-in synthetic chest-CT benchmark: DIR/volumes/<id>.nii.gz (int16 HU, stored
RAS or LPS per case: readers must go through the affine), DIR/manifest.jsonl (report, 18
labels, slice metadata, reference ground truth, split) and DIR/synth.json (the settings).
Deterministic: the same seed and options give the same files.

options:
  --out DIR            output folder (required)
  --n N                number of cases (default 100)
  --seed S             dataset seed, an integer (default 0)
  --lang en|de         report language (default en)
  --test-fraction F    share of cases in the test split, by a hash of the case id (default 0.1)
  --val-fraction F     share in the validation split (default 0.1)
  --size A[-B]         in-plane matrix size range in pixels (default 160-192)
  --fov A[-B]          in-plane field of view range in mm (default 380-440)
  --slices A[-B]       number of slices range (default 60-110)
  --thickness A[-B]    slice thickness range in mm, 0.5 mm steps (default 2.5-5)
  --noise SD           noise standard deviation in HU (default 12)
  --prevalence P|P1,...,P18
                       probability of each finding: one number for all 18, or 18 in the
                       order of \`ctvlm classify\` (default: 0.14-0.40 per finding, chest-CT-like)
  --lps-rate P         share of volumes stored LPS-oriented, 0-1 (default 0.5)
  --gzip-level L       gzip level 0-9 of the volumes (default 1)
  --workers N          worker threads (default: the cores, at most 4; 1 = this thread);
                       the files are the same whatever N
  --replace            write over a dataset already in DIR (its manifest, settings and
                       volumes/ are deleted first); without it such a DIR is refused
  --quiet              no progress output`;

function range(v: string | undefined, name: string, int: boolean): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*([0-9.]+)\s*(?:-\s*([0-9.]+))?\s*$/.exec(v);
  if (!m) throw new UsageError(`--${name}: expected a number or a range A-B, got '${v}'`);
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a;
  if (!Number.isFinite(a) || !Number.isFinite(b) || a <= 0 || b < a || (int && (!Number.isInteger(a) || !Number.isInteger(b))))
    throw new UsageError(`--${name}: bad range '${v}'`);
  return [a, b];
}

export const command: Command = {
  name: 'data synth',
  summary: 'write the synthetic chest-CT benchmark (volumes, reports, labels)',
  usage,
  async run(argv) {
    const a = parseCliArgs({
      args: argv,
      options: {
        out: { type: 'string' },
        n: { type: 'string' },
        seed: { type: 'string' },
        lang: { type: 'string' },
        size: { type: 'string' },
        fov: { type: 'string' },
        slices: { type: 'string' },
        thickness: { type: 'string' },
        noise: { type: 'string' },
        prevalence: { type: 'string' },
        'lps-rate': { type: 'string' },
        'gzip-level': { type: 'string' },
        workers: { type: 'string' },
        'test-fraction': { type: 'string' },
        'val-fraction': { type: 'string' },
        quiet: { type: 'boolean' },
        replace: { type: 'boolean' },
      },
      allowPositionals: false,
    }).values;
    if (!a.out) throw new UsageError('--out DIR is required');
    const n = a.n === undefined ? 100 : Number(a.n);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--n: expected a positive integer, got '${a.n}'`);
    const seed = a.seed === undefined ? 0 : Number(a.seed);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`--seed: expected an integer 0..4294967295, got '${a.seed}'`);
    const lang = a.lang ?? 'en';
    if (lang !== 'en' && lang !== 'de') throw new UsageError(`--lang: expected en or de, got '${lang}'`);
    const noise = a.noise === undefined ? undefined : Number(a.noise);
    if (noise !== undefined && !(noise >= 0)) throw new UsageError(`--noise: expected a number >= 0, got '${a.noise}'`);
    const lpsRate = a['lps-rate'] === undefined ? undefined : Number(a['lps-rate']);
    if (lpsRate !== undefined && !(lpsRate >= 0 && lpsRate <= 1)) throw new UsageError(`--lps-rate: expected a number 0-1, got '${a['lps-rate']}'`);
    const gzipLevel = a['gzip-level'] === undefined ? 1 : Number(a['gzip-level']);
    if (!Number.isInteger(gzipLevel) || gzipLevel < 0 || gzipLevel > 9) throw new UsageError(`--gzip-level: expected 0-9, got '${a['gzip-level']}'`);
    let prevalence: number | number[] | undefined;
    if (a.prevalence !== undefined) {
      const items = a.prevalence.split(',').map((x) => x.trim());
      const ps = items.map(Number);
      if (!(ps.length === 1 || ps.length === LABELS.length) || items.some((x) => x === '') || !ps.every((x) => x >= 0 && x <= 1))
        throw new UsageError(`--prevalence: expected one number 0-1 or ${LABELS.length} comma-separated, got '${a.prevalence}'`);
      prevalence = ps.length === 1 ? ps[0] : ps;
    }
    const workers = a.workers === undefined ? undefined : Number(a.workers);
    if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1 && workers <= 64)) throw new UsageError(`--workers: expected an integer 1-64, got '${a.workers}'`);
    const fraction = (v: string | undefined, name: string, d: number) => {
      if (v === undefined) return d;
      const f = Number(v);
      if (!(f >= 0 && f <= 1)) throw new UsageError(`--${name}: expected a number 0-1, got '${v}'`);
      return f;
    };
    const splits = { test: fraction(a['test-fraction'], 'test-fraction', 0.1), val: fraction(a['val-fraction'], 'val-fraction', 0.1) };
    if (splits.test + splits.val > 1) throw new UsageError('--test-fraction and --val-fraction add up to more than 1');
    const size = range(a.size, 'size', true);
    const slices = range(a.slices, 'slices', true);

    // Writing over a dataset would leave the old one's extra volumes beside the new manifest,
    // and lose the old one without a word.
    const { existsSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const manifest = join(a.out, 'manifest.jsonl');
    if (existsSync(manifest)) {
      const have = readFileSync(manifest, 'utf8').split('\n').filter((l) => l.trim()).length;
      if (!a.replace) throw new UsageError(`${a.out} already holds a dataset (manifest.jsonl, ${have} cases): give another --out, or --replace to write over it`);
      const { rm } = await import('node:fs/promises');
      for (const f of ['manifest.jsonl', 'synth.json', 'volumes']) await rm(join(a.out, f), { recursive: true, force: true });
      if (!a.quiet) console.log(`replacing the dataset in ${a.out} (${have} cases)`);
    }
    const { writeSyntheticDataset } = await import('../data/synthetic/node.ts');
    const bar = new Progress(n, 'synth', { quiet: a.quiet });
    const res = await writeSyntheticDataset({
      out: a.out,
      n,
      splits,
      seed,
      lang,
      size,
      fov: range(a.fov, 'fov', false),
      slices,
      thickness: range(a.thickness, 'thickness', false),
      noise,
      prevalence,
      lpsRate,
      gzipLevel,
      workers,
      onProgress: (done, _total, id) => bar.update(done, id),
    });
    const refs = res.entries.reduce((s, e) => s + (e.references?.length ?? 0), 0);
    bar.finish(`${(res.bytes / 1e6).toFixed(1)} MB in ${res.seconds.toFixed(1)} s`);
    if (!a.quiet) console.log(`wrote ${res.entries.length} cases (${refs} image references) to ${res.manifestPath}`);
  },
};
