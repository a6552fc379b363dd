// Embedding lookup and its gradient.
//   gather:  out[i, :] = W[ids[i], :]        (one invocation per row of 64 columns: the
//                                             division that finds the row is paid once)
//   scatter: dW[v, :] = sum_{i: ids[i] = v} gy[i, :]
// Both scatters add each row's terms in increasing i (a fixed order: deterministic, and no
// float atomics, which WGSL does not have), so they give the same bits.
// - scatter_sorted, when the host knows the ids (fromInts): the host groups the token
//   positions by id (segments, below) and one invocation per (present id, column) sums its
//   group; rows of absent ids are cleared before. Work: tokens x dim, whatever the vocabulary.
// - scatter, for ids made on the device: one invocation per vocabulary row walks all ids,
//   vocab x tokens id reads (a 151,669-token vocabulary at 4096 tokens is 621 M of them).

// Parameters and bindings: embeddingKernel in src/launch/embedding.ts.

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  let chunks = (p.dim + 63u) / 64u;
  if (id >= p.tokens * chunks) { return; }
  let i = id / chunks;
  let c0 = (id % chunks) * 64u;
  let v = u32(clamp(ids[i], 0, i32(p.vocab) - 1));
  let stop = min(c0 + 64u, p.dim);
  for (var c = c0; c < stop; c++) { out[i * p.dim + c] = W[v * p.dim + c]; }
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

// segs (i32): rows[0 .. uniques) (the present ids, ascending), then starts[0 .. uniques]
// (offsets into order), then order[0 .. tokens) (token positions grouped by id, each group
// ascending).
@compute @workgroup_size(64)
fn scatter_sorted(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  if (id >= p.uniques * p.dim) { return; }
  let u = id / p.dim;
  let c = id % p.dim;
  let first = u32(segs[p.uniques + u]);
  let stop = u32(segs[p.uniques + u + 1u]);
  let base = 2u * p.uniques + 1u;
  var acc = 0.0;
  for (var j = first; j < stop; j++) { acc += GY[u32(segs[base + j]) * p.dim + c]; }
  GW[u32(segs[u]) * p.dim + c] = acc;
}
