// Softmax and log-softmax over the last axis of a [rows, n] view: one invocation per row
// (no barriers, which CPU drivers execute slowly), or one workgroup per row (GPUs; below).
// The max and the sum of exponentials come from one pass (online rescaling: when the running
// max grows, the running sum is multiplied by exp(old - new)), so the row is read twice, not
// three times.
//
// softmax:           y = exp(x - max) / sum(exp(x - max))      (LOG: y = (x - max) - log(sum))
// softmax_backward:  gx = y * (gy - sum(gy * y))                (LOG: gx = gy - exp(y) * sum(gy))
//
// Parameters and bindings: softmaxKernel in src/launch/softmax.ts.

// The running max starts at the lowest finite f32 and the sum at 0 (a lane of the workgroup
// layout without elements then merges as nothing).
const LOWEST: f32 = -0x1.fffffep+127f;

// The running (max, sum of exp(x - max)) after one more value v: the sum is rescaled when the
// max grows.
fn online(ms: vec2f, v: f32) -> vec2f {
  if (v > ms.x) { return vec2f(v, ms.y * exp(ms.x - v) + 1.0); }
  return vec2f(ms.x, ms.y + exp(v - ms.x));
}

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.rows) { return; }
  let base = row * p.n;
  // Not (X[base], 1): two leading -inf (masked) entries would add exp(-inf - -inf) = NaN.
  var ms = vec2f(LOWEST, 0.0);
  for (var j = 0u; j < p.n; j++) { ms = online(ms, X[base + j]); }
  let m = ms.x;
  let s = ms.y;
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

// ---------------------------------------------------------------- one workgroup per row
// For GPUs, where one invocation per row reads memory with a stride of a row between
// neighbouring lanes (no coalescing) and leaves the device idle when rows are few: WG lanes
// walk a row together (neighbouring lanes, neighbouring addresses), each keeps its own
// online (max, sum) pair, and a tree in workgroup memory merges the pairs. On lavapipe the
// barriers make it slower (src/launch/softmax.ts, softmaxVariantFor).

const WG: u32 = 64u;
var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

// Sums red_s (each lane's term already stored) over the workgroup; returns the sum.
fn tree_sum(lid: u32) -> f32 {
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red_s[lid] += red_s[lid + w]; }
    workgroupBarrier();
  }
  return red_s[0];
}

@compute @workgroup_size(WG)
fn softmax_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform over the workgroup
  let base = row * p.n;
  var ms = vec2f(LOWEST, 0.0);
  for (var j = lid; j < p.n; j += WG) { ms = online(ms, X[base + j]); }
  red_m[lid] = ms.x;
  red_s[lid] = ms.y;
  workgroupBarrier();
  // Merging (m1, s1) and (m2, s2): both sums rescaled to the larger max.
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      let m1 = red_m[lid];
      let m2 = red_m[lid + w];
      let mm = max(m1, m2);
      red_s[lid] = red_s[lid] * exp(m1 - mm) + red_s[lid + w] * exp(m2 - mm);
      red_m[lid] = mm;
    }
    workgroupBarrier();
  }
  let m = red_m[0];
  let s = red_s[0];
//#if LOG
  let ls = log(s);
  for (var j = lid; j < p.n; j += WG) { Y[base + j] = (X[base + j] - m) - ls; }
//#else
  let inv = 1.0 / s;
  for (var j = lid; j < p.n; j += WG) { Y[base + j] = exp(X[base + j] - m) * inv; }
//#endif
}

@compute @workgroup_size(WG)
fn softmax_backward_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var s = 0.0;
//#if LOG
  for (var j = lid; j < p.n; j += WG) { s += GY[base + j]; }
  red_s[lid] = s;
  s = tree_sum(lid);
  for (var j = lid; j < p.n; j += WG) { GX[base + j] = GY[base + j] - exp(X[base + j]) * s; }
//#else
  for (var j = lid; j < p.n; j += WG) { s += GY[base + j] * X[base + j]; }
  red_s[lid] = s;
  s = tree_sum(lid);
  for (var j = lid; j < p.n; j += WG) { GX[base + j] = X[base + j] * (GY[base + j] - s); }
//#endif
}
