// Launches of kernels/patchhist.wgsl (no autograd): the soft intensity histogram of each 3D
// patch, rows in the patch embedding's order (kernels/patch3d.wgsl), optionally window by window.
import source from '../../kernels/patchhist.wgsl';
import patchRows from '../../kernels/lib/patchrows.wgsl';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';
import { windowGrid } from './patch3d.ts';

export const patchHistKernel = defineKernel({
  file: 'patchhist.wgsl',
  source,
  includes: [{ file: 'lib/patchrows.wgsl', source: patchRows }],
  params: {
    M: 'u32', K: 'u32', C: 'u32', X: 'u32', Y: 'u32', Z: 'u32', //  rows (patches, all windows), bins, channels (1), volume
    p0: 'u32', p1: 'u32', p2: 'u32', T: 'u32', //         patch; tokens per window
    nW: 'u32', nD: 'u32', nWin: 'u32', Wg: 'u32', //      tokens per window along y, z; windows per volume, along y
    Dg: 'u32', w0: 'u32', w1: 'u32', w2: 'u32', //        windows along z; window size
  },
  buffers: { x: read(), Cn: read(), Out: write() },
  entries: { patch_hist: ['x', 'Cn', 'Out'] },
});

/** Bins a histogram row may have (the kernel keeps one register per bin). */
export const MAX_HIST_BINS = 32;

/**
 * Checks histogram centres on the host: K of them (2 to MAX_HIST_BINS), finite, strictly
 * ascending; returns them as f32. Throws ShapeError (count) or ValueError (values) prefixed by `what`.
 */
export function checkCentres(what: string, c: ArrayLike<number>, K: number): Float32Array {
  if (c.length !== K || K < 2 || K > MAX_HIST_BINS) throw new ShapeError(`${what}: ${c.length} centres, expected ${K} (2 to ${MAX_HIST_BINS})`);
  for (let i = 0; i < K; i++) {
    if (!Number.isFinite(c[i])) throw new ValueError(`${what}: centre ${i} is ${c[i]}, not a finite number`);
    if (i > 0 && !(c[i] > c[i - 1])) throw new ValueError(`${what}: centres must be strictly ascending (centre ${i} is ${c[i]}, after ${c[i - 1]})`);
  }
  return Float32Array.from(c);
}

/**
 * The soft histogram of each patch without autograd (see patchHistogram3d in
 * src/ops/patchhist.ts): x [B, 1, X, Y, Z], centres [K] strictly ascending (equal centres make
 * every weight NaN; pass `hostCentres` to have them checked); returns a new tensor
 * [B * nWin, T, K].
 * @throws ShapeError naming the op and the shapes; ValueError, when `hostCentres` is given,
 * for centres that are not finite and strictly ascending (the device copy is not read back).
 */
export function patchHistogramForward(x: Tensor, centres: Tensor, patch: readonly [number, number, number], window?: readonly [number, number, number], hostCentres?: ArrayLike<number>): Tensor {
  const gpu = checkInputs('patchHistogram3d', [x, centres]);
  const what = `patchHistogram3d: x ${fmtShape(x.shape)}, centres ${fmtShape(centres.shape)}, patch ${patch.join('x')}${window ? `, window ${window.join('x')}` : ''}`;
  if (x.rank !== 5 || x.shape[1] !== 1) throw new ShapeError(`${what}: x must be a one-channel volume [batch, 1, x, y, z]`);
  if (centres.rank !== 1 || centres.shape[0] < 2 || centres.shape[0] > MAX_HIST_BINS)
    throw new ShapeError(`${what}: centres must be [K] with 2 <= K <= ${MAX_HIST_BINS}`);
  if (hostCentres) {
    if (hostCentres.length !== centres.shape[0]) throw new ShapeError(`${what}: ${hostCentres.length} host centres for a centres tensor of ${centres.shape[0]}`);
    checkCentres(what, hostCentres, centres.shape[0]);
  }
  const [B, , X, Y, Z] = x.shape;
  const p = patch;
  if (p.length !== 3 || (window && window.length !== 3) || !p.every((v) => Number.isInteger(v) && v > 0))
    throw new ShapeError(`${what}: patch and window must be 3 positive integers each`);
  const { win, grid, tok, nWin, T } = windowGrid(what, [X, Y, Z], p, window);
  const K = centres.shape[0];
  const M = B * nWin * T;
  if (x.size >= 2 ** 32 / 4 || M * K >= 2 ** 32 / 4) throw new ShapeError(`${what}: too large for 32-bit indexing; split the batch`);
  const out = new Tensor(gpu, [B * nWin, T, K], 'f32', undefined, 'patchHistogram3d');
  gpu.launch(patchHistKernel.patch_hist, {
    params: { M, K, C: 1, X, Y, Z, p0: p[0], p1: p[1], p2: p[2], T, nW: tok[1], nD: tok[2], nWin, Wg: grid[1], Dg: grid[2], w0: win[0], w1: win[1], w2: win[2] },
    buffers: { x: x.buffer, Cn: centres.buffer, Out: out.buffer },
    consts: { K },
    workgroups: grid1d(M, 64, gpu.limits.maxComputeWorkgroupsPerDimension),
    label: `patchHistogram3d ${fmtShape(x.shape)} K ${K} patch ${p.join('x')}`,
  });
  return out;
}
