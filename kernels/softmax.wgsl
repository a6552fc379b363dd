// Softmax and log-softmax over the last axis of a [rows, n] view, one invocation per row
// (no barriers, which CPU drivers execute slowly). The max and the sum of exponentials
// come from one pass (online rescaling: when the running max grows, the running sum is
// multiplied by exp(old - new)), so the row is read twice, not three times.
//
// softmax:           y = exp(x - max) / sum(exp(x - max))      (LOG: y = (x - max) - log(sum))
// softmax_backward:  gx = y * (gy - sum(gy * y))                (LOG: gx = gy - exp(y) * sum(gy))
//
// Parameters and bindings: softmaxKernel in src/launch/softmax.ts.

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var m = X[base];
  var s = 1.0;
  for (var j = 1u; j < p.n; j++) {
    let v = X[base + j];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
//#if LOG
  // (x - m) is exact for x near m; rounding m + log(s) first would lose log(s) against a
  // large m (logits of 1e4: log 2 kept to 2e-4 only).
  let ls = log(s);
  for (var j = 0u; j < p.n; j++) { Y[base + j] = (X[base + j] - m) - ls; }
//#else
  let inv = 1.0 / s;
  for (var j = 0u; j < p.n; j++) { Y[base + j] = exp(X[base + j] - m) * inv; }
//#endif
}

// Here X holds the forward output y.
@compute @workgroup_size(64)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var s = 0.0;
//#if LOG
  for (var j = 0u; j < p.n; j++) { s += GY[base + j]; }
  for (var j = 0u; j < p.n; j++) { GX[base + j] = GY[base + j] - exp(X[base + j]) * s; }
//#else
  for (var j = 0u; j < p.n; j++) { s += GY[base + j] * X[base + j]; }
  for (var j = 0u; j < p.n; j++) { GX[base + j] = X[base + j] * (GY[base + j] - s); }
//#endif
}
