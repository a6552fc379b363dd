// Softmax cross-entropy per row of [rows, classes] logits against integer targets.
// A negative target masks the row out: loss 0, gradient 0.
//   rows:          loss[i] = logsumexp(x_i) - x_i[t_i]
//   rows_backward: gx[i, c] = gy[i] * (softmax(x_i)_c - [c == t_i])
//   valid:         mask[i] = 1 if t_i >= 0 else 0  (for the mean over valid rows)

struct Params { rows: u32, classes: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> T: array<i32>;
@group(0) @binding(3) var<storage, read_write> L: array<f32>;
@group(0) @binding(4) var<storage, read> GY: array<f32>;
@group(0) @binding(5) var<storage, read_write> GX: array<f32>;

fn rowIndex(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

fn lse(base: u32) -> f32 {
  var m = X[base];
  for (var c = 1u; c < p.classes; c++) { m = max(m, X[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.classes; c++) { s += exp(X[base + c] - m); }
  return m + log(s);
}

@compute @workgroup_size(64)
fn rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.rows) { return; }
  let t = T[i];
  if (t < 0) { L[i] = 0.0; return; }
  let base = i * p.classes;
  L[i] = lse(base) - X[base + u32(min(t, i32(p.classes) - 1))];
}

@compute @workgroup_size(64)
fn rows_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.rows) { return; }
  let base = i * p.classes;
  let t = T[i];
  if (t < 0) {
    for (var c = 0u; c < p.classes; c++) { GX[base + c] = 0.0; }
    return;
  }
  let l = lse(base);
  let g = GY[i];
  for (var c = 0u; c < p.classes; c++) {
    GX[base + c] = g * (exp(X[base + c] - l) - select(0.0, 1.0, i32(c) == t));
  }
}

@compute @workgroup_size(64)
fn valid(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.rows) { return; }
  L[i] = select(0.0, 1.0, T[i] >= 0);
}

// Binary cross-entropy with logits, elementwise over x [N, Q] against labels y in {0, 1}
// (y < 0: unknown, masked out), with a positive-class weight per column q:
//   bce:          L = w_q y softplus(-x) + (1 - y) softplus(x)
//   bce_backward: dL/dx = w_q y (sigmoid(x) - 1) + (1 - y) sigmoid(x)
//   bce_known:    1 where y >= 0 (the count for the mean)
// Bindings: 1 x, 12 y, 13 posWeight, 3 out (L or the mask), 4 gy, 5 gx.

struct BceParams { n: u32, Q: u32, _p0: u32, _p1: u32 }
@group(0) @binding(11) var<uniform> q: BceParams;
@group(0) @binding(12) var<storage, read> Yb: array<f32>;
@group(0) @binding(13) var<storage, read> posWeight: array<f32>;

fn softplus(x: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }

@compute @workgroup_size(64)
fn bce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= q.n) { return; }
  let y = Yb[i];
  let x = X[i];
  L[i] = select(posWeight[i % q.Q] * y * softplus(-x) + (1.0 - y) * softplus(x), 0.0, y < 0.0);
}

@compute @workgroup_size(64)
fn bce_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= q.n) { return; }
  let y = Yb[i];
  let s = 1.0 / (1.0 + exp(-X[i]));
  GX[i] = select(GY[i] * (posWeight[i % q.Q] * y * (s - 1.0) + (1.0 - y) * s), 0.0, y < 0.0);
}

@compute @workgroup_size(64)
fn bce_known(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= q.n) { return; }
  L[i] = select(1.0, 0.0, Yb[i] < 0.0);
}
