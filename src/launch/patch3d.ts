// Launches of kernels/patch3d.wgsl (no autograd): the 3D patch embedding (Conv3d with kernel =
// stride = patch, optionally window by window), its weight-and-bias gradient and its volume
// gradient. The lane grouping comes from gpu.tuning.patchEmbed.
import source from '../../kernels/patch3d.wgsl';
import patchRows from '../../kernels/lib/patchrows.wgsl';
import { laneGroup } from '../gpu/tuning.ts';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';

export const patchEmbedKernel = defineKernel({
  file: 'patch3d.wgsl',
  source,
  includes: [{ file: 'lib/patchrows.wgsl', source: patchRows }],
  params: {
    M: 'u32', E: 'u32', K: 'u32', C: 'u32', //     rows (patches, all windows), width, C*p0*p1*p2, channels
    p0: 'u32', p1: 'u32', p2: 'u32', P2: 'u32', // patch; P2 = p2 rounded up to a multiple of 4
    X: 'u32', Y: 'u32', Z: 'u32', T: 'u32', //     volume; tokens per window
    nH: 'u32', nW: 'u32', nD: 'u32', nWin: 'u32', // tokens per window along x, y, z; windows per volume
    Wg: 'u32', Dg: 'u32', w0: 'u32', w1: 'u32', // windows along y, z; window size along x, y
    w2: 'u32', NB: 'u32', Kp: 'u32', //            window size along z; B * nWin; padded K = C*p0*p1*P2
  },
  // DT: vec4f with flag V4 (p2 % 4 == 0), else f32; ET: vec4f with flag E4 (E % 4 == 0), else f32.
  buffers: {
    x: read('DT'),
    W: read('DT'),
    bias: read('f32', { optional: true }),
    Out: write('ET'),
    G: read('ET'),
    dW: write('DT'),
    dbias: write('f32', { optional: true }),
    dx: write('DT'),
  },
  entries: {
    patch_forward: ['x', 'W', 'bias', 'Out'],
    patch_wgrad: ['x', 'G', 'dW', 'dbias'],
    patch_xgrad: ['W', 'G', 'dx'],
  },
});

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

/**
 * The lane group: 8 where subgroups have at least 8 lanes, else 4, else 1 (no subgroups);
 * gpu.tuning.patchEmbed.group forces 8 or 4 (subgroup broadcasts / shuffles) or 1 (the
 * kernels without subgroups) where the device allows it.
 */
function groupSize(gpu: Gpu): number {
  const natural = laneGroup(gpu.subgroupMinSize) || 1;
  const choice = gpu.tuning.patchEmbed.group;
  if (choice === null) return natural;
  return choice <= Math.max(1, gpu.subgroupMinSize) ? choice : natural;
}

interface Plan {
  B: number; C: number; X: number; Y: number; Z: number;
  E: number; p: Vec3; win: Vec3;
  /** Windows per volume along x, y, z; tokens per window along x, y, z. */
  grid: Vec3; tok: Vec3;
  nWin: number; T: number; M: number; K: number; Kp: number;
}

/**
 * A volume [X, Y, Z] cut into windows (default: the volume) of whole patches, as the kernels
 * reading patches in place number them (kernels/lib/patchrows.wgsl): windows per volume along
 * x, y, z (grid), tokens per window (tok), their products. Throws a ShapeError prefixed by
 * `what` for a window that is not 3 positive integers or for anything not a whole number.
 */
export function windowGrid(what: string, vol: Vec3, p: Vec3, window?: readonly number[]): { win: Vec3; grid: Vec3; tok: Vec3; nWin: number; T: number } {
  const [X, Y, Z] = vol;
  const win: Vec3 = window ? [...window] as unknown as Vec3 : [X, Y, Z];
  if (win.length !== 3 || !win.every((w) => Number.isInteger(w) && w > 0))
    throw new ShapeError(`${what}: window [${win.join(', ')}] must be 3 positive integers`);
  if (!window && (X % p[0] || Y % p[1] || Z % p[2]))
    throw new ShapeError(`${what}: volume ${X}x${Y}x${Z} is not a whole number of ${p.join('x')} patches (crop or pad it first)`);
  if (win.some((w, i) => w % p[i]))
    throw new ShapeError(`${what}: window ${win.join('x')} is not a whole number of ${p.join('x')} patches`);
  if (X % win[0] || Y % win[1] || Z % win[2])
    throw new ShapeError(`${what}: volume ${X}x${Y}x${Z} is not a whole number of ${win.join('x')} windows (crop or pad it first)`);
  const grid: Vec3 = [X / win[0], Y / win[1], Z / win[2]];
  const tok: Vec3 = [win[0] / p[0], win[1] / p[1], win[2] / p[2]];
  return { win, grid, tok, nWin: grid[0] * grid[1] * grid[2], T: tok[0] * tok[1] * tok[2] };
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
  const { win, grid, tok, nWin, T } = windowGrid(what, [X, Y, Z], p, opts.window);
  const K = C * p0 * p1 * p2;
  const Kp = C * p0 * p1 * Math.ceil(p2 / 4) * 4;
  const M = B * nWin * T;
  if (x.size >= 2 ** 32 / 4 || M * E >= 2 ** 32 / 4 || E * K >= 2 ** 32 / 4)
    throw new ShapeError(`${what}: too large for 32-bit indexing; split the batch`);
  return { B, C, X, Y, Z, E, p, win, grid, tok, nWin, T, M, K, Kp };
}

function params(pl: Plan) {
  const { p, win, grid, tok } = pl;
  return {
    M: pl.M, E: pl.E, K: pl.K, C: pl.C,
    p0: p[0], p1: p[1], p2: p[2], P2: Math.ceil(p[2] / 4) * 4,
    X: pl.X, Y: pl.Y, Z: pl.Z, T: pl.T,
    nH: tok[0], nW: tok[1], nD: tok[2], nWin: pl.nWin,
    Wg: grid[1], Dg: grid[2], w0: win[0], w1: win[1],
    w2: win[2], NB: pl.B * pl.nWin, Kp: pl.Kp,
  };
}

/** Flags, constants and overrides of a launch with `groups` groups of lanes per workgroup. */
function variant(gpu: Gpu, pl: Plan, bias: boolean, groups: number) {
  const group = groupSize(gpu);
  const sg = group > 1;
  return {
    flags: {
      SUBGROUPS: sg,
      SGEXACT: sg && gpu.subgroupMinSize === group && gpu.subgroupMaxSize === group,
      V4: pl.p[2] % 4 === 0,
      E4: pl.E % 4 === 0,
      BIAS: bias,
    },
    consts: { ROWS: rowsFor(group), GROUP: group, EB: rowsFor(group) / 4 },
    overrides: { WG: groups * group },
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

/** Checks g is the forward's output shape [B * nWin, T, E]. */
function checkGrad(op: string, pl: Plan, g: Tensor): void {
  if (g.size !== pl.M * pl.E)
    throw new ShapeError(`${op}: gradient ${fmtShape(g.shape)} is not the output shape [${pl.B * pl.nWin}x${pl.T}x${pl.E}]`);
}

/**
 * The 3D patch embedding without autograd (see patchEmbed3d in src/ops/patch3d.ts for the
 * layouts): x [B, C, X, Y, Z], weight [E, C, p0, p1, p2], bias [E] or undefined; returns a new
 * tensor [B * nWin, T, E].
 * @throws ShapeError naming the op and the shapes (as patchEmbed3d).
 */
export function patchEmbedForward(x: Tensor, weight: Tensor, bias: Tensor | undefined, opts: PatchEmbedOptions = {}): Tensor {
  const gpu = checkInputs('patchEmbed3d', bias ? [x, weight, bias] : [x, weight]);
  const pl = plan(x, weight, bias, opts);
  const label = labelOf(x, weight, opts);
  const group = groupSize(gpu);
  const y = new Tensor(gpu, [pl.B * pl.nWin, pl.T, pl.E], 'f32', undefined, 'patchEmbed3d');
  const fg = groupsFor(pl.M, group);
  gpu.launch(patchEmbedKernel.patch_forward, {
    ...variant(gpu, pl, !!bias, fg),
    params: params(pl),
    buffers: { x: x.buffer, W: weight.buffer, bias: bias ? bias.buffer : null, Out: y.buffer },
    workgroups: grid(gpu, label, Math.ceil(pl.E / (4 * group)), Math.ceil(pl.M / (rowsFor(group) * fg))),
    label,
  });
  return y;
}

/**
 * The weight gradient dW [E, C, p0, p1, p2] of the patch embedding from the volume x and the
 * output gradient g [B * nWin, T, E], and with `withBias` the bias gradient db [E] from the
 * same pass (both summed in a fixed order, no atomics: deterministic).
 * @throws ShapeError as patchEmbedForward, or for a g of another size.
 */
export function patchEmbedWeightGrad(x: Tensor, weight: Tensor, g: Tensor, withBias: boolean, opts: PatchEmbedOptions = {}): { dw: Tensor; db: Tensor | null } {
  const gpu = checkInputs('patchEmbed3d.backward', [x, weight, g]);
  const pl = plan(x, weight, undefined, opts);
  checkGrad('patchEmbed3d.backward', pl, g);
  const label = `${labelOf(x, weight, opts)}.backward weight`;
  const group = groupSize(gpu);
  const dw = new Tensor(gpu, weight.shape, 'f32', undefined, 'grad.patchEmbed3d.weight');
  const db = withBias ? new Tensor(gpu, [pl.E], 'f32', undefined, 'grad.patchEmbed3d.bias') : null;
  const wg = groupsFor(pl.E, group);
  gpu.launch(patchEmbedKernel.patch_wgrad, {
    ...variant(gpu, pl, withBias, wg),
    params: params(pl),
    buffers: { x: x.buffer, G: g.buffer, dW: dw.buffer, dbias: db ? db.buffer : null },
    workgroups: grid(gpu, label, Math.ceil(pl.Kp / (4 * group)), Math.ceil(pl.E / (rowsFor(group) * wg))),
    label,
  });
  return { dw, db };
}

/**
 * The volume gradient dx [B, C, X, Y, Z] of the patch embedding from the weight and the output
 * gradient g [B * nWin, T, E] (x gives only the shape; every voxel lies in exactly one patch).
 * @throws ShapeError as patchEmbedForward, or for a g of another size.
 */
export function patchEmbedInputGrad(x: Tensor, weight: Tensor, g: Tensor, opts: PatchEmbedOptions = {}): Tensor {
  const gpu = checkInputs('patchEmbed3d.backward', [weight, g]);
  const pl = plan(x, weight, undefined, opts);
  checkGrad('patchEmbed3d.backward', pl, g);
  const label = `${labelOf(x, weight, opts)}.backward x`;
  const group = groupSize(gpu);
  const dx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.patchEmbed3d.x');
  const xg = groupsFor(pl.M, group);
  gpu.launch(patchEmbedKernel.patch_xgrad, {
    ...variant(gpu, pl, false, xg),
    params: params(pl),
    buffers: { W: weight.buffer, G: g.buffer, dx: dx.buffer },
    workgroups: grid(gpu, label, Math.ceil(pl.Kp / (4 * group)), Math.ceil(pl.M / (rowsFor(group) * xg))),
    label,
  });
  return dx;
}
