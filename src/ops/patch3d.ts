// 3D patch embedding: cut a volume into non-overlapping pz x py x px patches and project
// each to the model width. Cutting is a pure permutation of the volume viewed as
// [B, C, nz, pz, ny, py, nx, px] -> [B, nz, ny, nx, C, pz, py, px] (the strided-copy kernel of
// kernels/layout.wgsl, whose runs follow x), and the projection is a matmul with a bias
// epilogue (kernels/matmul.wgsl); the gradient reaches the weights and, if it needs one,
// the volume through the same two ops.
import { ShapeError } from '../errors.ts';
import { fmtShape, type Tensor } from '../tensor.ts';
import { permute, reshape } from './layout.ts';
import { matmul } from './matmul.ts';

export type Patch3d = [number, number, number];

/** [B, C, Z, Y, X] -> [B, nz * ny * nx, C * pz * py * px]; tokens z-major, features (c, dz, dy, dx). */
export function patchify3d(x: Tensor, patch: Patch3d): Tensor {
  if (x.rank !== 5) throw new ShapeError(`patchify3d: expected a volume [batch, channels, z, y, x], got ${fmtShape(x.shape)}`);
  const [B, C, Z, Y, X] = x.shape;
  const [pz, py, px] = patch;
  if (!patch.every((p) => Number.isInteger(p) && p > 0) || Z % pz || Y % py || X % px)
    throw new ShapeError(`patchify3d: volume ${fmtShape(x.shape)} is not a whole number of ${pz}x${py}x${px} patches (crop or pad it first)`);
  const [nz, ny, nx] = [Z / pz, Y / py, X / px];
  const v = reshape(x, [B, C, nz, pz, ny, py, nx, px]);
  const p = permute(v, [0, 2, 4, 6, 1, 3, 5, 7]);
  // The intermediates stay for scope() to free: they are nodes of the graph when x needs
  // a gradient.
  return reshape(p, [B, nz * ny * nx, C * pz * py * px]);
}

/**
 * Patch embedding: patchify3d then tokens @ weight + bias, weight [C * pz * py * px, dim],
 * bias [dim]. Returns [B, nz * ny * nx, dim].
 */
export function patchEmbed3d(x: Tensor, weight: Tensor, bias: Tensor | undefined, patch: Patch3d): Tensor {
  const patches = patchify3d(x, patch);
  const features = patches.shape[2];
  if (weight.rank !== 2 || weight.shape[0] !== features)
    throw new ShapeError(`patchEmbed3d: weight ${fmtShape(weight.shape)} must be [${features}, dim] for ${patch.join('x')} patches of ${x.shape[1]} channel(s)`);
  return matmul(patches, weight, { bias });
}
