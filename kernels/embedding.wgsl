// Embedding lookup and its gradient.
//   gather:  out[i, :] = W[ids[i], :]        (one invocation per row of 64 columns: the
//                                             division that finds the row is paid once)
//   scatter: dW[v, :] = sum_{i: ids[i] = v} gy[i, :]
// The scatter runs one invocation per vocabulary row that walks all ids and adds the rows
// that match: deterministic (a fixed order of additions, no float atomics, which WGSL does
// not have) at the cost of vocab x tokens id reads, small for the vocabularies used here.

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
