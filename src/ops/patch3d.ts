// 3D patch embedding (kernels/patch3d.wgsl, src/launch/patch3d.ts): PyTorch Conv3d with
// kernel = stride = patch, the volume read in place (no permuted or im2col copy), optionally
// cut into windows by the same kernel; forward and backward (weight, bias, and the volume when
// it needs a gradient). The lane grouping comes from gpu.tuning.patchEmbed.
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { patchEmbedForward, patchEmbedInputGrad, patchEmbedWeightGrad, type PatchEmbedOptions } from '../launch/patch3d.ts';

export type { PatchEmbedOptions } from '../launch/patch3d.ts';

/**
 * 3D patch embedding: PyTorch `Conv3d(C, E, kernel_size=patch, stride=patch)` applied to
 * x, its output (B, E, nH, nW, nD) permuted to channels-last and flattened to tokens
 * (RadFinder PE `patch_embed.proj` and VT `_pos_embed`: NHWDC, then view).
 *
 * - x [B, C, X, Y, Z] f32: RadFinder's (N, C, H, W, D) with H = x, W = y, D = z, depth
 *   fastest in memory. Read in place: the kernel gathers each patch (no copy).
 * - weight [E, C, p0, p1, p2]: the Conv3d weight (out, in, kH, kW, kD); the patch is its
 *   last three sides. bias [E] or undefined.
 * - Returns [B, T, E] with T = nH * nW * nD tokens, nH = X / p0, nW = Y / p1, nD = Z / p2,
 *   depth fastest: token t = (ph * nW + pw) * nD + pd.
 * - opts.window = [w0, w1, w2] (multiples of the patch) first cuts each volume into
 *   Hg x Wg x Dg = (X / w0) x (Y / w1) x (Z / w2) non-overlapping windows (RadFinder's
 *   GridPatchd): returns [B * Hg * Wg * Dg, T, E], batch entry b * (Hg * Wg * Dg) + n for
 *   window n = (ih * Wg + iw) * Dg + id (depth fastest), T = (w0 / p0) * (w1 / p1) * (w2 / p2)
 *   tokens per window ordered as above.
 * - Gradients: weight and bias (sums in a fixed order, no atomics), and x when it requires
 *   one (each voxel lies in exactly one patch).
 * - Throws ShapeError naming the op and the shapes for a rank or channel mismatch, a bias
 *   that is not [E], a window that is not a whole number of patches, or a volume that is not
 *   a whole number of windows (or, without windows, of patches).
 *
 * Fast path: p2 % 4 == 0 (depth runs of x read as vec4); other patch depths run the same
 * kernels with masked scalar loads.
 */
export function patchEmbed3d(x: Tensor, weight: Tensor, bias: Tensor | undefined, opts: PatchEmbedOptions = {}): Tensor {
  const y = patchEmbedForward(x, weight, bias, opts);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(y, 'patchEmbed3d', inputs, (g) => {
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      // One pass gives both; a weight gradient nobody asked for is left to the rule's scope.
      const r = patchEmbedWeightGrad(x, weight, g, !!bias?.requiresGrad, opts);
      dw = weight.requiresGrad ? r.dw : null;
      db = r.db;
    }
    const dx = x.requiresGrad ? patchEmbedInputGrad(x, weight, g, opts) : null;
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
