// Rotary position embedding over one or more axes (1 for text, 3 for CT volumes). Pair i of
// a head's dimensions is rotated by the angle in table row l, column i (the tables are built
// on the host from the token positions, see src/ops/rope.ts). Two pairings:
//   HALF (rotate-half, GPT-NeoX / Llama / Qwen3 / RadFinder): pair i = (i, i + half)
//   otherwise (interleaved, GPT-J / RoFormer):               pair i = (2i, 2i + 1)
//   y[a] = x[a] cos - x[b] sin,  y[b] = x[a] sin + x[b] cos
// The backward rotates by the negative angle (INVERSE). x is [batch, L, heads, D]; one
// invocation per (batch, l, head) row, so the division that finds l is paid per row. The first
// `prefix` tokens (a CLS token) are copied unrotated and token l reads table row l - prefix:
// in one dispatch what a slice, a rotation and a concat did in four.
//
// Parameters and bindings: ropeKernel in src/launch/rope.ts.

@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.rows) { return; }
  let l = (row / p.heads) % p.L;
  let base = row * 2u * p.half;
  if (l < p.prefix) {
    for (var i = 0u; i < 2u * p.half; i++) { Y[base + i] = X[base + i]; }
    return;
  }
  let t = (l - p.prefix) * p.half;
  for (var i = 0u; i < p.half; i++) {
    let c = cosT[t + i];
//#if INVERSE
    let s = -sinT[t + i];
//#else
    let s = sinT[t + i];
//#endif
//#if HALF
    let ia = base + i;
    let ib = base + i + p.half;
//#else
    let ia = base + 2u * i;
    let ib = ia + 1u;
//#endif
    let x0 = X[ia];
    let x1 = X[ib];
    Y[ia] = x0 * c - x1 * s;
    Y[ib] = x0 * s + x1 * c;
  }
}
