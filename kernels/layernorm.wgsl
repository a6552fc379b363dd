// Layer normalisation over the last axis of a [rows, n] view with affine parameters:
//   y = (x - mean) * rstd * gamma + beta,   rstd = 1 / sqrt(var + eps)  (biased variance)
// The forward saves mean and rstd per row (stats = [mean_0, rstd_0, mean_1, ...]) for the
// backward. One invocation per row for the forward and the input gradient (or, on GPUs, one
// workgroup per row: the end of the file); one per (chunk of rows, column) for the parameter
// gradients (sums over rows), then one per column.
//
// V4 (n % 4 == 0; forward and input gradient): rows are read and written as vec4s, p.nv = n / 4
// of them. On lavapipe every load of a value that differs between lanes is a loop over the
// lanes costing about as much for a vec4 as for 2-3 scalars, so this is the same work in
// fewer, wider loads. The sums still take the elements one at a time in index order, and
// the elementwise expressions are the same per component: the results are bit for bit those
// of the scalar kernel (test/ops/layernorm.test.ts compares them).

//#if V4
alias VT = vec4f;
alias VTU = vec4u;
//#else
alias VT = f32;
alias VTU = u32;
//#endif

// Parameters and bindings: layerNormKernel in src/launch/layernorm.ts.

fn rowIndex(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

// ACCX / ACCG / ACCB: the gradient gathered so far from the other ops that read x (gamma,
// beta), added in the store (GradNode.backward's `accumulated`): the engine's add, fused,
// with its bits. v is a product: the OR with a run-time zero rounds it before the add, as the
// separate store did (no fused multiply-add; the matmul store does the same).
fn gx_store(i: u32, v: VT) {
//#if ACCX
  GX[i] = GXA[i] + bitcast<VT>(bitcast<VTU>(v) | VTU(p.zero));
//#else
  GX[i] = v;
//#endif
}
fn gparams_store(i: u32, gg: f32, gb: f32) {
//#if ACCG
  GGamma[i] = GGammaA[i] + gg;
//#else
  GGamma[i] = gg;
//#endif
//#if ACCB
  GBeta[i] = GBetaA[i] + gb;
//#else
  GBeta[i] = gb;
//#endif
}

// Element c of a loaded VT (c < 4 with V4, 0 without).
fn comp(v: VT, c: u32) -> f32 {
//#if V4
  return v[c];
//#else
  return v;
//#endif
}

@compute @workgroup_size(64)
fn layernorm(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rowIndex(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  // Sum relative to the first element: with a large common offset (|mean| >> std) the
  // plain sum would lose the low bits that carry the variance.
  let shift = comp(X[base], 0u);
  var s = 0.0;
  for (var j = 0u; j < p.nv; j++) {
    let x = X[base + j];
//#unroll c W
    s += comp(x, {c}u) - shift;
//#end
  }
  let mean = shift + s / f32(p.n);
  // Two-pass variance: no cancellation when |mean| >> std.
  var v = 0.0;
  for (var j = 0u; j < p.nv; j++) {
    let d = X[base + j] - mean;
//#unroll c W
    v += comp(d, {c}u) * comp(d, {c}u);
//#end
  }
  let rstd = inverseSqrt(v / f32(p.n) + p.eps);
  for (var j = 0u; j < p.nv; j++) { Y[base + j] = (X[base + j] - mean) * rstd * gamma[j] + beta[j]; }
  stats[2u * row] = mean;
  stats[2u * row + 1u] = rstd;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = gy * gamma
@compute @workgroup_size(64)
fn layernorm_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rowIndex(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  let mean = statsIn[2u * row];
  let rstd = statsIn[2u * row + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = 0u; j < p.nv; j++) {
    let g = GY[base + j] * gamma[j];
    let xm = X[base + j] - mean;
//#unroll c W
    sg += comp(g, {c}u);
    sgx += comp(g, {c}u) * comp(xm, {c}u) * rstd;
//#end
  }
  let inv = 1.0 / f32(p.n);
  for (var j = 0u; j < p.nv; j++) {
    let xhat = (X[base + j] - mean) * rstd;
    gx_store(base + j, rstd * (GY[base + j] * gamma[j] - sg * inv - xhat * sgx * inv));
  }
}

// dgamma[j] = sum_rows gy * xhat,  dbeta[j] = sum_rows gy (scalar only). The rows are split
// into p.chunks chunks of p.chunk rows: invocation (c, j) writes the partial sums of chunk c,
// GGamma[c * n + j] and GBeta[c * n + j] (the gradients themselves when there is one chunk),
// and layernorm_params_final adds the chunks in order. One invocation per column alone is 96
// to 1080 invocations for the model's widths: on an H200 the small preset's 15 calls took
// 16.7 ms a step, a fifth of its kernel time.
//#if !V4
@compute @workgroup_size(64)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = rowIndex(gid, nwg);
  if (idx >= p.chunks * p.n) { return; }
  let j = idx % p.n;
  let start = (idx / p.n) * p.chunk;
  let stop = min(start + p.chunk, p.rows);
  var gg = 0.0;
  var gb = 0.0;
  for (var r = start; r < stop; r++) {
    let gy = GY[r * p.n + j];
    gg += gy * (X[r * p.n + j] - statsIn[2u * r]) * statsIn[2u * r + 1u];
    gb += gy;
  }
  gparams_store(idx, gg, gb);
}

@compute @workgroup_size(64)
fn layernorm_params_final(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = rowIndex(gid, nwg);
  if (j >= p.n) { return; }
  var gg = 0.0;
  var gb = 0.0;
  for (var c = 0u; c < p.chunks; c++) {
    gg += PGamma[c * p.n + j];
    gb += PBeta[c * p.n + j];
  }
  gparams_store(j, gg, gb);
}
//#endif

// ---------------------------------------------------------------- one workgroup per row
// For GPUs: WG lanes walk a row together (neighbouring lanes, neighbouring addresses; one
// invocation per row reads with a stride of a row between lanes), each keeps partial sums,
// and a tree in workgroup memory adds them. The same two passes (shifted sum, then squared
// deviations) as above, in another order of addition: not the per-row kernel's bits. On
// lavapipe the barriers make it slower (src/launch/layernorm.ts, layerNormVariantFor).

const WG: u32 = 64u;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

// The workgroup's sums of a and of b. The leading barrier keeps this call's stores behind
// every lane's read of the previous call's result.
fn tree_sum2(lid: u32, a: f32, b: f32) -> vec2f {
  workgroupBarrier();
  red_a[lid] = a;
  red_b[lid] = b;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      red_a[lid] += red_a[lid + w];
      red_b[lid] += red_b[lid + w];
    }
    workgroupBarrier();
  }
  return vec2f(red_a[0], red_b[0]);
}

@compute @workgroup_size(WG)
fn layernorm_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform over the workgroup
  let base = row * p.nv;
  let shift = comp(X[base], 0u);
  var s = 0.0;
  for (var j = lid; j < p.nv; j += WG) {
    let x = X[base + j];
//#unroll c W
    s += comp(x, {c}u) - shift;
//#end
  }
  let mean = shift + tree_sum2(lid, s, 0.0).x / f32(p.n);
  var v = 0.0;
  for (var j = lid; j < p.nv; j += WG) {
    let d = X[base + j] - mean;
//#unroll c W
    v += comp(d, {c}u) * comp(d, {c}u);
//#end
  }
  let rstd = inverseSqrt(tree_sum2(lid, v, 0.0).x / f32(p.n) + p.eps);
  for (var j = lid; j < p.nv; j += WG) { Y[base + j] = (X[base + j] - mean) * rstd * gamma[j] + beta[j]; }
  if (lid == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}

@compute @workgroup_size(WG)
fn layernorm_backward_input_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.nv;
  let mean = statsIn[2u * row];
  let rstd = statsIn[2u * row + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = lid; j < p.nv; j += WG) {
    let g = GY[base + j] * gamma[j];
    let xm = X[base + j] - mean;
//#unroll c W
    sg += comp(g, {c}u);
    sgx += comp(g, {c}u) * comp(xm, {c}u) * rstd;
//#end
  }
  let sums = tree_sum2(lid, sg, sgx);
  let inv = 1.0 / f32(p.n);
  for (var j = lid; j < p.nv; j += WG) {
    let xhat = (X[base + j] - mean) * rstd;
    gx_store(base + j, rstd * (GY[base + j] * gamma[j] - sums.x * inv - xhat * sums.y * inv));
  }
}
