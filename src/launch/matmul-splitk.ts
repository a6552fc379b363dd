// Split-K: a matmul whose output is too small to fill a GPU, computed as S partial products over
// slices of K and their sum. The case it is for: a linear layer's weight gradient, dW = X^T dY,
// a few hundred by a few hundred outputs over K = the batch's tokens (thousands), which ran at
// 0.26 TFLOP/s on an H200 against 3.9 for the forward products (README, "On an NVIDIA H200"):
// a few dozen workgroups on 132 multiprocessors. Slice s is batch entry s of one launch of the
// chosen kernel (its operands start s * K/S further along K: the batch strides), into a scratch
// [S, M, N] that the reduce kernel sums over S, adding a residual in the same store (the
// 'accumulate' epilogue). The sum's order differs from one pass over K: the result is the
// product's to the same error bound, not bit for bit.
//
// It runs where it applies (one batch entry, no bias, no epilogue but a plain residual, a divisor
// of K near S with slices of at least MIN_SLICE); elsewhere the unsplit launch runs, since an
// autotuned choice holds for a shape class, which does not tell bias and epilogues apart.
import type { Gpu } from '../gpu/runtime.ts';
import { MATMUL_DEFAULT_TILE, type MatmulBuffers, type MatmulChoice, type MatmulShape } from './matmul-geometry.ts';
import { sumSlices } from './reduce.ts';

/** Shortest K-slice worth a partial product. */
export const MIN_SLICE = 16;

/**
 * The slices a split of K into about `want` parts uses: the divisor d of K nearest `want` (in
 * ratio; the larger on a tie) with K / d >= MIN_SLICE and 2 <= d <= 2 * want; 1 (no split)
 * where K has none or `want` is below 2.
 */
export function splitKSlices(K: number, want: number): number {
  if (want < 2) return 1;
  let best = 1;
  let bestDist = Infinity;
  for (let d = 2; d <= 2 * want && K / d >= MIN_SLICE; d++) {
    if (K % d) continue;
    const dist = Math.abs(Math.log(d / want));
    if (dist <= bestDist) [best, bestDist] = [d, dist];
  }
  return best;
}

/**
 * Encodes op(A) @ op(B) (+ a residual) of `s` as a split-K product when it applies (see the head
 * of this file) and returns true; returns false, encoding nothing, where the unsplit launch
 * must run. `launch` encodes one unsplit matmul (src/launch/matmul.ts launchMatmul).
 */
export function launchSplitK(
  gpu: Gpu,
  choice: MatmulChoice,
  s: MatmulShape,
  buf: MatmulBuffers,
  label: string,
  plainResidual: boolean | null,
  launch: (c: MatmulChoice, s: MatmulShape, buf: MatmulBuffers, label: string) => void,
): boolean {
  const { M, N, K, transA, transB } = s;
  if (s.batch !== 1 || buf.bias || plainResidual === false) return false;
  const S = splitKSlices(K, choice.splitK ?? 1);
  if (S < 2) return false;
  const Ks = K / S;
  const lda = s.lda ?? (transA ? M : K);
  const ldb = s.ldb ?? (transB ? K : N);
  const partials = gpu.acquire(S * M * N * 4, `${label} split-K partials`);
  launch(
    { ...choice, splitK: undefined },
    { M, N, K: Ks, batch: S, transA, transB, lda, ldb },
    { a: buf.a, b: buf.b, bias: null, c: partials, aBatch: Ks * (transA ? lda : 1), bBatch: Ks * (transB ? 1 : ldb) },
    `${label} split-K ${S}x${Ks}`,
  );
  sumSlices(gpu, partials, buf.c, S, M * N, `sum [${S}x${M}x${N}] split-K partials of ${label}`, plainResidual ? buf.e! : null);
  gpu.release(partials);
  return true;
}

/**
 * The split-K choices autotune times for a shape (src/launch/matmul.ts matmulTuner): the
 * workgroup-tiled kernel at its default tile split about 4, 16 and 64 ways, where the output is
 * fewer than 512 of its 64 x 64 tiles (a GPU with ~100 multiprocessors wants several
 * workgroups on each) and K is at least 1024; none elsewhere.
 */
export function splitKCandidates(s: MatmulShape): MatmulChoice[] {
  const tiles = Math.ceil(s.M / 64) * Math.ceil(s.N / 64);
  if (s.batch !== 1 || tiles >= 512 || s.K < 1024) return [];
  return [4, 16, 64].filter((want) => splitKSlices(s.K, want) > 1).map((splitK) => ({ kind: 'tiled-wg', tile: MATMUL_DEFAULT_TILE, splitK }));
}
