// Reduction over one axis of a tensor viewed as [outer, n, inner].
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
