// RMS normalisation over the last axis of a [rows, n] view (transformers' Qwen3RMSNorm /
// LlamaRMSNorm, torch.nn.RMSNorm): no mean subtraction, no bias, no +1 offset on the weight:
//   y = w * x * r,   r = 1 / sqrt(mean(x^2) + eps)
// Backward, with xhat = x * r:
//   gx = r * (gy * w - xhat * mean(gy * w * xhat))
//   gw = sum over rows of gy * xhat   (per-chunk partial sums, then a sum over the chunks:
//                                      deterministic, no atomics)
//
// Extreme magnitudes: x^2 overflows f32 for |x| > 1.8e19 and loses its low bits when
// subnormal. A row whose largest |x| is above 1e16 (or below 1e-16 with eps < 1e-28, where
// eps no longer hides that loss) is summed again scaled by c = 2^-100 (2^100):
//   r' = 1 / sqrt(mean((c x)^2) + c^2 eps) = r / c,   xhat = (c x) * r'.
// stats saves [r', c] per row; xhat is always formed as (c x) r', never with r itself
// (which overflows for a row of subnormals), and the backward never forms r^3.
//
// Three layouts of the forward and the input gradient (src/launch/rmsnorm.ts picks one):
//   *_row  one invocation per row, plain loops (no barriers, which CPU drivers such as
//          lavapipe run slowly); fastest on lavapipe at every n measured. Its backward
//          with subgroups, *_row_gw, also writes the weight gradient's per-group partials.
//   *_wg   one workgroup of WG invocations per row, strided loads and a tree reduction in
//          workgroup memory: rows in parallel with coalesced loads, for long rows on GPUs
//   *_sg   G lanes of a subgroup per row, shuffle reductions (SUBGROUPS)
// VEC4: n % 4 == 0, rows read as vec4s (`nv` = n / 4, else n).
//
// Parameters and bindings: rmsNormKernel in src/launch/rmsnorm.ts.

//#if SUBGROUPS
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif

//#if VEC4
alias V = vec4f;
alias VU = vec4u;
fn hsum(v: V) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn hmax(v: V) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
//#else
alias V = f32;
alias VU = u32;
fn hsum(v: V) -> f32 { return v; }
fn hmax(v: V) -> f32 { return v; }
//#endif

const BIG: f32 = 1e16;
const SMALL: f32 = 1e-16;
const DOWN: f32 = 7.888609052210118e-31;  // 2^-100
const UP: f32 = 1.2676506002282294e30;    // 2^100

// The scale for a row whose largest magnitude is m (1: none needed).
fn scale_for(m: f32) -> f32 {
  if (m > BIG) { return DOWN; }
  if (m < SMALL && p.eps < 1e-28) { return UP; }
  return 1.0;
}

// r' from the sum of squares of the scaled row: 1 / sqrt(ss / n + eps c^2), with eps c^2
// taken from the host (p.epsUp, p.epsDown), never formed here: on an H200 (driver 580) the
// kernel's (eps c) c gave NaN for every rescaled tiny row with eps = 0, evidently evaluated as
// eps (c c) with c c = 2^200 = inf. Unscaled rows add eps itself.
fn rstd_scaled(ss: f32, c: f32) -> f32 {
  return inverseSqrt(ss / f32(p.n) + select(select(p.epsDown, p.epsUp, c > 1.0), p.eps, c == 1.0));
}

fn row_index(gid: vec3u, nwg: vec3u, wg: u32) -> u32 { return gid.x + gid.y * nwg.x * wg; }

// ACCX / ACCW: the gradient gathered so far from the other ops that read x (the weight), added
// in the store (GradNode.backward's `accumulated`): the engine's add, fused, with its bits.
// v is a product: the OR with a run-time zero rounds it before the add, as the separate
// store did (no fused multiply-add; the matmul store does the same).
fn gx_store(i: u32, v: V) {
//#if ACCX
  GX[i] = GXA[i] + bitcast<V>(bitcast<VU>(v) | VU(p.zero));
//#else
  GX[i] = v;
//#endif
}
fn gw_store(i: u32, v: V) {
//#if ACCW
  GW[i] = GWA[i] + v;
//#else
  GW[i] = v;
//#endif
}

// ---------------------------------------------------------------- one invocation per row

@compute @workgroup_size(64)
fn rmsnorm_row(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(gid, nwg, 64u);
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  // Sum of squares and largest magnitude in one pass (vector accumulators: 4 partial sums).
  var acc = V(0.0);
  var mx = V(0.0);
  for (var j = 0u; j < p.nv; j++) {
    let v = X[base + j];
    acc += v * v;
    mx = max(mx, abs(v));
  }
  let c = scale_for(hmax(mx));
  var ss = hsum(acc);
  if (c != 1.0) {
    acc = V(0.0);
    for (var j = 0u; j < p.nv; j++) { let v = X[base + j] * c; acc += v * v; }
    ss = hsum(acc);
  }
  let r = rstd_scaled(ss, c);
  for (var j = 0u; j < p.nv; j++) { Y[base + j] = W[j] * ((X[base + j] * c) * r); }
  stats[2u * row] = r;
  stats[2u * row + 1u] = c;
}

// gx = r * (gy w - xhat * mean(gy w xhat)), r = r' c, xhat = x c r'
@compute @workgroup_size(64)
fn rmsnorm_backward_row(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(gid, nwg, 64u);
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  let r = statsIn[2u * row];
  let c = statsIn[2u * row + 1u];
  var acc = V(0.0);
  for (var j = 0u; j < p.nv; j++) { acc += GY[base + j] * W[j] * ((X[base + j] * c) * r); }
  let k = hsum(acc) / f32(p.n);
  let rc = r * c;
  for (var j = 0u; j < p.nv; j++) {
    gx_store(base + j, rc * (GY[base + j] * W[j] - ((X[base + j] * c) * r) * k));
  }
}

// ---------------------------------------------------------------- one workgroup per row

const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;

// Tree reductions over the workgroup. The maximum comes back through workgroupUniformLoad,
// so that the rescaling branch that follows is uniform (it holds barriers); its barrier
// also orders every read of red[0] before red is written again.
fn reduce_sum_max(lid: u32, s: f32, m: f32, total: ptr<function, f32>) -> f32 {
  red[lid] = s;
  red2[lid] = m;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      red[lid] += red[lid + w];
      red2[lid] = max(red2[lid], red2[lid + w]);
    }
    workgroupBarrier();
  }
  *total = red[0];
  return workgroupUniformLoad(&red2[0]);
}

// Called at most once after reduce_sum_max: nothing writes red after it.
fn reduce_sum(lid: u32, s: f32) -> f32 {
  red[lid] = s;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn rmsnorm_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform over the workgroup
  let base = row * p.nv;
  var acc = V(0.0);
  var mx = V(0.0);
  for (var j = lid; j < p.nv; j += WG) {
    let v = X[base + j];
    acc += v * v;
    mx = max(mx, abs(v));
  }
  var ss: f32;
  let c = scale_for(reduce_sum_max(lid, hsum(acc), hmax(mx), &ss));
  if (c != 1.0) {
    acc = V(0.0);
    for (var j = lid; j < p.nv; j += WG) { let v = X[base + j] * c; acc += v * v; }
    ss = reduce_sum(lid, hsum(acc));
  }
  let r = rstd_scaled(ss, c);
  for (var j = lid; j < p.nv; j += WG) { Y[base + j] = W[j] * ((X[base + j] * c) * r); }
  if (lid == 0u) {
    stats[2u * row] = r;
    stats[2u * row + 1u] = c;
  }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  let r = statsIn[2u * row];
  let c = statsIn[2u * row + 1u];
  var acc = V(0.0);
  for (var j = lid; j < p.nv; j += WG) { acc += GY[base + j] * W[j] * ((X[base + j] * c) * r); }
  let k = reduce_sum(lid, hsum(acc)) / f32(p.n);
  let rc = r * c;
  for (var j = lid; j < p.nv; j += WG) {
    gx_store(base + j, rc * (GY[base + j] * W[j] - ((X[base + j] * c) * r) * k));
  }
}

// ---------------------------------------------------------------- G lanes of a subgroup per row

//#if SUBGROUPS
// Needs subgroups of at least G lanes made of consecutive invocation indices (as on lavapipe
// and the GPUs we know); the G lanes of a row read consecutive elements and combine their
// sums with a butterfly of subgroup shuffles (no barriers, no workgroup memory).
override G: u32 = 8u;

fn group_sum(v: f32) -> f32 {
  var s = v;
  for (var o = G / 2u; o > 0u; o >>= 1u) { s += subgroupShuffleXor(s, o); }
  return s;
}

fn group_max(v: f32) -> f32 {
  var s = v;
  for (var o = G / 2u; o > 0u; o >>= 1u) { s = max(s, subgroupShuffleXor(s, o)); }
  return s;
}

@compute @workgroup_size(64)
fn rmsnorm_sg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = row_index(gid, nwg, 64u);
  let row = id / G;
  let lane = id % G;
  let live = row < p.rows;
  // Lanes past the last row stay (with no data) so that the shuffles see every lane.
  let base = select(0u, row * p.nv, live);
  let nv = select(0u, p.nv, live);
  var acc = V(0.0);
  var mx = V(0.0);
  for (var j = lane; j < nv; j += G) {
    let v = X[base + j];
    acc += v * v;
    mx = max(mx, abs(v));
  }
  let c = scale_for(group_max(hmax(mx)));
  var ss = group_sum(hsum(acc));
  if (c != 1.0) { // the same for the G lanes of a row
    acc = V(0.0);
    for (var j = lane; j < nv; j += G) { let v = X[base + j] * c; acc += v * v; }
    ss = group_sum(hsum(acc));
  }
  let r = rstd_scaled(ss, c);
  for (var j = lane; j < nv; j += G) { Y[base + j] = W[j] * ((X[base + j] * c) * r); }
  if (live && lane == 0u) {
    stats[2u * row] = r;
    stats[2u * row + 1u] = c;
  }
}

fn group_sum_v(v: V) -> V {
  var s = v;
  for (var o = G / 2u; o > 0u; o >>= 1u) { s += subgroupShuffleXor(s, o); }
  return s;
}

// rmsnorm_backward_row with the weight gradient's first pass fused in: the G rows of a
// group of lanes add their gy * xhat with shuffles, and the group's first lane writes that
// row of partial sums, GW[(row / G) * nv + j] (ceil(rows / G) rows; rmsnorm_wgrad_final sums
// them). Saves re-reading gy and x. Lanes past the last row compute on row 0 and add 0.
@compute @workgroup_size(64)
fn rmsnorm_backward_row_gw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = row_index(gid, nwg, 64u);
  let live = id < p.rows;
  let row = select(0u, id, live);
  let base = row * p.nv;
  let r = select(0.0, statsIn[2u * row], live);
  let c = statsIn[2u * row + 1u];
  var acc = V(0.0);
  for (var j = 0u; j < p.nv; j++) { acc += GY[base + j] * W[j] * ((X[base + j] * c) * r); }
  let k = hsum(acc) / f32(p.n);
  let rc = r * c;
  let out = (id / G) * p.nv;
  let first = id % G == 0u && id < p.rows; // a group with rows (no write past the partials)
  for (var j = 0u; j < p.nv; j++) {
    let gy = GY[base + j];
    let xh = (X[base + j] * c) * r;
    if (live) { gx_store(base + j, rc * (gy * W[j] - xh * k)); }
    let s = group_sum_v(gy * xh);
    if (first) { GW[out + j] = s; }
  }
}

@compute @workgroup_size(64)
fn rmsnorm_backward_sg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = row_index(gid, nwg, 64u);
  let row = id / G;
  let lane = id % G;
  let live = row < p.rows;
  let base = select(0u, row * p.nv, live);
  let nv = select(0u, p.nv, live);
  let sr = select(0u, row, live);
  let r = statsIn[2u * sr];
  let c = statsIn[2u * sr + 1u];
  var acc = V(0.0);
  for (var j = lane; j < nv; j += G) { acc += GY[base + j] * W[j] * ((X[base + j] * c) * r); }
  let k = group_sum(hsum(acc)) / f32(p.n);
  let rc = r * c;
  for (var j = lane; j < nv; j += G) {
    gx_store(base + j, rc * (GY[base + j] * W[j] - ((X[base + j] * c) * r) * k));
  }
}
//#endif

// ---------------------------------------------------------------- weight gradient

// Partial sums of gy * xhat over rows [c * chunk, (c + 1) * chunk): invocation (c, j) writes
// GW[c * nv + j] (the final gradient when there is one chunk).
@compute @workgroup_size(64)
fn rmsnorm_wgrad_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = row_index(gid, nwg, 64u);
  if (idx >= p.chunks * p.nv) { return; }
  let j = idx % p.nv;
  let ch = idx / p.nv;
  let start = ch * p.chunk;
  let stop = min(start + p.chunk, p.rows);
  var a0 = V(0.0);
  var a1 = V(0.0);
  var r = start;
  for (; r + 2u <= stop; r += 2u) {
    a0 += GY[r * p.nv + j] * ((X[r * p.nv + j] * statsIn[2u * r + 1u]) * statsIn[2u * r]);
    let r1 = r + 1u;
    a1 += GY[r1 * p.nv + j] * ((X[r1 * p.nv + j] * statsIn[2u * r1 + 1u]) * statsIn[2u * r1]);
  }
  if (r < stop) { a0 += GY[r * p.nv + j] * ((X[r * p.nv + j] * statsIn[2u * r + 1u]) * statsIn[2u * r]); }
  gw_store(idx, a0 + a1);
}

// GW[j] = sum over chunks of partials[c * nv + j], in chunk order.
@compute @workgroup_size(64)
fn rmsnorm_wgrad_final(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = row_index(gid, nwg, 64u);
  if (j >= p.nv) { return; }
  var a = V(0.0);
  for (var ch = 0u; ch < p.chunks; ch++) { a += partials[ch * p.nv + j]; }
  gw_store(j, a);
}
