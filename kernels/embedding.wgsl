// Embedding lookup and its gradient.
//   gather:  out[i, :] = W[ids[i], :]        (one invocation per output element)
//   scatter: dW[v, :] = sum_{i: ids[i] = v} gy[i, :]
// The scatter runs one invocation per vocabulary row that walks all ids and adds the rows
// that match: deterministic (a fixed order of additions, no float atomics, which WGSL does
// not have) at the cost of vocab x tokens id reads, small for the vocabularies used here.

struct Params { tokens: u32, dim: u32, vocab: u32, _p: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> GY: array<f32>;
@group(0) @binding(5) var<storage, read_write> GW: array<f32>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.tokens * p.dim) { return; }
  let i = e / p.dim;
  let c = e % p.dim;
  let v = u32(clamp(ids[i], 0, i32(p.vocab) - 1));
  out[e] = W[v * p.dim + c];
}

@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let v = gid.x + gid.y * nwg.x * 64u;
  if (v >= p.vocab) { return; }
  let row = v * p.dim;
  for (var c = 0u; c < p.dim; c++) { GW[row + c] = 0.0; }
  for (var i = 0u; i < p.tokens; i++) {
    if (ids[i] == i32(v)) {
      for (var c = 0u; c < p.dim; c++) { GW[row + c] += GY[i * p.dim + c]; }
    }
  }
}
