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
