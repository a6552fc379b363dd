// Float64 CPU references for every kernel but the elementwise ops (whose references are in
// their table, src/launch/elementwise-table.ts). Kept deliberately naive: they are the ground
// truth the GPU kernels are compared against.

export type F64 = Float64Array;
export type Shape = number[];

export const size = (s: Shape): number => s.reduce((a, b) => a * b, 1);

export function f64(a: ArrayLike<number>): F64 {
  return Float64Array.from(a);
}

// ---------------------------------------------------------------- elementwise

export function broadcastShape(a: Shape, b: Shape): Shape {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => Math.max(a[a.length - r + i] ?? 1, b[b.length - r + i] ?? 1));
}

/** Index into `shape` (broadcast to `out`) for the row-major output index i. */
function bIndex(i: number, out: Shape, shape: Shape): number {
  let idx = 0;
  let stride = 1;
  let rem = i;
  const coords: number[] = new Array(out.length);
  for (let d = out.length - 1; d >= 0; d--) {
    coords[d] = rem % out[d];
    rem = Math.floor(rem / out[d]);
  }
  for (let d = shape.length - 1; d >= 0; d--) {
    const o = out.length - shape.length + d;
    const c = shape[d] === 1 ? 0 : coords[o];
    idx += c * stride;
    stride *= shape[d];
  }
  return idx;
}

/** f(a, b) elementwise with numpy broadcasting (the binary ops' references come from
 * src/launch/elementwise-table.ts). */
export function broadcastBinary(f: (a: number, b: number) => number, a: F64, as: Shape, b: F64, bs: Shape): { out: F64; shape: Shape } {
  const shape = broadcastShape(as, bs);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = f(a[bIndex(i, shape, as)], b[bIndex(i, shape, bs)]);
  return { out, shape };
}

// ---------------------------------------------------------------- reductions and layout

export function reduce(op: 'sum' | 'mean' | 'max', x: F64, shape: Shape, axis?: number): F64 {
  if (axis === undefined) {
    let acc = op === 'max' ? -Infinity : 0;
    for (const v of x) acc = op === 'max' ? Math.max(acc, v) : acc + v;
    return f64([op === 'mean' ? acc / x.length : acc]);
  }
  const outer = size(shape.slice(0, axis));
  const n = shape[axis];
  const inner = size(shape.slice(axis + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = op === 'max' ? -Infinity : 0;
      for (let j = 0; j < n; j++) {
        const v = x[(o * n + j) * inner + i];
        acc = op === 'max' ? Math.max(acc, v) : acc + v;
      }
      out[o * inner + i] = op === 'mean' ? acc / n : acc;
    }
  return out;
}

export function permute(x: F64, shape: Shape, perm: number[]): F64 {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => size(shape.slice(i + 1)));
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    let rem = i;
    let src = 0;
    for (let d = outShape.length - 1; d >= 0; d--) {
      const c = rem % outShape[d];
      rem = Math.floor(rem / outShape[d]);
      src += c * inStrides[perm[d]];
    }
    out[i] = x[src];
  }
  return out;
}

// ---------------------------------------------------------------- matmul

/** op(A) @ op(B) (+ bias) for 2D operands. */
export function matmul(a: F64, b: F64, M: number, K: number, N: number, transA = false, transB = false, bias?: F64): F64 {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
      out[m * N + n] = s;
    }
  return out;
}

// ---------------------------------------------------------------- rows

export function softmax(x: F64, n: number, log = false): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j] - m);
    for (let j = 0; j < n; j++) out[r * n + j] = log ? x[r * n + j] - m - Math.log(s) : Math.exp(x[r * n + j] - m) / s;
  }
  return out;
}

export function layerNorm(x: F64, gamma: F64, beta: F64, n: number, eps: number): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let mean = 0;
    for (let j = 0; j < n; j++) mean += x[r * n + j];
    mean /= n;
    let v = 0;
    for (let j = 0; j < n; j++) v += (x[r * n + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / n + eps);
    for (let j = 0; j < n; j++) out[r * n + j] = (x[r * n + j] - mean) * rstd * gamma[j] + beta[j];
  }
  return out;
}

export function crossEntropyRows(x: F64, targets: ArrayLike<number>, classes: number): F64 {
  const rows = x.length / classes;
  const out = new Float64Array(rows);
  const logp = softmax(x, classes, true);
  for (let r = 0; r < rows; r++) out[r] = targets[r] < 0 ? 0 : -logp[r * classes + targets[r]];
  return out;
}

/** Mean cross-entropy over the rows with a target >= 0; 0 when every row is masked. */
export function crossEntropy(x: F64, targets: ArrayLike<number>, classes: number): number {
  const rows = crossEntropyRows(x, targets, classes);
  let s = 0;
  let count = 0;
  for (let r = 0; r < rows.length; r++) if (targets[r] >= 0) (s += rows[r]), count++;
  return count > 0 ? s / count : 0;
}

// ---------------------------------------------------------------- finite differences

/**
 * Central finite differences of a scalar float64 function at x (h scaled to |x|). The
 * function is evaluated in float64, so the difference quotient is accurate to ~1e-9 for
 * smooth functions: a precise reference for the GPU's analytic gradients.
 */
export function numericGrad(f: (x: F64) => number, x: F64, h = 1e-5): F64 {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const step = h * Math.max(1, Math.abs(x[i]));
    xp[i] = x[i] + step;
    const fp = f(xp);
    xp[i] = x[i] - step;
    const fm = f(xp);
    xp[i] = x[i];
    g[i] = (fp - fm) / (2 * step);
  }
  return g;
}

export function dot(a: F64, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------- transformer

/** softmax(scale q k^T + mask) v per (batch, head); q [B,H,Lq,D], k/v [B,H,Lk,D], mask [B,Lk]. */
export function attention(q: F64, k: F64, v: F64, B: number, H: number, Lq: number, Lk: number, D: number, mask?: ArrayLike<number>, scale = 1 / Math.sqrt(D)): F64 {
  const out = new Float64Array(B * H * Lq * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Lq; i++) {
        const qo = ((b * H + h) * Lq + i) * D;
        const s = new Float64Array(Lk);
        let m = -Infinity;
        for (let j = 0; j < Lk; j++) {
          if (mask && mask[b * Lk + j] === 0) {
            s[j] = -Infinity;
            continue;
          }
          const ko = ((b * H + h) * Lk + j) * D;
          let d = 0;
          for (let c = 0; c < D; c++) d += q[qo + c] * k[ko + c];
          s[j] = d * scale;
          m = Math.max(m, s[j]);
        }
        if (m === -Infinity) continue; // no key: zero output
        let z = 0;
        for (let j = 0; j < Lk; j++) z += s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
        for (let j = 0; j < Lk; j++) {
          if (s[j] === -Infinity) continue;
          const p = Math.exp(s[j] - m) / z;
          const vo = ((b * H + h) * Lk + j) * D;
          for (let c = 0; c < D; c++) out[qo + c] += p * v[vo + c];
        }
      }
  return out;
}

/** RoPE on x [B, L, H, D] with per-token angles angle[l][i] for pair i. */
export function rope(x: F64, B: number, L: number, H: number, D: number, angle: (l: number, i: number) => number): F64 {
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < D / 2; i++) {
          const o = ((b * L + l) * H + h) * D + 2 * i;
          const a = angle(l, i);
          out[o] = x[o] * Math.cos(a) - x[o + 1] * Math.sin(a);
          out[o + 1] = x[o] * Math.sin(a) + x[o + 1] * Math.cos(a);
        }
  return out;
}

// ---------------------------------------------------------------- objectives

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/** SigLIP per-row terms of similarities S [B, N] (N >= B, default B): rows_i = sum_j v_i v_j
 * softplus(-z_ij (exp(t) S_ij + b)), z = +1 where i == j, -1 elsewhere; v = valid [N]
 * (default all 1). */
export function siglipRows(S: F64, B: number, t: number, b: number, valid?: ArrayLike<number>, N = B): F64 {
  const rows = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    const vi = valid ? valid[i] : 1;
    for (let j = 0; j < N; j++) {
      const vj = valid ? valid[j] : 1;
      const z = i === j ? 1 : -1;
      rows[i] += vi * vj * softplus(-z * (Math.exp(t) * S[i * N + j] + b));
    }
  }
  return rows;
}

/** SigLIP loss over img [B, E] and txt [N, E] (N >= B, text i image i's report, the rest
 * negatives): -(1/B') sum_ij v_i v_j log sigmoid(z_ij (exp(t) <img_i, txt_j> + b)), valid [N];
 * 0 when every row is masked (a mean over nothing). */
export function siglipLoss(img: F64, txt: F64, B: number, E: number, t: number, b: number, valid?: ArrayLike<number>, N = B): number {
  const S = new Float64Array(B * N);
  let count = 0;
  for (let i = 0; i < B; i++) {
    count += valid ? valid[i] : 1;
    for (let j = 0; j < N; j++) for (let e = 0; e < E; e++) S[i * N + j] += img[i * E + e] * txt[j * E + e];
  }
  const rows = siglipRows(S, B, t, b, valid, N);
  return count > 0 ? rows.reduce((a, v) => a + v, 0) / count : 0;
}

/**
 * Binary cross-entropy with logits, the mean over known labels (y >= 0): x, y [N, Q], posWeight
 * [Q] (default 1): w_q y softplus(-x) + (1 - y) softplus(x); 0 when no label is known.
 */
export function bceWithLogits(x: F64, y: ArrayLike<number>, Q: number, posWeight?: ArrayLike<number>): number {
  let s = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (y[i] < 0) continue;
    s += (posWeight ? posWeight[i % Q] : 1) * y[i] * softplus(-x[i]) + (1 - y[i]) * softplus(x[i]);
    count++;
  }
  return count > 0 ? s / count : 0;
}

/**
 * Depth head: per snippet [loss, expected depth mm, argmax] (see kernels/localization.wgsl).
 * mode 'radfinder': the blurred one-hot (radius max(floor(3 sigma + 0.5), 1)) normalised over
 * all bins, then zeroed outside the valid ones; 'renormalized': normalised over valid bins.
 */
export function depthHead(scores: F64, valid: ArrayLike<number>, target: ArrayLike<number>, S: number, D: number, sigma = 2, binMm = 12, mode: 'radfinder' | 'renormalized' = 'radfinder'): F64 {
  const out = new Float64Array(S * 3);
  for (let s = 0; s < S; s++) {
    let m = -Infinity;
    for (let d = 0; d < D; d++) if (valid[s * D + d]) m = Math.max(m, scores[s * D + d]);
    let z = 0;
    let qs = 0;
    const q = new Float64Array(D);
    const radius = mode === 'radfinder' ? Math.max(Math.floor(3 * sigma + 0.5), 1) : Math.ceil(3 * sigma);
    for (let d = 0; d < D; d++) {
      const diff = d - target[s];
      const g = Math.abs(diff) <= radius ? Math.exp((-diff * diff) / (2 * sigma * sigma)) : 0;
      if (mode === 'radfinder') qs += g;
      if (!valid[s * D + d]) continue;
      z += Math.exp(scores[s * D + d] - m);
      q[d] = g;
      if (mode === 'renormalized') qs += g;
    }
    let loss = 0, e = 0, best = -1, bestS = -Infinity;
    for (let d = 0; d < D; d++) {
      if (!valid[s * D + d]) continue;
      const logp = scores[s * D + d] - m - Math.log(z);
      loss -= (q[d] / qs) * logp;
      e += Math.exp(logp) * (d + 0.5) * binMm;
      if (scores[s * D + d] > bestS) { bestS = scores[s * D + d]; best = d; }
    }
    out.set([loss, e, best], s * 3);
  }
  return out;
}

// ---------------------------------------------------------------- 3D patch embedding

/**
 * PyTorch Conv3d with kernel = stride = [p0, p1, p2], straight from the definition:
 * x [B, C, X, Y, Z], w [E, C, p0, p1, p2], bias [E]; out[b, e, i, j, l] = bias[e] +
 * sum_{c, a, b', d} w[e, c, a, b', d] x[b, c, i p0 + a, j p1 + b', l p2 + d]. Returns the
 * output as (B, E, X/p0, Y/p1, Z/p2).
 */
export function conv3dStrided(x: F64, [B, C, X, Y, Z]: Shape, w: F64, [E, , p0, p1, p2]: Shape, bias?: F64): F64 {
  const [nH, nW, nD] = [X / p0, Y / p1, Z / p2];
  const out = new Float64Array(B * E * nH * nW * nD);
  for (let b = 0; b < B; b++)
    for (let e = 0; e < E; e++)
      for (let i = 0; i < nH; i++) for (let j = 0; j < nW; j++) for (let l = 0; l < nD; l++) {
        let s = bias ? bias[e] : 0;
        for (let c = 0; c < C; c++) for (let a = 0; a < p0; a++) for (let bb = 0; bb < p1; bb++) for (let d = 0; d < p2; d++)
          s += w[(((e * C + c) * p0 + a) * p1 + bb) * p2 + d] * x[(((b * C + c) * X + i * p0 + a) * Y + j * p1 + bb) * Z + l * p2 + d];
        out[(((b * E + e) * nH + i) * nW + j) * nD + l] = s;
      }
  return out;
}

/**
 * The model's patch embedding: cut x [B, C, X, Y, Z] into windows [w0, w1, w2] (windows of
 * one volume ordered n = (ih * Wg + iw) * Dg + id), apply conv3dStrided to each, and return
 * tokens channels-last: [B * nWin, T, E], token t = (ph * nW + pw) * nD + pd.
 */
export function patchEmbed3d(x: F64, xs: Shape, w: F64, ws: Shape, bias?: F64, window?: Shape): F64 {
  const [B, C, X, Y, Z] = xs;
  const [w0, w1, w2] = window ?? [X, Y, Z];
  const [Hg, Wg, Dg] = [X / w0, Y / w1, Z / w2];
  const E = ws[0];
  const T = (w0 / ws[2]) * (w1 / ws[3]) * (w2 / ws[4]);
  const out = new Float64Array(B * Hg * Wg * Dg * T * E);
  for (let b = 0; b < B; b++)
    for (let ih = 0; ih < Hg; ih++) for (let iw = 0; iw < Wg; iw++) for (let id = 0; id < Dg; id++) {
      // The window as its own volume [1, C, w0, w1, w2].
      const win = new Float64Array(C * w0 * w1 * w2);
      for (let c = 0; c < C; c++) for (let i = 0; i < w0; i++) for (let j = 0; j < w1; j++) for (let l = 0; l < w2; l++)
        win[((c * w0 + i) * w1 + j) * w2 + l] = x[(((b * C + c) * X + ih * w0 + i) * Y + iw * w1 + j) * Z + id * w2 + l];
      const y = conv3dStrided(win, [1, C, w0, w1, w2], w, ws, bias); // (1, E, nH, nW, nD)
      const n = (b * Hg + ih) * Wg * Dg + iw * Dg + id;
      for (let e = 0; e < E; e++) for (let t = 0; t < T; t++) out[(n * T + t) * E + e] = y[e * T + t];
    }
  return out;
}

type AttentionOpts = { mask?: ArrayLike<number>; causal?: boolean; scale?: number };

/**
 * Visits every query row of a grouped-query attention: calls row(qo, kvBase, P, live) with the
 * query's offset qo in q, the offset of its key/value head's first row, the softmax
 * probabilities P over the Lk keys (0 outside `live`, the keys the mask and causality leave).
 * Rows with no key are skipped (their output is zero). Shared by the forward and the gradient.
 */
function attentionRows(
  q: F64, k: F64, B: number, H: number, Hkv: number, Lq: number, Lk: number, D: number, opts: AttentionOpts,
  row: (qo: number, kvBase: number, P: F64, live: number[]) => void,
): void {
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const group = H / Hkv;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * Lk;
      for (let i = 0; i < Lq; i++) {
        const qo = ((b * H + h) * Lq + i) * D;
        const P = new Float64Array(Lk);
        const live: number[] = [];
        let m = -Infinity;
        for (let j = 0; j < Lk; j++) {
          if (opts.mask && opts.mask[b * Lk + j] === 0) continue;
          if (opts.causal && j > i + (Lk - Lq)) continue;
          let d = 0;
          for (let c = 0; c < D; c++) d += q[qo + c] * k[(kvBase + j) * D + c];
          P[j] = d * scale;
          m = Math.max(m, P[j]);
          live.push(j);
        }
        if (!live.length) continue;
        let z = 0;
        for (const j of live) z += P[j] = Math.exp(P[j] - m);
        for (const j of live) P[j] /= z;
        row(qo, kvBase, P, live);
      }
    }
}

/**
 * attention() generalised: k and v have Hkv heads (query head h reads key/value head
 * floor(h / (H / Hkv))), `causal` limits query i to keys j <= i + (Lk - Lq). A query with
 * no key left gets a zero output. q [B,H,Lq,D], k/v [B,Hkv,Lk,D], mask [B,Lk].
 */
export function attentionGqa(q: F64, k: F64, v: F64, B: number, H: number, Hkv: number, Lq: number, Lk: number, D: number, opts: AttentionOpts = {}): F64 {
  const out = new Float64Array(B * H * Lq * D);
  attentionRows(q, k, B, H, Hkv, Lq, Lk, D, opts, (qo, kvBase, P, live) => {
    for (const j of live) for (let c = 0; c < D; c++) out[qo + c] += P[j] * v[(kvBase + j) * D + c];
  });
  return out;
}

/**
 * The float64 gradients [dq, dk, dv] of sum(attentionGqa(q, k, v) * g), analytically:
 * P = softmax(S), dV = P^T g, dP = g V^T, dS = P (dP - rowsum(g * O)), dQ = scale dS K,
 * dK = scale dS^T Q (dK, dV summed over the query heads of each group). Lets tests use sizes
 * (65 x 70 x 128) where finite differences would take minutes; itself checked against finite
 * differences in test/ops/attention.test.ts.
 */
export function attentionGqaGrads(
  q: F64, k: F64, v: F64, g: F64, B: number, H: number, Hkv: number, Lq: number, Lk: number, D: number, opts: AttentionOpts = {},
): [F64, F64, F64] {
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const [dq, dk, dv] = [new Float64Array(q.length), new Float64Array(k.length), new Float64Array(v.length)];
  attentionRows(q, k, B, H, Hkv, Lq, Lk, D, opts, (qo, kvBase, P, live) => {
    const o = new Float64Array(D);
    for (const j of live) for (let c = 0; c < D; c++) o[c] += P[j] * v[(kvBase + j) * D + c];
    let delta = 0;
    for (let c = 0; c < D; c++) delta += g[qo + c] * o[c];
    for (const j of live) {
      const ko = (kvBase + j) * D;
      let dp = 0;
      for (let c = 0; c < D; c++) dp += g[qo + c] * v[ko + c];
      const ds = P[j] * (dp - delta) * scale;
      for (let c = 0; c < D; c++) {
        dv[ko + c] += P[j] * g[qo + c];
        dq[qo + c] += ds * k[ko + c];
        dk[ko + c] += ds * q[qo + c];
      }
    }
  });
  return [dq, dk, dv];
}

// ---------------------------------------------------------------- GELU (erf), SiLU, RMSNorm, weight norm

import { UNARY_OPS } from '../../src/launch/elementwise-table.ts';

// GELU and SiLU themselves: the references of the elementwise table.
const silu = (x: number) => UNARY_OPS.silu.ref(x);
export const siluGrad = (x: number): number => UNARY_OPS.silu.dref(x);
export { silu };

/** silu(gate) * up, elementwise. */
export const siluGate = (gate: F64, up: F64): F64 => gate.map((g, i) => silu(g) * up[i]);

/** y = weight * x / sqrt(mean(x^2 over the last axis) + eps) (Qwen3RMSNorm); x [rows, n], weight [n]. */
export function rmsNorm(x: F64, weight: F64, n: number, eps: number): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    // Scaled by the row's largest magnitude, so that squares neither overflow nor underflow.
    let m = 0;
    for (let j = 0; j < n; j++) m = Math.max(m, Math.abs(x[r * n + j]));
    let s = 0;
    if (m > 0) for (let j = 0; j < n; j++) s += (x[r * n + j] / m) ** 2;
    const rstd = m > 0 ? 1 / (m * Math.sqrt(s / n + eps / m / m)) : 1 / Math.sqrt(eps);
    for (let j = 0; j < n; j++) out[r * n + j] = weight[j] * x[r * n + j] * rstd;
  }
  return out;
}

/** W[o, :] = g[o] v[o, :] / ||v[o, :]||_2 (torch weight_norm, dim 0); g [O], v [O, I]. */
export function weightNorm(g: F64, v: F64, O: number, I: number): F64 {
  const out = new Float64Array(O * I);
  for (let o = 0; o < O; o++) {
    let s = 0;
    for (let i = 0; i < I; i++) s += v[o * I + i] ** 2;
    const k = g[o] / Math.sqrt(s);
    for (let i = 0; i < I; i++) out[o * I + i] = k * v[o * I + i];
  }
  return out;
}
