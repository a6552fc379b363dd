// Strided copies, the one kernel family behind permute, slice, expand and concat.
//
// gather:  out[i] = X[offset + sum_d c_d * strides[d]]   (i walks `dims` row-major)
//          permute: strides permuted; slice: offset + parent strides; expand: stride 0
// scatter: Y[offset + sum_d c_d * strides[d]] = X[i]     (writes a strided view: concat, slice backward)
//
// One invocation copies a run of up to CHUNK elements along the innermost dimension. The
// offset of the run's first element needs a division per dimension; integer division has
// no SIMD instruction on CPUs (lavapipe runs each lane's divide in turn), so it is paid
// once per run, not once per element. Within a run the strided offset just adds.

const CHUNK: u32 = 64u;

// Parameters and bindings: layoutKernel in src/launch/layout.ts.

fn dim(d: u32) -> u32 { return p.dims[d / 4u][d % 4u]; }
fn stride(d: u32) -> u32 { return p.strides[d / 4u][d % 4u]; }

struct Run { first: u32, strided: u32, len: u32, step: u32 }

// The run for invocation `id`: its first contiguous index, the strided offset of that
// element, how many elements it covers and the strided step between them.
fn run(id: u32) -> Run {
  let inner = dim(p.rank - 1u);
  let row = id / p.chunks;
  let start = (id % p.chunks) * CHUNK;
  var rem = row;
  var at = p.offset + start * stride(p.rank - 1u);
  for (var d = i32(p.rank) - 2; d >= 0; d--) {
    let n = dim(u32(d));
    at += (rem % n) * stride(u32(d));
    rem = rem / n;
  }
  return Run(row * inner + start, at, min(CHUNK, inner - start), stride(p.rank - 1u));
}

fn invocation(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = invocation(gid, nwg);
  if (id >= (p.n / dim(p.rank - 1u)) * p.chunks) { return; }
  let r = run(id);
  for (var j = 0u; j < r.len; j++) { Y[r.first + j] = X[r.strided + j * r.step]; }
}

@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = invocation(gid, nwg);
  if (id >= (p.n / dim(p.rank - 1u)) * p.chunks) { return; }
  let r = run(id);
  for (var j = 0u; j < r.len; j++) { Y[r.strided + j * r.step] = X[r.first + j]; }
}
