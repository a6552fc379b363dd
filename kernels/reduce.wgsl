// Reduction over one axis of a tensor viewed as [outer, n, inner] (a workgroup-per-output
// layout for GPUs is at the end).
// One invocation per output element; it walks its slice of the reduced axis with a plain
// loop (no workgroup barriers: they are slow on CPU drivers such as lavapipe, and the
// loads, not the adds, are the cost). When the output is small and the axis long, the op
// splits the axis into chunks: a first pass writes [outer, chunks, inner] partials and a
// second pass reduces those.
//
// OP: 0 sum (times `scale`, so mean is sum with scale = 1/n), 1 max, 2 sum of squares (the
// gradient norm's per-tensor term, one dispatch instead of a square and a sum).

override OP: u32 = 0u;

// Parameters and bindings: reduceKernel in src/launch/reduce.ts.

fn term(v: f32) -> f32 {
  if (OP == 2u) { return v * v; }
  return v;
}

@compute @workgroup_size(64)
fn reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let total = p.outer * p.chunks * p.inner;
  if (idx >= total) { return; }
  let i = idx % p.inner;
  let c = (idx / p.inner) % p.chunks;
  let o = idx / (p.inner * p.chunks);
  let start = c * p.chunk;
  let stop = min(start + p.chunk, p.n);
  var base = (o * p.n + start) * p.inner + i;
  var acc: f32;
  if (OP == 1u) { acc = X[base]; } else { acc = 0.0; }
  // Four independent accumulators: the adds of one chain do not wait on each other.
  var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  var j = start;
  if (OP != 1u) {
    let step = p.inner;
    for (; j + 4u <= stop; j += 4u) {
      acc += term(X[base]);
      a1 += term(X[base + step]);
      a2 += term(X[base + 2u * step]);
      a3 += term(X[base + 3u * step]);
      base += 4u * step;
    }
  }
  for (; j < stop; j++) {
    let v = X[base];
    if (OP == 1u) { acc = max(acc, v); } else { acc += term(v); }
    base += p.inner;
  }
  if (OP != 1u) { acc = ((acc + a1) + (a2 + a3)) * p.scale; }
//#if ACC
  // A gradient gathered so far, added in the store (sumToShape's `take`): the engine's add.
  acc = YA[idx] + acc;
//#endif
  Y[idx] = acc;
}

// ---------------------------------------------------------------- one workgroup per output
// For GPUs, where the reduced elements are contiguous (inner = 1: the last axis): one
// invocation per output would read with a stride of a row between neighbouring lanes
// (uncoalesced). Here WG lanes walk one output's segment together and a tree in workgroup
// memory combines their terms. Only for inner = 1; on lavapipe the barriers make it slower
// (src/launch/reduce.ts, reduceVariantFor).

const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= p.outer * p.chunks) { return; } // uniform over the workgroup
  let c = idx % p.chunks;
  let start = (idx / p.chunks) * p.n + c * p.chunk;
  let stop = (idx / p.chunks) * p.n + min(c * p.chunk + p.chunk, p.n);
  // A max starts from the segment's first element (never empty: src/launch/reduce.ts
  // reduceChunks), so that -inf survives.
  var acc: f32;
  if (OP == 1u) { acc = X[start]; } else { acc = 0.0; }
  for (var j = start + lid; j < stop; j += WG) {
    if (OP == 1u) { acc = max(acc, X[j]); } else { acc += term(X[j]); }
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      if (OP == 1u) { red[lid] = max(red[lid], red[lid + w]); } else { red[lid] += red[lid + w]; }
    }
    workgroupBarrier();
  }
  if (lid != 0u) { return; }
  acc = red[0];
  if (OP != 1u) { acc *= p.scale; }
//#if ACC
  acc = YA[idx] + acc;
//#endif
  Y[idx] = acc;
}
