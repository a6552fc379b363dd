// 3D patch embedding = PyTorch Conv3d with kernel = stride = patch (RadFinder PE/VT),
// forward and backward, reading the volume in place (no im2col copy).
//
// Volume x [B, C, X, Y, Z] (z fastest), weight [E, C, p0, p1, p2], bias [E]. Patch rows
// m = (b * nWin + n) * T + t: window n = (ih * Wg + iw) * Dg + id, token t = (ph * nW + pw) *
// nD + pd (depth fastest in both). Row m's patch starts at voxel (ih*w0 + ph*p0,
// iw*w1 + pw*p1, id*w2 + pd*p2); without windows there is one window (the volume).
//
// The forward is a matmul out[m, e] = bias[e] + sum_k A[m, k] W[e, k], K = C*p0*p1*p2, whose
// A row m is gathered from the patch of row m: k = ((c*p0 + i0)*p1 + i1)*p2 + i2 is voxel
// (c, x0+i0, y0+i1, z0+i2). The kernels walk k as (c, i0, i1) runs of p2 depth voxels, 4 at a
// time; a run of 4 is one vec4 of x when p2 % 4 == 0 (flag V4; otherwise 4 masked scalar
// loads over a "padded" k space whose runs are rounded up to a multiple of 4).
//
// All three entry points are register-blocked like matmul_sg in kernels/matmul.wgsl: lanes
// work in groups of GROUP (8 on lavapipe; 4 with shuffles; 1 without subgroups), each lane
// owns 4 adjacent output columns for ROWS = 32 rows, loads ROWS / GROUP vec4s of the
// row-side operand per 4 reduction steps and shares them with its group by subgroup
// broadcasts. No workgroup memory, no barriers, no atomics: every output element is
// summed by one lane in a fixed order (deterministic).
//
//   patch_forward  rows m, columns e, reduction k: A gathered from x, W read as vec4 along k
//                  (transposed in registers, like matmul's TB4).
//   patch_wgrad    dW[e, k] = sum_m G[m, e] A[m, k]: rows e, columns k (a lane's 4 columns are
//                  one depth run of x), reduction over m walked window by window, 4 depth
//                  tokens at a time (no divisions in the loop). The group shares G[m+j,
//                  4 e's] vec4s; dbias[e] = sum_m G[m, e] is summed from the same loads
//                  (written by the first column tile).
//   patch_xgrad    dx[voxel of (m, k)] = sum_e G[m, e] W[e, k]: rows m, columns k, reduction
//                  e; every voxel belongs to exactly one patch, so the result is stored
//                  straight into x's layout.
//
// Flags: V4 (p2 % 4 == 0: x, W, dW, dx as vec4 along depth), E4 (E % 4 == 0: out and G as vec4
// along e), BIAS, SUBGROUPS, SGEXACT (subgroup is exactly GROUP lanes: broadcast, not shuffle).

//#if SUBGROUPS
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif

// Parameters (what each means) and bindings: patchEmbedKernel in src/launch/patch3d.ts. The
// element types of x, W, dW, dx (DT) and of Out, G (ET) depend on the flags:
//#if V4
alias DT = vec4f;
//#else
alias DT = f32;
//#endif
//#if E4
alias ET = vec4f;
//#else
alias ET = f32;
//#endif

override WG: u32 = 64u;

//#if SUBGROUPS
//#if SGEXACT
//#define SHARE(v, i) subgroupBroadcast(v, i)
//#else
//#define SHARE(v, i) subgroupShuffle(v, src + i)
//#endif
//#else
//#define SHARE(v, i) v
//#endif

// windowBase(bw) and rowBase(m): kernels/lib/patchrows.wgsl (included).

// patch_forward's lane groups take rows in the volume's scan order, not the windowed token
// order: virtual row r = (b * PH + gh) * PW + gw) * PD + gd over the volume's patch grid
// (depth fastest) is row m of patch (gh, gw, gd). A group's 32 rows are then 32 patches
// along depth, whose depth runs lie next to each other in x (512 bytes per k step, as without
// windows), not 8 depth tokens of each of 4 columns of a window (4 runs 8 KiB apart), which
// measured 1.2-1.5x slower (scripts/issue11/patch-window.test.ts). Without windows r = m.
fn scanRow(r: u32) -> u32 {
  let PD = p.Dg * p.nD;
  let PW = p.Wg * p.nW;
  let per = p.nWin * p.T;                                 // patches per crop
  let b = r / per;
  let g = coords3(r - b * per, PW, PD);
  let ih = g.x / p.nH;
  let iw = g.y / p.nW;
  let id = g.z / p.nD;
  let t = ((g.x - ih * p.nH) * p.nW + (g.y - iw * p.nW)) * p.nD + (g.z - id * p.nD);
  return (b * p.nWin + (ih * p.Wg + iw) * p.Dg + id) * p.T + t;
}

// Padded column kc (a multiple of 4) -> offset in x of its voxel relative to the patch
// origin (.x), offset within a weight row (.y), depth index i2 within the patch (.z).
fn column(kc: u32) -> vec3u {
  let i2 = kc % p.P2;
  let r = kc / p.P2;
  let i1 = r % p.p1;
  let r2 = r / p.p1;
  let i0 = r2 % p.p0;
  let c = r2 / p.p0;
  return vec3u(((c * p.X + i0) * p.Y + i1) * p.Z + i2, r * p.p2 + i2, i2);
}

// x[i .. i + 3]: the depth voxels z .. z + 3 of a patch's run (0 past the patch's depth).
fn loadX(i: u32, z: u32) -> vec4f {
//#if V4
  return x[i / 4u];
//#else
  let l = p.p2 - 1u - z;
  return vec4f(x[i], select(0.0, x[i + min(1u, l)], 1u <= l),
               select(0.0, x[i + min(2u, l)], 2u <= l), select(0.0, x[i + min(3u, l)], 3u <= l));
//#endif
}

// W[i .. i + 3], the same run in a weight row (0 past the patch's depth).
fn loadW(i: u32, z: u32) -> vec4f {
//#if V4
  return W[i / 4u];
//#else
  let l = p.p2 - 1u - z;
  return vec4f(W[i], select(0.0, W[i + min(1u, l)], 1u <= l),
               select(0.0, W[i + min(2u, l)], 2u <= l), select(0.0, W[i + min(3u, l)], 3u <= l));
//#endif
}

// G[m, e .. e + 3] (e a multiple of 4); entries past E are 0.
fn loadG(m: u32, e: u32) -> vec4f {
//#if E4
  return G[(m * p.E) / 4u + min(e, p.E - 4u) / 4u];
//#else
  let i = m * p.E;
  let el = p.E - 1u;
  return vec4f(select(0.0, G[i + min(e, el)], e < p.E), select(0.0, G[i + min(e + 1u, el)], e + 1u < p.E),
               select(0.0, G[i + min(e + 2u, el)], e + 2u < p.E), select(0.0, G[i + min(e + 3u, el)], e + 3u < p.E));
//#endif
}

fn biasAt(e: u32) -> vec4f {
//#if BIAS
  let el = p.E - 1u;
  return vec4f(bias[min(e, el)], bias[min(e + 1u, el)], bias[min(e + 2u, el)], bias[min(e + 3u, el)]);
//#else
  return vec4f(0.0);
//#endif
}

// Out[m, e .. e + 3] = w for m < M (the caller checks e < E).
fn storeOut(m: u32, e: u32, w: vec4f) {
  if (m < p.M) {
//#if E4
    Out[(m * p.E + e) / 4u] = w;
//#else
    let i = m * p.E + e;
    Out[i] = w.x;
    if (e + 1u < p.E) { Out[i + 1u] = w.y; }
    if (e + 2u < p.E) { Out[i + 2u] = w.z; }
    if (e + 3u < p.E) { Out[i + 3u] = w.w; }
//#endif
  }
}

//#if SUBGROUPS
@compute @workgroup_size(WG)
fn patch_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
                 @builtin(subgroup_invocation_id) lane: u32) {
//#else
@compute @workgroup_size(WG)
fn patch_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = 0u;
//#endif
  let q = lane % {GROUP}u;                                   // lane within its group
  let row0 = (wg.y * (WG / {GROUP}u) + li / {GROUP}u) * {ROWS}u; // the group's ROWS rows
  let col = (wg.x * {GROUP}u + q) * 4u;                      // this lane's 4 columns (e)
//#if SUBGROUPS
//#if !SGEXACT
  let src = lane - q;
//#endif
//#endif
  // The patches of the rows this lane loads for its group, and its 4 weight rows.
//#unroll G ROWS / GROUP
  let base{G} = rowBase(scanRow(min(row0 + {G * GROUP}u + q, p.M - 1u)));
//#end
  let el = p.E - 1u;
  let wr0 = min(col, el) * p.K;
  let wr1 = min(col + 1u, el) * p.K;
  let wr2 = min(col + 2u, el) * p.K;
  let wr3 = min(col + 3u, el) * p.K;
//#unroll R ROWS
  var acc{R} = vec4f(0.0);
//#end
  // k walked as runs (c, i0, i1) of P2 / 4 vec4 steps along depth, in one flat loop.
  let steps = p.C * p.p0 * p.p1 * (p.P2 / 4u);
  let xi0 = (p.Y - p.p1) * p.Z;                              // x offset from run (i0, p1) to (i0 + 1, 0)
  let xc = (p.X - p.p0) * p.Y * p.Z;                         // ... from (c, p0, 0) to (c + 1, 0, 0)
  var xo = 0u;                                               // x offset of the run's first voxel
  var kw = 0u;                                               // weight-row offset of the run: ((c*p0 + i0)*p1 + i1)*p2
  var z = 0u;
  var i1 = 0u;
  var i0 = 0u;
  for (var s = 0u; s < steps; s++) {
//#unroll G ROWS / GROUP
    let av{G} = loadX(base{G} + xo + z, z);
//#end
    // W[col + n][kw + z + i] for n, i = 0..3, transposed in registers: bi = k step i.
    let t0 = loadW(wr0 + kw + z, z);
    let t1 = loadW(wr1 + kw + z, z);
    let t2 = loadW(wr2 + kw + z, z);
    let t3 = loadW(wr3 + kw + z, z);
    let b0 = vec4f(t0.x, t1.x, t2.x, t3.x);
    let b1 = vec4f(t0.y, t1.y, t2.y, t3.y);
    let b2 = vec4f(t0.z, t1.z, t2.z, t3.z);
    let b3 = vec4f(t0.w, t1.w, t2.w, t3.w);
//#unroll R ROWS
    {
      let a = SHARE(av{R / GROUP}, {R % GROUP}u);
      acc{R} = fma(vec4f(a.x), b0, acc{R});
      acc{R} = fma(vec4f(a.y), b1, acc{R});
      acc{R} = fma(vec4f(a.z), b2, acc{R});
      acc{R} = fma(vec4f(a.w), b3, acc{R});
    }
//#end
    z += 4u;
    if (z >= p.p2) {
      z = 0u;
      kw += p.p2;
      xo += p.Z;
      i1 += 1u;
      if (i1 == p.p1) {
        i1 = 0u;
        xo += xi0;
        i0 += 1u;
        if (i0 == p.p0) {
          i0 = 0u;
          xo += xc;
        }
      }
    }
  }
  if (col < p.E) {
    let bv = biasAt(col);
//#unroll R ROWS
    if (row0 + {R}u < p.M) { storeOut(scanRow(row0 + {R}u), col, acc{R} + bv); }
//#end
  }
}

// dW[e, 4 padded columns at kc] (and nothing past K or the patch's depth).
fn storeDW(e: u32, kc: u32, cw: vec3u, v: vec4f) {
  if (e >= p.E || kc >= p.Kp) { return; }
  let i = e * p.K + cw.y;
//#if V4
  dW[i / 4u] = v;
//#else
  let l = p.p2 - 1u - cw.z;
  dW[i] = v.x;
  if (1u <= l) { dW[i + 1u] = v.y; }
  if (2u <= l) { dW[i + 2u] = v.z; }
  if (3u <= l) { dW[i + 3u] = v.w; }
//#endif
}

// EB = ROWS / 4 blocks of 4 rows (e) per group. Per step of 4 tokens the group needs
// G[m + j, e0 + 4 eb .. + 3] for j < 4, eb < EB: 4 EB vec4s, vec4 v = j * EB + eb; lane q
// loads v = G' * GROUP + q (G' < ROWS / GROUP), i.e. j = G' * GROUP / EB, eb = G' * GROUP % EB + q
// (GROUP divides EB).
//#if SUBGROUPS
@compute @workgroup_size(WG)
fn patch_wgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
               @builtin(subgroup_invocation_id) lane: u32) {
//#else
@compute @workgroup_size(WG)
fn patch_wgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = 0u;
//#endif
  let q = lane % {GROUP}u;
  let e0 = (wg.y * (WG / {GROUP}u) + li / {GROUP}u) * {ROWS}u;  // the group's ROWS rows (e)
  let kc = (wg.x * {GROUP}u + q) * 4u;                         // this lane's 4 padded columns
//#if SUBGROUPS
//#if !SGEXACT
  let src = lane - q;
//#endif
//#endif
  let cw = column(min(kc, p.Kp - 4u));
//#unroll R ROWS
  var acc{R} = vec4f(0.0);
//#end
//#unroll S EB / GROUP
  var bacc{S} = vec4f(0.0);
//#end
  // Rows walked window by window, patch row (ph, pw) by patch row, 4 depth tokens per step,
  // in one flat loop (no divisions but at window changes).
  let nd1 = p.nD - 1u;
  let steps = p.NB * p.nH * p.nW * ((p.nD + 3u) / 4u);
  let dpw = p.p1 * p.Z;                                        // x offset from patch (ph, pw) to (ph, pw + 1)
  let dph = p.p0 * p.Y * p.Z - p.nW * p.p1 * p.Z;              // ... from (ph, nW) to (ph + 1, 0)
  var m = 0u;                                                  // row of token (ph, pw, 0)
  var rb = windowBase(0u) + cw.x;                              // x offset of that patch + the lane's column
  var pd = 0u;
  var pw = 0u;
  var ph = 0u;
  var bw = 0u;
  for (var s = 0u; s < steps; s++) {
//#unroll G ROWS / GROUP
    let gv{G} = select(vec4f(0.0), loadG(m + min(pd + {G * GROUP / EB}u, nd1), e0 + 4u * ({G * GROUP % EB}u + q)), pd + {G * GROUP / EB}u < p.nD);
    bacc{(G * GROUP % EB) / GROUP} += gv{G};
//#end
//#unroll J 4
    let xv{J} = loadX(rb + min(pd + {J}u, nd1) * p.p2, cw.z);
//#end
    // Block eb of 4 rows: its 4 vec4s (one per token j) reach every lane, then each of the
    // 4 accumulators takes its 4 updates in a row (one spill load and store per step).
//#unroll EBI EB
    {
      let a0 = SHARE(gv{EBI / GROUP}, {EBI % GROUP}u);
      let a1 = SHARE(gv{(EB + EBI) / GROUP}, {(EB + EBI) % GROUP}u);
      let a2 = SHARE(gv{(2 * EB + EBI) / GROUP}, {(2 * EB + EBI) % GROUP}u);
      let a3 = SHARE(gv{(3 * EB + EBI) / GROUP}, {(3 * EB + EBI) % GROUP}u);
//#unroll I 4
      acc{EBI * 4 + I} = fma(vec4f(a0[{I}]), xv0, acc{EBI * 4 + I});
      acc{EBI * 4 + I} = fma(vec4f(a1[{I}]), xv1, acc{EBI * 4 + I});
      acc{EBI * 4 + I} = fma(vec4f(a2[{I}]), xv2, acc{EBI * 4 + I});
      acc{EBI * 4 + I} = fma(vec4f(a3[{I}]), xv3, acc{EBI * 4 + I});
//#end
    }
//#end
    pd += 4u;
    if (pd >= p.nD) {
      pd = 0u;
      m += p.nD;
      pw += 1u;
      rb += dpw;
      if (pw == p.nW) {
        pw = 0u;
        ph += 1u;
        rb += dph;
        if (ph == p.nH) {
          ph = 0u;
          bw += 1u;
          rb = windowBase(min(bw, p.NB - 1u)) + cw.x;
        }
      }
    }
  }
//#unroll R ROWS
  storeDW(e0 + {R}u, kc, cw, acc{R});
//#end
//#if BIAS
  if (wg.x == 0u) {
//#unroll S EB / GROUP
    {
      let e = e0 + 4u * ({S * GROUP}u + q);
      if (e < p.E) { dbias[e] = bacc{S}.x; }
      if (e + 1u < p.E) { dbias[e + 1u] = bacc{S}.y; }
      if (e + 2u < p.E) { dbias[e + 2u] = bacc{S}.z; }
      if (e + 3u < p.E) { dbias[e + 3u] = bacc{S}.w; }
    }
//#end
  }
//#endif
}

// dx at x offset i: the 4 padded columns whose depth index starts at z.
fn storeDx(i: u32, z: u32, v: vec4f) {
//#if V4
  dx[i / 4u] = v;
//#else
  let l = p.p2 - 1u - z;
  dx[i] = v.x;
  if (1u <= l) { dx[i + 1u] = v.y; }
  if (2u <= l) { dx[i + 2u] = v.z; }
  if (3u <= l) { dx[i + 3u] = v.w; }
//#endif
}

//#if SUBGROUPS
@compute @workgroup_size(WG)
fn patch_xgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
               @builtin(subgroup_invocation_id) lane: u32) {
//#else
@compute @workgroup_size(WG)
fn patch_xgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = 0u;
//#endif
  let q = lane % {GROUP}u;
  let row0 = (wg.y * (WG / {GROUP}u) + li / {GROUP}u) * {ROWS}u;
  let kc = (wg.x * {GROUP}u + q) * 4u;
//#if SUBGROUPS
//#if !SGEXACT
  let src = lane - q;
//#endif
//#endif
  let cw = column(min(kc, p.Kp - 4u));
//#unroll G ROWS / GROUP
  let base{G} = rowBase(min(row0 + {G * GROUP}u + q, p.M - 1u));
//#end
//#unroll R ROWS
  var acc{R} = vec4f(0.0);
//#end
  let el = p.E - 1u;
  for (var e = 0u; e < p.E; e += 4u) {
//#unroll G ROWS / GROUP
    let av{G} = loadG(min(row0 + {G * GROUP}u + q, p.M - 1u), e);
//#end
    // W[e + i][this lane's 4 columns] for i = 0..3 (rows past E clamped: G gives them 0).
    let b0 = loadW(min(e, el) * p.K + cw.y, cw.z);
    let b1 = loadW(min(e + 1u, el) * p.K + cw.y, cw.z);
    let b2 = loadW(min(e + 2u, el) * p.K + cw.y, cw.z);
    let b3 = loadW(min(e + 3u, el) * p.K + cw.y, cw.z);
//#unroll R ROWS
    {
      let a = SHARE(av{R / GROUP}, {R % GROUP}u);
      acc{R} = fma(vec4f(a.x), b0, acc{R});
      acc{R} = fma(vec4f(a.y), b1, acc{R});
      acc{R} = fma(vec4f(a.z), b2, acc{R});
      acc{R} = fma(vec4f(a.w), b3, acc{R});
    }
//#end
  }
  // Row R's patch: computed by lane R % GROUP (its base{R / GROUP}), shared like the rows of G.
  let ok = kc < p.Kp;
//#unroll R ROWS
  {
    let rb = SHARE(base{R / GROUP}, {R % GROUP}u);
    if (ok && row0 + {R}u < p.M) { storeDx(rb + cw.x, cw.z, acc{R}); }
  }
//#end
}
