// Autotuning: which variant of a kernel family is fastest on this device, per shape class.
//
// A kernel family describes itself by a Tuner (src/launch/matmul.ts has matmulTuner): how a
// shape maps to a class (sizes rounded to powers of two, transposes, alignment), which
// variants may run, and a trial that launches one variant on random inputs and checks its
// result against float64. autotune() runs every candidate of a class once for correctness,
// times the correct ones in alternating rounds (timestamp queries when the device has them,
// else wall clock around a sync), and records the times. A launch then asks choice() for the
// fastest recorded variant: a map lookup, no GPU work.
//
// Measuring is explicit (`await autotune(gpu, tuner, shapes)`, or `await autotuneSeen(gpu,
// tuner)` after a first training step for every class the launches met without a choice):
// timing needs the queue drained, which a launch, being synchronous and batched, cannot do.
// Until a class is measured its launches keep the family's fixed default.
//
// The times persist per adapter: in Node in a JSON file under $XDG_CACHE_HOME (or
// ~/.cache)/ct-vlm-webgpu/autotune-<adapter hash>.json, written atomically (a temporary file
// renamed over it, merged with what another process may have written meanwhile); in a
// browser in memory for the page's life. A family's records are dropped when its version
// (a hash of its kernel source) changes; a file that cannot be read or parsed is ignored,
// with one message, and replaced at the next write.
import { hashString } from '../rng.ts';
import type { Gpu } from './runtime.ts';

/** One prepared measurement: inputs for a shape, on the device. */
export interface Trial {
  /** Encodes one launch of `variant` on the trial's inputs (no wait). */
  run(variant: string): void;
  /** null when the output of the last run of `variant` matches float64 within the variant's
   * error bound; else why not, in one line. */
  check(variant: string): Promise<string | null>;
  /** Frees the trial's tensors. */
  dispose(): void;
}

/** A kernel family's description for autotuning (S: its shape type, plain JSON data). */
export interface Tuner<S> {
  /** The family's name: the key in the cache file ('matmul'). */
  readonly family: string;
  /** Changes whenever the family's kernels change; records of another version are dropped. */
  readonly version: string;
  /** The shape class of a shape: shapes of one class share a choice. */
  classOf(shape: S): string;
  /** The variants worth measuring for this shape on this device (named as launches take them). */
  candidates(gpu: Gpu, shape: S): string[];
  /** Whether a measured variant may be chosen now (e.g. reduced precision allowed, device able). */
  usable(gpu: Gpu, variant: string): boolean;
  trial(gpu: Gpu, shape: S): Trial;
}

export interface AutotuneOptions {
  /** Node: the cache folder (default $XDG_CACHE_HOME/ct-vlm-webgpu or ~/.cache/ct-vlm-webgpu);
   * null: keep the times in memory only. Ignored in browsers (always in memory). */
  cacheDir?: string | null;
  /** Timing rounds; the median is kept (default 5 with timestamp queries, 3 with wall clock). */
  rounds?: number;
  /** Receives warnings (an unreadable cache file, a failed write); default console.warn. */
  log?: (message: string) => void;
}

/** The cache file's format. 2: times from unquantized timestamps (format 1 files were written
 * while Dawn rounded every timestamp to 65.536 us, so most of their times read 0 or 0.0655 ms
 * and ties went to the first candidate; they are ignored, with one message, and rewritten). */
const CACHE_FORMAT = 2;

/** What autotune() found for one shape class. */
export interface ClassResult {
  /** The class key (Tuner.classOf). */
  key: string;
  /** The fastest usable correct variant, null when none is. */
  choice: string | null;
  /** Milliseconds per launch of each correct variant (median), or why a variant was excluded. */
  times: Record<string, number | string>;
  /** Whether anything was measured now (false: every candidate came from the cache). */
  measured: boolean;
  /** The clock used: 'timestamp' (queries), 'wall' or 'cache'. */
  clock: 'timestamp' | 'wall' | 'cache';
}

/**
 * One line for a log: how many classes, how many timed now, and how often each variant won,
 * e.g. '122 matmul shape classes (122 timed now, 0 from the cache): tiled-wg 80, tiled 30,
 * subgroup 12'. The variant is the choice up to its first space (tile sizes left out).
 */
export function autotuneSummary(what: string, classes: readonly ClassResult[]): string {
  const wins = new Map<string, number>();
  for (const c of classes) {
    const v = c.choice === null ? 'default' : c.choice.split(' ')[0];
    wins.set(v, (wins.get(v) ?? 0) + 1);
  }
  const measured = classes.filter((c) => c.measured).length;
  const counts = [...wins].sort((a, b) => b[1] - a[1]).map(([v, n]) => `${v} ${n}`).join(', ');
  return `${classes.length} ${what} shape classes (${measured} timed now, ${classes.length - measured} from the cache)${counts ? `: ${counts}` : ''}`;
}

interface ClassRecord {
  shape: unknown;
  times: Record<string, number | string>;
  clock: string;
  at: string;
}
interface FamilyRecord {
  version: string;
  classes: Record<string, ClassRecord>;
}
interface CacheFile {
  format: typeof CACHE_FORMAT;
  adapter: string;
  families: Record<string, FamilyRecord>;
}

interface State {
  families: Map<string, FamilyRecord>;
  /** Classes launched without a choice: key -> a shape of that class. */
  seen: Map<string, Map<string, unknown>>;
  /** Cache files already read into `families`. */
  loaded: Set<string>;
}

const states = new WeakMap<Gpu, State>();
function state(gpu: Gpu): State {
  let s = states.get(gpu);
  if (!s) states.set(gpu, (s = { families: new Map(), seen: new Map(), loaded: new Set() }));
  return s;
}

/** Whether 'auto' variants follow autotuned choices on this device: gpu.tuning.autotune, or by
 * default on GPUs and off on CPU adapters (lavapipe, SwiftShader), where the fixed defaults
 * are the measured best and a choice that varies with timing noise would make runs differ. */
export function autotuneEnabled(gpu: Gpu): boolean {
  return gpu.tuning.autotune ?? !gpu.isLavapipe;
}

/**
 * The fastest recorded usable variant for a shape class, or null when the class has not been
 * measured (or has no usable correct variant). Synchronous; cheap enough for every launch.
 */
export function choice<S>(gpu: Gpu, tuner: Pick<Tuner<S>, 'family' | 'version' | 'usable'>, key: string): string | null {
  const fam = state(gpu).families.get(tuner.family);
  const rec = fam && fam.version === tuner.version ? fam.classes[key] : undefined;
  if (!rec) return null;
  return fastest(gpu, tuner, rec.times);
}

function fastest<S>(gpu: Gpu, tuner: Pick<Tuner<S>, 'usable'>, times: Record<string, number | string>): string | null {
  let best: string | null = null;
  let bestMs = Infinity;
  for (const [v, ms] of Object.entries(times))
    if (typeof ms === 'number' && ms < bestMs && tuner.usable(gpu, v)) {
      best = v;
      bestMs = ms;
    }
  return best;
}

/** Notes that a launch met a class with no choice, so that autotuneSeen() measures it. */
export function noteSeen<S>(gpu: Gpu, tuner: Pick<Tuner<S>, 'family'>, key: string, shape: S): void {
  const seen = state(gpu).seen;
  let m = seen.get(tuner.family);
  if (!m) seen.set(tuner.family, (m = new Map()));
  if (!m.has(key)) m.set(key, shape);
}

/** Measures every class that launches met without a choice (see noteSeen); see autotune(). */
export async function autotuneSeen<S>(gpu: Gpu, tuner: Tuner<S>, opts: AutotuneOptions = {}): Promise<ClassResult[]> {
  const m = state(gpu).seen.get(tuner.family);
  const shapes = m ? ([...m.values()] as S[]) : [];
  m?.clear();
  return autotune(gpu, tuner, shapes, opts);
}

/**
 * Measures the candidates of each shape's class that have no record yet (on this adapter,
 * in memory or in the cache file), keeps the times, and returns per class the choice and the
 * times. One class is measured at the first shape given of it. It measures even where
 * autotuning is off; launches follow the choices only where it is on (autotuneEnabled).
 * Submits and waits: call it outside a training step's batch, and not while
 * gpu.startProfile() is recording.
 * @throws GpuError when the device is lost or destroyed meanwhile (a variant that fails to
 * compile or run is only excluded, with the reason in its times entry).
 */
export async function autotune<S>(gpu: Gpu, tuner: Tuner<S>, shapes: readonly S[], opts: AutotuneOptions = {}): Promise<ClassResult[]> {
  const log = opts.log ?? ((m: string) => console.warn(m));
  const path = await cachePath(gpu, opts.cacheDir);
  const st = state(gpu);
  if (path && !st.loaded.has(path)) {
    st.loaded.add(path);
    const file = await readCache(path, log);
    // Records already in memory (measured in this process) win over the file's.
    if (file) for (const [name, fam] of Object.entries(file.families)) if (!st.families.has(name)) st.families.set(name, fam);
  }
  let fam = st.families.get(tuner.family);
  if (!fam || fam.version !== tuner.version) st.families.set(tuner.family, (fam = { version: tuner.version, classes: {} }));

  const results: ClassResult[] = [];
  const done = new Set<string>();
  let changed = false;
  for (const shape of shapes) {
    const key = tuner.classOf(shape);
    if (done.has(key)) continue;
    done.add(key);
    const rec = fam.classes[key];
    const missing = tuner.candidates(gpu, shape).filter((v) => !rec || !(v in rec.times));
    if (missing.length === 0) {
      results.push({ key, choice: fastest(gpu, tuner, rec.times), times: { ...rec.times }, measured: false, clock: 'cache' });
      continue;
    }
    const { times, clock } = await measure(gpu, tuner, shape, missing, opts.rounds);
    const merged = { ...(rec?.times ?? {}), ...times };
    fam.classes[key] = { shape, times: merged, clock, at: new Date().toISOString() };
    changed = true;
    results.push({ key, choice: fastest(gpu, tuner, merged), times: { ...merged }, measured: true, clock });
  }
  if (changed && path) await writeCache(path, gpu, tuner.family, fam, log);
  return results;
}

async function measure<S>(gpu: Gpu, tuner: Tuner<S>, shape: S, variants: string[], rounds?: number): Promise<{ times: Record<string, number | string>; clock: 'timestamp' | 'wall' }> {
  const times: Record<string, number | string> = {};
  const clock = gpu.canProfile ? 'timestamp' : 'wall';
  const trial = tuner.trial(gpu, shape);
  try {
    // Correctness first: the first run also compiles the pipeline, which timing must not see.
    const ok: string[] = [];
    for (const v of variants) {
      let why: string | null;
      try {
        trial.run(v);
        why = await trial.check(v);
      } catch (e) {
        // A lost device is no variant's fault: nothing of this class is recorded.
        if (gpu.isDestroyed || /GPU device was (lost|destroyed)/.test((e as Error).message)) throw e;
        why = `failed: ${firstLine((e as Error).message)}`;
      }
      if (why) times[v] = why;
      else ok.push(v);
    }
    if (ok.length === 0) return { times, clock };
    // Launches per sample: one with timestamps (they time the dispatch alone); with the wall
    // clock enough to make a sample about 10 ms, so the submit and sync overhead is small.
    const inner = new Map<string, number>();
    for (const v of ok) {
      if (clock === 'timestamp') inner.set(v, 1);
      else {
        const est = await sample(gpu, trial, v, 1, clock);
        inner.set(v, Math.max(1, Math.min(32, Math.ceil(10 / Math.max(est, 0.01)))));
      }
    }
    // Alternating rounds, so that a change of load on a shared machine hits every variant.
    const samples = new Map<string, number[]>(ok.map((v) => [v, []]));
    const n = rounds ?? (clock === 'timestamp' ? 5 : 3);
    for (let r = 0; r < n; r++) for (const v of ok) samples.get(v)!.push(await sample(gpu, trial, v, inner.get(v)!, clock));
    for (const v of ok) times[v] = median(samples.get(v)!);
  } finally {
    trial.dispose();
  }
  return { times, clock };
}

/** Milliseconds per launch over `count` launches. */
async function sample(gpu: Gpu, trial: Trial, v: string, count: number, clock: 'timestamp' | 'wall'): Promise<number> {
  if (clock === 'timestamp') {
    gpu.startProfile();
    for (let i = 0; i < count; i++) trial.run(v);
    const recs = await gpu.endProfile();
    return recs.reduce((s, r) => s + r.ms, 0) / count;
  }
  await gpu.sync();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) trial.run(v);
  await gpu.sync();
  return (performance.now() - t0) / count;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const firstLine = (s: string) => s.split('\n')[0].slice(0, 300);

// ---------------------------------------------------------------- the cache file

const isNode = () => typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';

/** The adapter's identity for the cache: vendor, architecture, description, device,
 * features and subgroup sizes (two machines with the same GPU and driver share choices). */
export function adapterKey(gpu: Gpu): string {
  const i = gpu.adapterInfo;
  return [i.vendor, i.architecture, i.description, i.device, [...gpu.features].sort().join('+'), `sg${gpu.subgroupMinSize}-${gpu.subgroupMaxSize}`].join('|');
}

/** A short stable name for a text (FNV-1a, 8 hex digits; not a security hash). */
export const hash32 = (text: string): string => hashString(text).toString(16).padStart(8, '0');

/** The cache file of this adapter (Node), or null (browser, or cacheDir null). */
export async function cachePath(gpu: Gpu, cacheDir?: string | null): Promise<string | null> {
  if (cacheDir === null || !isNode()) return null;
  const { join } = await import('node:path');
  let dir = cacheDir;
  if (dir === undefined) {
    const { homedir } = await import('node:os');
    dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ct-vlm-webgpu');
  }
  return join(dir, `autotune-${hash32(adapterKey(gpu))}.json`);
}

async function readCache(path: string, log: (m: string) => void): Promise<CacheFile | null> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log(`autotune: ignoring the cache file ${path}: ${firstLine((e as Error).message)}`);
    return null;
  }
  const why = (reason: string) => {
    log(`autotune: ignoring the cache file ${path}: ${reason}; it will be rewritten`);
    return null;
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return why(`not JSON (${firstLine((e as Error).message)})`);
  }
  const f = data as Partial<CacheFile>;
  if (!f || typeof f !== 'object' || f.format !== CACHE_FORMAT || !f.families || typeof f.families !== 'object') return why(`not an autotune cache of format ${CACHE_FORMAT}`);
  for (const [name, fam] of Object.entries(f.families)) {
    if (!fam || typeof fam.version !== 'string' || !fam.classes || typeof fam.classes !== 'object') return why(`family '${name}' is malformed`);
    for (const [key, rec] of Object.entries(fam.classes)) {
      const ok = rec && typeof rec === 'object' && rec.times && typeof rec.times === 'object' &&
        Object.values(rec.times).every((t) => (typeof t === 'number' && t >= 0 && Number.isFinite(t)) || typeof t === 'string');
      if (!ok) return why(`class '${key}' of '${name}' is malformed`);
    }
  }
  return f as CacheFile;
}

async function writeCache(path: string, gpu: Gpu, family: string, fam: FamilyRecord, log: (m: string) => void): Promise<void> {
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  // Another process may have written other families or classes since this one read the file.
  const current = (await readCache(path, () => {})) ?? { format: CACHE_FORMAT, adapter: adapterKey(gpu), families: {} };
  const prev = current.families[family];
  current.families[family] = prev && prev.version === fam.version ? { version: fam.version, classes: { ...prev.classes, ...fam.classes } } : fam;
  current.adapter = adapterKey(gpu);
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, JSON.stringify(current, null, 1) + '\n');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    log(`autotune: could not write the cache file ${path}: ${firstLine((e as Error).message)} (the choices stay in memory)`);
  }
}

/** One family of a cache file as `ctvlm tune` shows it (readAutotuneCache). */
export interface CachedFamily {
  family: string;
  /** Whether its records were made with this build's kernels (else launches ignore them and
   * the next autotuning measures again); null for a family this build has no tuner for. */
  current: boolean | null;
  classes: {
    key: string;
    shape: unknown;
    /** ms per launch of each correct variant, or why a variant was excluded. */
    times: Record<string, number | string>;
    clock: string;
    /** When it was measured (ISO 8601). */
    at: string;
    /** What 'auto' launches take for the class: the fastest usable correct variant (null when
     * none is, or the family is not current). */
    choice: string | null;
    /** Measured variants this device or its tuning does not allow now (f16 not allowed, a tile too large). */
    unusable: string[];
  }[];
}

/**
 * This adapter's cache file as written (Node): its path (null in a browser or with cacheDir
 * null), the adapter it was written for, and per family its classes with their times and
 * choices, judged by `tuners` (stale versions marked). `problem` is the one line that says why
 * an existing file is ignored (then `families` is empty); a missing file is no problem.
 */
export async function readAutotuneCache(
  gpu: Gpu,
  tuners: readonly Pick<Tuner<unknown>, 'family' | 'version' | 'usable'>[],
  cacheDir?: string | null,
): Promise<{ path: string | null; exists: boolean; adapter: string | null; families: CachedFamily[]; problem: string | null }> {
  const path = await cachePath(gpu, cacheDir);
  if (!path) return { path, exists: false, adapter: null, families: [], problem: null };
  const { existsSync } = await import('node:fs');
  let problem: string | null = null;
  const file = await readCache(path, (m) => (problem = m.replace(/^autotune: /, '')));
  const families: CachedFamily[] = [];
  for (const [family, fam] of Object.entries(file?.families ?? {})) {
    const tuner = tuners.find((t) => t.family === family);
    const current = tuner ? fam.version === tuner.version : null;
    families.push({
      family,
      current,
      classes: Object.entries(fam.classes).map(([key, rec]) => ({
        key,
        shape: rec.shape,
        times: rec.times,
        clock: String(rec.clock ?? ''),
        at: String(rec.at ?? ''),
        choice: tuner && current ? fastest(gpu, tuner, rec.times) : null,
        unusable: tuner ? Object.keys(rec.times).filter((v) => !tuner.usable(gpu, v)) : [],
      })),
    });
  }
  return { path, exists: existsSync(path), adapter: file?.adapter ?? null, families, problem };
}

/** Deletes this adapter's cache file (Node) and forgets its times in memory; returns the path
 * deleted, or null when there was none. */
export async function clearAutotuneCache(gpu: Gpu, cacheDir?: string | null): Promise<string | null> {
  const path = await cachePath(gpu, cacheDir);
  forgetAutotune(gpu);
  if (!path) return null;
  const { rm } = await import('node:fs/promises');
  const { existsSync } = await import('node:fs');
  if (!existsSync(path)) return null;
  await rm(path);
  return path;
}

/** Forgets this device's measured times in memory (tests; the cache file is untouched). */
export function forgetAutotune(gpu: Gpu): void {
  states.delete(gpu);
}
