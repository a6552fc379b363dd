// Softmax cross-entropy per row of [rows, classes] logits against integer targets.
// A negative target masks the row out: loss 0, gradient 0.
//   rows:          loss[i] = log(s_i) - (x_i[t_i] - m_i),  m_i = max(x_i), s_i = sum(exp(x_i - m_i))
//   rows_backward: gx[i, c] = gy[i] * (softmax(x_i)_c - [c == t_i])
//   valid:         mask[i] = 1 if t_i >= 0 else 0  (for the mean over valid rows)
// Here p.n is the number of rows.
//
// Parameters and bindings: crossEntropyKernel in src/launch/crossentropy.ts.

fn rowIndex(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

// A row's max and the log of its sum of exponentials, kept apart: (x - m) is exact for x
// near m, and rounding m + log(s) first would lose log(s) against a large m (logits of 1e4:
// log 2 kept to 2e-4 only).
struct Lse { m: f32, ls: f32 }

fn lse(base: u32) -> Lse {
  var m = X[base];
  for (var c = 1u; c < p.classes; c++) { m = max(m, X[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.classes; c++) { s += exp(X[base + c] - m); }
  return Lse(m, log(s));
}

@compute @workgroup_size(64)
fn rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  let t = T[i];
  if (t < 0) { L[i] = 0.0; return; }
  let base = i * p.classes;
  let st = lse(base);
  L[i] = st.ls - (X[base + u32(min(t, i32(p.classes) - 1))] - st.m);
}

@compute @workgroup_size(64)
fn rows_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  let base = i * p.classes;
  let t = T[i];
  if (t < 0) {
    for (var c = 0u; c < p.classes; c++) { GX[base + c] = 0.0; }
    return;
  }
  let st = lse(base);
  let g = GY[i];
  for (var c = 0u; c < p.classes; c++) {
    GX[base + c] = g * (exp((X[base + c] - st.m) - st.ls) - select(0.0, 1.0, i32(c) == t));
  }
}

@compute @workgroup_size(64)
fn valid(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  L[i] = select(0.0, 1.0, T[i] >= 0);
}

// Binary cross-entropy with logits, elementwise over x [N, Q] against labels y in {0, 1}
// (y < 0: unknown, masked out), with a positive-class weight per column q (Q = p.classes):
//   bce:          L = w_q y softplus(-x) + (1 - y) softplus(x)
//   bce_backward: dL/dx = w_q y (sigmoid(x) - 1) + (1 - y) sigmoid(x)
//   bce_known:    1 where y >= 0 (the count for the mean)
// Here p.n is the number of elements, N Q.

// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)). WGSL has no log1p and rounding u = 1 + z
// first would lose z against 1 (softplus(-20) = 2e-9 came out 0), so log(u) - ((u - 1) - z) / u
// corrects u's rounding (Goldberg's trick, as the elementwise softplus), and z itself where u == 1.
fn softplus(x: f32) -> f32 {
  let z = exp(-abs(x));
  let u = 1.0 + z;
  return max(x, 0.0) + select(log(u) - ((u - 1.0) - z) / u, z, u == 1.0);
}

@compute @workgroup_size(64)
fn bce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  let y = LABELS[i];
  let x = X[i];
  L[i] = select(POS_WEIGHT[i % p.classes] * y * softplus(-x) + (1.0 - y) * softplus(x), 0.0, y < 0.0);
}

@compute @workgroup_size(64)
fn bce_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  let y = LABELS[i];
  let s = 1.0 / (1.0 + exp(-X[i]));
  GX[i] = select(GY[i] * (POS_WEIGHT[i % p.classes] * y * (s - 1.0) + (1.0 - y) * s), 0.0, y < 0.0);
}

@compute @workgroup_size(64)
fn bce_known(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.n) { return; }
  L[i] = select(1.0, 0.0, LABELS[i] < 0.0);
}
