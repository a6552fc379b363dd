// The autotune descriptions of the row layouts (softmax, layerNorm, sums; the classes and the
// fixed rules are in src/launch/row-layout.ts, which the launches import) and of transposing
// copies (classes in src/launch/layout.ts): the candidates, a trial that runs one on random
// data and checks it against float64, and autotuneSeenKernels, which times what the launches
// met, of the matmuls, the row layouts and the transposes.
import { autotuneSeen, autotuneSummary, cachePath, type AutotuneOptions, type Trial, type Tuner } from '../gpu/autotune.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Rng } from '../rng.ts';
import { Tensor } from '../tensor.ts';
import { layerNormForward } from './layernorm.ts';
import { permute, transposeClasses, type TransposeShape } from './layout.ts';
import { autotuneSeenMatmuls, matmulTuner } from './matmul.ts';
import { sumRows } from './reduce.ts';
import { rowLayoutClasses, type RowShape } from './row-layout.ts';
import { softmaxForward } from './softmax.ts';

/** Forces the layout `variant` in a gpu.tuning group (its `variant` field) while `f` runs. */
function withVariant<T>(group: { variant: string }, variant: string, f: () => T): T {
  const before = group.variant;
  group.variant = variant;
  try {
    return f();
  } finally {
    group.variant = before;
  }
}

/** Runs one layout on random rows (uniform in [0.5, 4]: see expected) and checks a sample of
 * 64 rows of its output against float64. */
class RowTrial implements Trial {
  private readonly hx: Float32Array;
  private readonly x: Tensor;
  private readonly params: Tensor[] = [];
  private readonly out = new Map<string, Tensor>();

  constructor(
    private readonly gpu: Gpu,
    private readonly s: RowShape,
  ) {
    const rng = new Rng(0x726f7773);
    this.hx = Float32Array.from({ length: s.rows * s.n }, () => rng.uniform(0.5, 4));
    this.x = new Tensor(gpu, [s.rows, s.n], 'f32', undefined, 'autotune x');
    gpu.upload(this.x.buffer, this.hx);
    if (s.op === 'layerNorm') {
      for (const v of [1, 0]) {
        const t = new Tensor(gpu, [s.n], 'f32', undefined, v ? 'autotune gamma' : 'autotune beta');
        gpu.upload(t.buffer, new Float32Array(s.n).fill(v));
        this.params.push(t);
      }
    }
  }

  run(variant: string): void {
    this.out.get(variant)?.dispose();
    const t = this.gpu.tuning;
    const y = withVariant(this.s.op === 'softmax' ? t.softmax : this.s.op === 'layerNorm' ? t.layerNorm : t.reduce, variant, () => {
      if (this.s.op === 'softmax') return softmaxForward(this.x, false);
      if (this.s.op === 'layerNorm') {
        const r = layerNormForward(this.x, this.params[0], this.params[1], 1e-5);
        r.stats.dispose();
        return r.y;
      }
      return sumRows(this.gpu, this.x, `autotune sum ${variant} [${this.s.rows}x${this.s.n}]`);
    });
    this.out.set(variant, y);
  }

  async check(variant: string): Promise<string | null> {
    const y = this.out.get(variant);
    if (!y) return 'never ran';
    const got = await y.floats();
    const { rows, n, op } = this.s;
    const rng = new Rng(0x63686b);
    for (let t = 0; t < Math.min(rows, 64); t++) {
      const r = rows <= 64 ? t : rng.int(0, rows - 1);
      const x = this.hx.subarray(r * n, (r + 1) * n);
      const at = (j: number) => (op === 'sum' ? r : r * n + j);
      for (const [j, exact, bound] of expected(op, x)) {
        const v = got[at(j)];
        if (!(Math.abs(v - exact) <= bound)) return `incorrect: ${op} row ${r} element ${j} = ${v}, float64 ${exact.toPrecision(8)} (bound ${bound.toExponential(2)})`;
      }
    }
    return null;
  }

  dispose(): void {
    for (const t of [this.x, ...this.params, ...this.out.values()]) t.dispose();
  }
}

const EPS32 = 2 ** -23;

/**
 * [index, float64 value, error bound] of one row's outputs, for rows of positive values (the
 * trial's are uniform in [0.5, 4], so a sum is as large as its terms' magnitudes and a lost
 * partial sum shows). k = 16 (sqrt(n) + 1) eps: about a hundred times the rounding error of a
 * sum of n such terms in f32 (round to nearest: a random walk of sqrt(n) ulps of the sum), and
 * far below a lost lane or a wrong element (1/64 of a row at n = 1M: 1.6e-2 against k = 2e-3).
 * A sum within k sum|x|; softmax within k of its value (the sum of exponentials, exp's own ulps
 * inside the +1); layerNorm within rstd (k mean|x| + 4 eps (|x| + |mean|)) + k |y| (the mean,
 * the subtraction, then rstd's relative error).
 */
function expected(op: RowShape['op'], x: Float32Array): [number, number, number][] {
  const n = x.length;
  const k = 16 * (Math.sqrt(n) + 1) * EPS32;
  let s = 0;
  let abs = 0;
  for (const v of x) {
    s += v;
    abs += Math.abs(v);
  }
  if (op === 'sum') return [[0, s, k * abs]];
  const out: [number, number, number][] = [];
  if (op === 'softmax') {
    let m = -Infinity;
    for (const v of x) m = Math.max(m, v);
    let z = 0;
    for (const v of x) z += Math.exp(v - m);
    x.forEach((v, j) => {
      const e = Math.exp(v - m) / z;
      out.push([j, e, k * e]);
    });
    return out;
  }
  const mean = s / n;
  let varSum = 0;
  for (const v of x) varSum += (v - mean) ** 2;
  const rstd = 1 / Math.sqrt(varSum / n + 1e-5);
  x.forEach((v, j) => {
    const e = (v - mean) * rstd;
    out.push([j, e, rstd * (k * (abs / n) + 4 * EPS32 * (Math.abs(v) + Math.abs(mean))) + k * Math.abs(e)]);
  });
  return out;
}

/**
 * The row layouts' autotune description (src/gpu/autotune.ts). Shape class: the op, the rows
 * and the row length rounded up to powers of two. Candidates: both layouts, everywhere.
 *
 *   await autotune(gpu, rowLayoutTuner, [{ op: 'softmax', rows: 4096, n: 1024 }]);
 */
export const rowLayoutTuner: Tuner<RowShape> = {
  ...rowLayoutClasses,
  candidates: () => ['row', 'workgroup'],
  trial: (gpu, s) => new RowTrial(gpu, s),
};

/** Runs one layout of a transposing gather ([batches, q, p] permuted to [batches, p, q]) and
 * checks 4096 sampled outputs for exact equality (a copy moves values). */
class TransposeTrial implements Trial {
  private readonly hx: Float32Array;
  private readonly x: Tensor;
  private readonly out = new Map<string, Tensor>();

  constructor(
    private readonly gpu: Gpu,
    private readonly s: TransposeShape,
  ) {
    const rng = new Rng(0x74727370);
    this.hx = Float32Array.from({ length: s.batches * s.q * s.p }, () => rng.uniform(-1, 1));
    this.x = new Tensor(gpu, [s.batches, s.q, s.p], 'f32', undefined, 'autotune x');
    gpu.upload(this.x.buffer, this.hx);
  }

  run(variant: string): void {
    this.out.get(variant)?.dispose();
    this.out.set(variant, withVariant(this.gpu.tuning.layout, variant, () => permute(this.x, [0, 2, 1])));
  }

  async check(variant: string): Promise<string | null> {
    const y = this.out.get(variant);
    if (!y) return 'never ran';
    const got = await y.floats();
    const { p, q } = this.s;
    const stride = Math.max(1, Math.floor(got.length / 4096));
    for (let i = 0; i < got.length; i += stride) {
      const b = Math.floor(i / (p * q));
      const a = Math.floor(i / q) % p;
      const c = i % q;
      const want = this.hx[(b * q + c) * p + a];
      if (got[i] !== want) return `incorrect: element ${i} = ${got[i]}, expected ${want}`;
    }
    return null;
  }

  dispose(): void {
    for (const t of [this.x, ...this.out.values()]) t.dispose();
  }
}

/** Transposing gathers' autotune description: runs of 64 per invocation, one element per
 * invocation, or 32x32 tiles. */
export const transposeTuner: Tuner<TransposeShape> = {
  ...transposeClasses,
  candidates: () => ['run', 'element', 'tiled'],
  trial: (gpu, s) => new TransposeTrial(gpu, s),
};

/**
 * Where autotuning is on, times the classes launches met without a choice, of the matmuls
 * (autotuneSeenMatmuls), the row layouts and the transposes, and returns one log line (null
 * where it is off).
 * Run after a first step has met the step's shapes: `ctvlm train` after its first step,
 * `ctvlm profile` after its warm-up, the bench's step section after its check.
 */
export async function autotuneSeenKernels(gpu: Gpu, opts: AutotuneOptions = {}): Promise<string | null> {
  const matmuls = await autotuneSeenMatmuls(gpu, opts);
  if (matmuls === null) return null;
  const rows = await autotuneSeen(gpu, rowLayoutTuner, opts);
  const transposes = await autotuneSeen(gpu, transposeTuner, opts);
  const file = await cachePath(gpu, opts.cacheDir);
  const parts = [matmuls.replace(/; each class's times and choice in .*$/, ''), autotuneSummary('row-layout', rows), autotuneSummary('transpose', transposes)];
  return `${parts.join('; ')}${file ? `; each class's times and choice in ${file}` : ''}`;
}

/** Every family that autotuning times, as `ctvlm tune` lists their cache records. */
export const kernelTuners: readonly Tuner<never>[] = [matmulTuner, rowLayoutTuner, transposeTuner] as readonly Tuner<never>[];
