// Fused scaled dot-product attention, forward and backward, without materialising the
// [Lq, Lk] score matrix (online softmax, as in FlashAttention).
//
//   O_i = sum_j softmax_j(scale * q_i . k_j + maskbias_j) v_j,  LSE_i = log sum_j exp(...)
//
// q: [B, H, Lq, D], k and v: [B, H, Lk, D], mask (MASK): [B, Lk] with 1 = attend, 0 = skip.
// D = 4 * HD4 is a template constant: q, the accumulators and the gradients live in
// registers as HD4 vec4s. A workgroup holds 64 queries (or keys) of one (batch, head), so
// the key (or query) walked by the inner loop is the same for every lane: on a CPU driver
// its loads are scalar loads shared by the whole SIMD vector.
//
// attention             O, LSE
// attention_backward_q  Delta_i = dO_i . O_i, dq_i = scale * sum_j P_ij (dO_i . v_j - Delta_i) k_j
// attention_backward_kv dv_j = sum_i P_ij dO_i, dk_j = scale * sum_i P_ij (dO_i . v_j - Delta_i) q_i
// with P_ij = exp(scale * q_i . k_j - LSE_i) recomputed from the saved LSE.
//
// SG (subgroups of at least G lanes): the row the inner loop walks (a key and value row,
// or a query and its output gradient) is loaded cooperatively: lane q of each group of G
// loads vec4 slices q, q + G, ... (SPL of them) and the group shares them by broadcast.
// One per-lane load instead of HD4 loads per row: on lavapipe, where every storage load
// costs tens of cycles per SIMD vector and a broadcast one shuffle, this is what makes the
// fused kernel faster than matmul + softmax + matmul.

//#if SG
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif

// ROW(arr, shares, r, d): slice d (a vec4) of the row at element offset r of arr.
//#if SG
//#if SGEXACT
//#define ROW(arr, sh, r, d) subgroupBroadcast(sh{d / G}, {d % G}u)
//#else
//#define ROW(arr, sh, r, d) subgroupShuffle(sh{d / G}, lane - q + {d % G}u)
//#endif
//#else
//#define ROW(arr, sh, r, d) arr[r + {d}u]
//#endif

struct Params { B: u32, H: u32, Lq: u32, Lk: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4f>;
@group(0) @binding(2) var<storage, read> K: array<vec4f>;
@group(0) @binding(3) var<storage, read> V: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> O: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(7) var<storage, read> dO: array<vec4f>;
@group(0) @binding(8) var<storage, read> Oin: array<vec4f>;
@group(0) @binding(9) var<storage, read> LSEin: array<f32>;
@group(0) @binding(10) var<storage, read_write> Delta: array<f32>;
@group(0) @binding(11) var<storage, read> DeltaIn: array<f32>;
@group(0) @binding(12) var<storage, read_write> dQ: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> dK: array<vec4f>;
@group(0) @binding(14) var<storage, read_write> dV: array<vec4f>;

// Element offset of slice s of this lane's share of the row at r (clamped: lanes past the
// row's end reload its last slice).
fn slice(r: u32, q: u32, s: u32) -> u32 {
  return r + min(s * {G}u + q, {HD4}u - 1u);
}

fn keep(b: u32, j: u32) -> bool {
//#if MASK
  return mask[b * p.Lk + j] != 0.0;
//#else
  return true;
//#endif
}

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
//#if SG
  let q = lane % {G}u;
//#endif
  let bh = wg.y;
  let b = bh / p.H;
  let i = wg.x * 64u + t;
  let row = bh * p.Lq + min(i, p.Lq - 1u);
//#unroll d HD4
  let q{d} = Q[row * {HD4}u + {d}u] * p.scale;
  var acc{d} = vec4f(0.0);
//#end
  // -1e30, not -inf: exp(m - mNew) stays finite (0) before the first kept key.
  var m = -1e30;
  var l = 0.0;
  let kbase = bh * p.Lk;
  for (var j = 0u; j < p.Lk; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j) * {HD4}u;
//#if SG
//#unroll s SPL
    let ks{s} = K[slice(kr, q, {s}u)];
    let vs{s} = V[slice(kr, q, {s}u)];
//#end
//#endif
    var s = 0.0;
//#unroll d HD4
    s += dot(q{d}, ROW(K, ks, kr, d));
//#end
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let pj = exp(s - mNew);
    l = l * corr + pj;
//#unroll d HD4
    acc{d} = acc{d} * corr + pj * ROW(V, vs, kr, d);
//#end
    m = mNew;
  }
  if (i >= p.Lq) { return; }
  // A query with no key to attend to gets a zero output (and a gradient of zero).
  let inv = select(0.0, 1.0 / l, l > 0.0);
//#unroll d HD4
  O[row * {HD4}u + {d}u] = acc{d} * inv;
//#end
  LSE[row] = select(-1e30, m + log(l), l > 0.0);
}

@compute @workgroup_size(64)
fn attention_backward_q(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
//#if SG
  let q = lane % {G}u;
//#endif
  let bh = wg.y;
  let b = bh / p.H;
  let i = wg.x * 64u + t;
  let row = bh * p.Lq + min(i, p.Lq - 1u);
  var delta = 0.0;
//#unroll d HD4
  let q{d} = Q[row * {HD4}u + {d}u] * p.scale;
  let g{d} = dO[row * {HD4}u + {d}u];
  delta += dot(g{d}, Oin[row * {HD4}u + {d}u]);
  var dq{d} = vec4f(0.0);
//#end
  let lse = LSEin[row];
  let kbase = bh * p.Lk;
  for (var j = 0u; j < p.Lk; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j) * {HD4}u;
//#if SG
//#unroll s SPL
    let ks{s} = K[slice(kr, q, {s}u)];
    let vs{s} = V[slice(kr, q, {s}u)];
//#end
//#endif
    var s = 0.0;
    var dp = 0.0;
//#unroll d HD4
    let kd{d} = ROW(K, ks, kr, d);
    s += dot(q{d}, kd{d});
    dp += dot(g{d}, ROW(V, vs, kr, d));
//#end
    let ds = exp(s - lse) * (dp - delta);
//#unroll d HD4
    dq{d} += ds * kd{d};
//#end
  }
  if (i >= p.Lq) { return; }
  Delta[row] = delta;
//#unroll d HD4
  dQ[row * {HD4}u + {d}u] = dq{d} * p.scale;
//#end
}

@compute @workgroup_size(64)
fn attention_backward_kv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
//#if SG
  let q = lane % {G}u;
//#endif
  let bh = wg.y;
  let b = bh / p.H;
  let j = wg.x * 64u + t;
  let krow = bh * p.Lk + min(j, p.Lk - 1u);
  let kept = keep(b, min(j, p.Lk - 1u));
//#unroll d HD4
  let k{d} = K[krow * {HD4}u + {d}u] * p.scale;
  let v{d} = V[krow * {HD4}u + {d}u];
  var dk{d} = vec4f(0.0);
  var dv{d} = vec4f(0.0);
//#end
  let qbase = bh * p.Lq;
  for (var i = 0u; i < p.Lq; i++) {
    let r = (qbase + i) * {HD4}u;
//#if SG
//#unroll s SPL
    let qs{s} = Q[slice(r, q, {s}u)];
    let gs{s} = dO[slice(r, q, {s}u)];
//#end
//#endif
    var s = 0.0;
    var dp = 0.0;
//#unroll d HD4
    let qi{d} = ROW(Q, qs, r, d);
    let gi{d} = ROW(dO, gs, r, d);
    s += dot(qi{d}, k{d});
    dp += dot(gi{d}, v{d});
//#end
    let pij = select(0.0, exp(s - LSEin[qbase + i]), kept);
    let ds = pij * (dp - DeltaIn[qbase + i]);
//#unroll d HD4
    dv{d} += pij * gi{d};
    dk{d} += ds * qi{d};
//#end
  }
  if (j >= p.Lk) { return; }
//#unroll d HD4
  dK[krow * {HD4}u + {d}u] = dk{d} * p.scale;
  dV[krow * {HD4}u + {d}u] = dv{d};
//#end
}
