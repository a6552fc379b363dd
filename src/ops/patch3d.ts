// 3D patch embedding (kernels/patch3d.wgsl): PyTorch Conv3d with kernel = stride = patch, the
// volume read in place (no permuted or im2col copy), optionally cut into windows by the same
// kernel; forward and backward (weight, bias, and the volume when it needs a gradient).
import source from '../../kernels/patch3d.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import type { Gpu, KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, checkInputs } from '../launch/util.ts';

type Vec3 = readonly [number, number, number];

export interface PatchEmbedOptions {
  /**
   * Window size [w0, w1, w2] in voxels along x, y, z (each a multiple of the patch): the
   * volume is cut into non-overlapping windows first and every window's tokens come out
   * as their own batch entry. Default: the whole volume is one window.
   */
  window?: readonly [number, number, number];
}

/**
 * Output rows per group of lanes: 32 with subgroups (a lane holds 32 x 4 accumulators, as in
 * matmul_sg), 8 without (a GPU thread without subgroups would spill 128 accumulators).
 */
const rowsFor = (group: number) => (group === 1 ? 8 : 32);

let groupChoice: 1 | 4 | 8 | null = null;
/**
 * Forces the lane group (tests): 8 or 4 share rows by subgroup broadcasts/shuffles, 1 runs
 * the kernels without subgroups. null: 8 where subgroups have at least 8 lanes, else 4, else 1.
 */
export function setPatchEmbedGroup(g: 1 | 4 | 8 | null): void {
  groupChoice = g;
}

function groupSize(gpu: Gpu): number {
  const natural = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 1;
  if (groupChoice === null) return natural;
  return groupChoice <= Math.max(1, gpu.subgroupMinSize) ? groupChoice : natural;
}

interface Plan {
  B: number; C: number; X: number; Y: number; Z: number;
  E: number; p: Vec3; win: Vec3;
  /** Windows per volume along x, y, z; tokens per window along x, y, z. */
  grid: Vec3; tok: Vec3;
  nWin: number; T: number; M: number; K: number; Kp: number;
}

function plan(x: Tensor, weight: Tensor, bias: Tensor | undefined, opts: PatchEmbedOptions): Plan {
  const what = `patchEmbed3d: x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}${bias ? `, bias ${fmtShape(bias.shape)}` : ''}`;
  if (x.rank !== 5) throw new ShapeError(`${what}: x must be a volume [batch, channels, x, y, z]`);
  if (weight.rank !== 5) throw new ShapeError(`${what}: weight must be a Conv3d weight [width, channels, p0, p1, p2]`);
  const [B, C, X, Y, Z] = x.shape;
  const [E, Cw, p0, p1, p2] = weight.shape;
  if (Cw !== C) throw new ShapeError(`${what}: weight has ${Cw} input channel(s), x has ${C}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== E)) throw new ShapeError(`${what}: bias must be [${E}]`);
  const p: Vec3 = [p0, p1, p2];
  const win: Vec3 = opts.window ? [...opts.window] as unknown as Vec3 : [X, Y, Z];
  if (win.length !== 3 || !win.every((w) => Number.isInteger(w) && w > 0))
    throw new ShapeError(`${what}: window [${win.join(', ')}] must be 3 positive integers`);
  if (!opts.window && (X % p0 || Y % p1 || Z % p2))
    throw new ShapeError(`${what}: volume ${X}x${Y}x${Z} is not a whole number of ${p.join('x')} patches (crop or pad it first)`);
  if (win.some((w, i) => w % p[i]))
    throw new ShapeError(`${what}: window ${win.join('x')} is not a whole number of ${p.join('x')} patches`);
  if (X % win[0] || Y % win[1] || Z % win[2])
    throw new ShapeError(`${what}: volume ${X}x${Y}x${Z} is not a whole number of ${win.join('x')} windows (crop or pad it first)`);
  const grid: Vec3 = [X / win[0], Y / win[1], Z / win[2]];
  const tok: Vec3 = [win[0] / p0, win[1] / p1, win[2] / p2];
  const nWin = grid[0] * grid[1] * grid[2];
  const T = tok[0] * tok[1] * tok[2];
  const K = C * p0 * p1 * p2;
  const Kp = C * p0 * p1 * Math.ceil(p2 / 4) * 4;
  const M = B * nWin * T;
  if (x.size >= 2 ** 32 / 4 || M * E >= 2 ** 32 / 4 || E * K >= 2 ** 32 / 4)
    throw new ShapeError(`${what}: too large for 32-bit indexing; split the batch`);
  return { B, C, X, Y, Z, E, p, win, grid, tok, nWin, T, M, K, Kp };
}

function uniforms(pl: Plan): ArrayBuffer {
  const { p, win, grid, tok } = pl;
  return new Uniforms()
    .u32(pl.M, pl.E, pl.K, pl.C)
    .u32(p[0], p[1], p[2], Math.ceil(p[2] / 4) * 4)
    .u32(pl.X, pl.Y, pl.Z, pl.T)
    .u32(tok[0], tok[1], tok[2], pl.nWin)
    .u32(grid[1], grid[2], win[0], win[1])
    .u32(win[2], pl.B * pl.nWin, pl.Kp, 0)
    .bytes();
}

function spec(gpu: Gpu, pl: Plan, entry: string, bias: boolean, groups: number, bindings: KernelSpec['bindings']): KernelSpec {
  const group = groupSize(gpu);
  const sg = group > 1;
  return {
    file: 'patch3d.wgsl',
    source,
    entry,
    flags: {
      SUBGROUPS: sg,
      SGEXACT: sg && gpu.subgroupMinSize === group && gpu.subgroupMaxSize === group,
      V4: pl.p[2] % 4 === 0,
      E4: pl.E % 4 === 0,
      BIAS: bias,
    },
    consts: { ROWS: rowsFor(group), GROUP: group, EB: rowsFor(group) / 4 },
    overrides: { WG: groups * group },
    bindings,
  };
}

/**
 * Groups of lanes per workgroup (up to 64 lanes): the power of two that leaves the fewest
 * padded row blocks (E = 1080 is 34 blocks of 32: 8 groups would compute 40), the larger on
 * a tie.
 */
function groupsFor(rows: number, group: number): number {
  const blocks = Math.ceil(rows / rowsFor(group));
  let best = 1;
  for (let g = 2; g <= 64 / group; g *= 2) if (Math.ceil(blocks / g) * g <= Math.ceil(blocks / best) * best) best = g;
  return best;
}

function grid(gpu: Gpu, label: string, x: number, y: number): [number, number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max) throw new ShapeError(`${label}: ${x}x${y} workgroups are more than one dispatch covers here; split the batch`);
  return [x, y, 1];
}

const labelOf = (x: Tensor, weight: Tensor, opts: PatchEmbedOptions) =>
  `patchEmbed3d ${fmtShape(x.shape)}*${fmtShape(weight.shape)}${opts.window ? ` window ${opts.window.join('x')}` : ''}`;

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
  const gpu = checkInputs('patchEmbed3d', bias ? [x, weight, bias] : [x, weight]);
  const pl = plan(x, weight, bias, opts);
  const label = labelOf(x, weight, opts);
  const group = groupSize(gpu);
  const u = uniforms(pl);

  const y = new Tensor(gpu, [pl.B * pl.nWin, pl.T, pl.E], 'f32', undefined, 'patchEmbed3d');
  const fg = groupsFor(pl.M, group);
  const fwd = gpu.kernel(spec(gpu, pl, 'patch_forward', !!bias, fg, ['uniform', 'read', 'read', 'read', 'write']));
  gpu.dispatch(fwd, {
    uniforms: u,
    buffers: [x.buffer, weight.buffer, bias ? bias.buffer : gpu.placeholder, y.buffer],
    workgroups: grid(gpu, label, Math.ceil(pl.E / (4 * group)), Math.ceil(pl.M / (rowsFor(group) * fg))),
    label,
  });

  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(y, 'patchEmbed3d', inputs, (g) => {
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    let dx: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      dw = new Tensor(gpu, weight.shape, 'f32', undefined, 'grad.patchEmbed3d.weight');
      const withBias = !!bias?.requiresGrad;
      if (withBias) db = new Tensor(gpu, [pl.E], 'f32', undefined, 'grad.patchEmbed3d.bias');
      const wg = groupsFor(pl.E, group);
      const k = gpu.kernel(spec(gpu, pl, 'patch_wgrad', withBias, wg, ['uniform', 'read', null, null, null, 'read', 'write', withBias ? 'write' : null]));
      gpu.dispatch(k, {
        uniforms: u,
        buffers: withBias ? [x.buffer, g.buffer, dw.buffer, db!.buffer] : [x.buffer, g.buffer, dw.buffer],
        workgroups: grid(gpu, `${label}.backward weight`, Math.ceil(pl.Kp / (4 * group)), Math.ceil(pl.E / (rowsFor(group) * wg))),
        label: `${label}.backward weight`,
      });
      if (!weight.requiresGrad) {
        dw.dispose();
        dw = null;
      }
    }
    if (x.requiresGrad) {
      dx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.patchEmbed3d.x');
      const xg = groupsFor(pl.M, group);
      const k = gpu.kernel(spec(gpu, pl, 'patch_xgrad', false, xg, ['uniform', null, 'read', null, null, 'read', null, null, 'write']));
      gpu.dispatch(k, {
        uniforms: u,
        buffers: [weight.buffer, g.buffer, dx.buffer],
        workgroups: grid(gpu, `${label}.backward x`, Math.ceil(pl.Kp / (4 * group)), Math.ceil(pl.M / (rowsFor(group) * xg))),
        label: `${label}.backward x`,
      });
    }
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
