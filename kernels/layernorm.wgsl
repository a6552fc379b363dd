// Layer normalisation over the last axis of a [rows, n] view with affine parameters:
//   y = (x - mean) * rstd * gamma + beta,   rstd = 1 / sqrt(var + eps)  (biased variance)
// The forward saves mean and rstd per row (stats = [mean_0, rstd_0, mean_1, ...]) for the
// backward. One invocation per row for the forward and the input gradient; one per column
// for the parameter gradients (a sum over rows).

// Parameters and bindings: layerNormKernel in src/launch/layernorm.ts.

fn rowIndex(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

@compute @workgroup_size(64)
fn layernorm(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rowIndex(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.n;
  // Sum relative to the first element: with a large common offset (|mean| >> std) the
  // plain sum would lose the low bits that carry the variance.
  let shift = X[base];
  var s = 0.0;
  for (var j = 0u; j < p.n; j++) { s += X[base + j] - shift; }
  let mean = shift + s / f32(p.n);
  // Two-pass variance: no cancellation when |mean| >> std.
  var v = 0.0;
  for (var j = 0u; j < p.n; j++) { let d = X[base + j] - mean; v += d * d; }
  let rstd = inverseSqrt(v / f32(p.n) + p.eps);
  for (var j = 0u; j < p.n; j++) { Y[base + j] = (X[base + j] - mean) * rstd * gamma[j] + beta[j]; }
  stats[2u * row] = mean;
  stats[2u * row + 1u] = rstd;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = gy * gamma
@compute @workgroup_size(64)
fn layernorm_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rowIndex(gid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.n;
  let mean = statsIn[2u * row];
  let rstd = statsIn[2u * row + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = 0u; j < p.n; j++) {
    let g = GY[base + j] * gamma[j];
    sg += g;
    sgx += g * (X[base + j] - mean) * rstd;
  }
  let inv = 1.0 / f32(p.n);
  for (var j = 0u; j < p.n; j++) {
    let xhat = (X[base + j] - mean) * rstd;
    GX[base + j] = rstd * (GY[base + j] * gamma[j] - sg * inv - xhat * sgx * inv);
  }
}

// dgamma[j] = sum_rows gy * xhat,  dbeta[j] = sum_rows gy
@compute @workgroup_size(64)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= p.n) { return; }
  var gg = 0.0;
  var gb = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let gy = GY[r * p.n + j];
    gg += gy * (X[r * p.n + j] - statsIn[2u * r]) * statsIn[2u * r + 1u];
    gb += gy;
  }
  GGamma[j] = gg;
  GBeta[j] = gb;
}
