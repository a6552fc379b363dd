// Strided copies, the one kernel family behind permute, slice, expand and concat.
//
// gather:  out[i] = X[offset + sum_d c_d * strides[d]]   (i walks `dims` row-major)
//          permute: strides permuted; slice: offset + parent strides; expand: stride 0
// scatter: Y[offset + sum_d c_d * strides[d]] = X[i]     (writes a strided view: concat, slice backward)

struct Params {
  n: u32,
  rank: u32,
  offset: u32,
  _pad: u32,
  dims: array<vec4u, 2>,
  strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;

fn strided(i: u32) -> u32 {
  var rem = i;
  var at = p.offset;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = p.dims[u32(d) / 4u][u32(d) % 4u];
    at += (rem % n) * p.strides[u32(d) / 4u][u32(d) % 4u];
    rem = rem / n;
  }
  return at;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Y[i] = X[strided(i)];
}

@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Y[strided(i)] = X[i];
}
