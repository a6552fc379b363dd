// Fused scaled dot-product attention, forward and backward, without materialising the
// [Lq, Lk] score matrix (online softmax, as in FlashAttention).
//
//   O_i = sum_j softmax_j(scale * q_i . k_j + maskbias_j) v_j
//   Stats_i = (m_i, log l_i): the largest score m_i and l_i = sum_j exp(score_ij - m_i)
//
// q: [B, H, Lq, D], k and v: [B, Hkv, Lk, D] with H = Hkv * GRP (grouped-query attention:
// query head h reads key/value head h / GRP; GRP = 1 is ordinary multi-head attention).
// Rows may also lie as [B, Lq, H, D] and [B, Lk, Hkv, D] (layout 'blhd', the projections'
// own layout, so no permuted copies): row i of head h of batch b is row
// b * qsb + h * qsh + i * qsl of Q, O, dO and dQ (ksb, ksh, ksl for K, V, dK, dV; in rows of
// HD4 vec4s). The statistics Stats and Delta are [B, H, Lq] in either layout.
// mask (MASK): [B, Lk] with 1 = attend, 0 = skip. CAUSAL: query i attends keys
// j <= i + (Lk - Lq) only (p.off = Lk - Lq; j <= i when Lq = Lk).
//
// D = 4 * HD4 (other head widths run on copies padded with zeros, kernels/pad.wgsl). A lane
// keeps its own rows (q and the output accumulator; in the backward also dO or k, v and the
// gradients) as private arrays of HL vec4s, indexed with constants inside unrolled blocks
// (//#unroll d CH), which the compiler keeps in registers: one statement per vec4, the
// fastest code, but its compile time grows faster than D (on lavapipe a full unroll of
// D = 256 took minutes). Wide heads are therefore either split over P lanes (PARTS, below)
// or, in the plain kernel, walked in NCH > 1 chunks of CH vec4s by a loop (DYN: run-time
// indices into the private arrays, slower, compiled in seconds); HL = NCH * CH, and
// entries past the head (PADV) are zero.
// A workgroup holds 64 lanes: 64 / P queries (or keys) of one (batch, head), so the key (or
// query) walked by the inner loop is the same for every lane: on a CPU driver its loads are
// scalar loads shared by the whole SIMD vector.
//
// attention             O, Stats
// attention_backward_q  Delta_i = dO_i . O_i, dq_i = scale * sum_j P_ij (dO_i . v_j - Delta_i) k_j
// attention_backward_kv dv_j = sum_i P_ij dO_i, dk_j = scale * sum_i P_ij (dO_i . v_j - Delta_i) q_i
//                       (sums over the GRP query heads that share the key/value head)
// with P_ij = exp((scale * q_i . k_j - m_i) - log l_i) recomputed from the saved Stats. The
// log-sum-exp m_i + log l_i is never formed: rounded to f32 it would lose log l_i against a
// large m_i (scores of 1e4 have an ulp of 1e-3: every P_ij of the query off by up to 5e-4
// relative), while score - m_i is exact for scores near m_i (Sterbenz) and the rest have
// probabilities too small to matter.
//
// SG (subgroups of at least G lanes): the row the inner loop walks (a key and value row,
// or a query and its output gradient) is loaded cooperatively: lane q of each group of G
// loads vec4 slices q, q + G, ... (SPC of them per chunk) and the group shares them by
// broadcast. One per-lane load instead of HL loads per row: on lavapipe,
// where every storage load costs tens of cycles per SIMD vector and a broadcast one
// shuffle, this is what makes the fused kernel faster than matmul + softmax + matmul.

//#if SG
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif

// Lane layout. Each query (or key, in attention_backward_kv) is held by P lanes of one
// block of G (PARTS, subgroup kernel only): lane q = p * QPG + qi of the block holds slices
// [p * HL, (p + 1) * HL) of query qi of the block's QPG = G / P queries, and the partial dot
// products are summed across the P lanes by shuffles (partSum). A lane thus keeps HL vec4s
// per row (the op keeps HL <= 16 or 32) whatever D is: the unrolled code and its register
// pressure stay those of D = 64 or 128. The price: each walked row serves QPG queries, not
// G. A workgroup holds QW = 64 / P queries. (PARTS assumes that subgroup invocation ids
// follow local_invocation_index within blocks of G, as on every implementation known.)
//
// ROW(arr, shares, r, d): slice d (a vec4) of this lane's part of the chunk at element
// offset r of arr. With subgroups, slice d of part p sits in share d / QPG of lane
// p * QPG + d % QPG (see slice()).
//#if SG
//#if PARTS
//#if SGEXACT
//#define ROW(arr, sh, r, d) subgroupShuffle(sh{d / QPG}, pl + {d % QPG}u)
//#else
//#define ROW(arr, sh, r, d) subgroupShuffle(sh{d / QPG}, lane - q + pl + {d % QPG}u)
//#endif
//#else
//#if SGEXACT
//#define ROW(arr, sh, r, d) subgroupBroadcast(sh{d / G}, {d % G}u)
//#else
//#define ROW(arr, sh, r, d) subgroupShuffle(sh{d / G}, lane - q + {d % G}u)
//#endif
//#endif
//#else
//#define ROW(arr, sh, r, d) arr[r + {d}u]
//#endif

// OWN(arr, row, x): slice ph + x of this lane's own row; zero past the head (PADV).
//#if PADV
//#define OWN(arr, row, x) select(vec4f(0.0), arr[row * {HD4}u + min(ph + x, {HD4}u - 1u)], ph + x < {HD4}u)
//#else
//#define OWN(arr, row, x) arr[row * {HD4}u + ph + x]
//#endif

// The lane's slot: its part p (slices from ph = p * HL, lanes from pl = p * QPG of its
// block) and its query (or key) index within the dispatch, i = wg.x * QW + ...
//#if SG
//#if PARTS
//#define LANE(i) let q = lane % {G}u; let part = q / {QPG}u; let pl = part * {QPG}u; let ph = part * {HL}u; let i = wg.x * {QW}u + (t / {G}u) * {QPG}u + q % {QPG}u;
//#else
//#define LANE(i) let q = lane % {G}u; let ph = 0u; let i = wg.x * 64u + t;
//#endif
//#else
//#define LANE(i) let ph = 0u; let i = wg.x * 64u + t;
//#endif

// Rows (or keys) past the end leave at once, a whole subgroup of them together: a 129-token
// window runs as 64 + 64 + 1 rows, and the last workgroup's other seven subgroups would walk
// every key for nothing. A subgroup with one row in range stays whole, for the shared loads.
//#if SG
//#define PAST_END(i, n) if (subgroupAll(i >= n)) { return; }
//#else
//#define PAST_END(i, n) if (i >= n) { return; }
//#endif

// The chunk loops' trip count: a constant when there is one chunk (the loop disappears and
// the private arrays become registers), a uniform otherwise (so that the compiler cannot
// unroll the chunks back into one huge block).
fn chunks() -> u32 {
//#if DYN
  return p.nch;
//#else
  return {NCH}u;
//#endif
}

// Parameters and bindings: attentionKernel in src/launch/attention.ts.

// Element offset of share s of this lane (block lane q) for chunk c of the row at r: slice
// ph + c * CH + s * QPG + q % QPG (clamped: lanes past the row's end reload its last
// slice, which meets only zeros).
fn slice(r: u32, ph: u32, q: u32, c: u32, s: u32) -> u32 {
  return r + min(ph + c * {CH}u + s * {QPG}u + q % {QPG}u, {HD4}u - 1u);
}

// Sums partial dot products over the P lanes of a query (the same result in each).
fn partSum(x: vec2f) -> vec2f {
  var y = x;
//#if PARTS
  for (var m = {QPG}u; m < {G}u; m *= 2u) { y += subgroupShuffleXor(y, m); }
//#endif
  return y;
}

fn partSum1(x: f32) -> f32 {
  var y = x;
//#if PARTS
  for (var m = {QPG}u; m < {G}u; m *= 2u) { y += subgroupShuffleXor(y, m); }
//#endif
  return y;
}

fn keep(b: u32, j: u32) -> bool {
//#if MASK
  return mask[b * p.Lk + j] != 0.0;
//#else
  return true;
//#endif
}

// The keys [0, end) that some query of the block [i0, i0 + QW) may attend.
fn keyEnd(i0: u32) -> u32 {
//#if CAUSAL
  return u32(clamp(i32(min(i0 + {QW}u, p.Lq)) + p.off, 0, i32(p.Lk)));
//#else
  return p.Lk;
//#endif
}

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
  LANE(i)
  PAST_END(i, p.Lq)
  let bh = wg.y;
  let b = bh / p.H;
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let row = bh * p.Lq + min(i, p.Lq - 1u);
  let qrow = b * p.qsb + (bh % p.H) * p.qsh + min(i, p.Lq - 1u) * p.qsl;
  var qv: array<vec4f, {HL}>;
  var acc: array<vec4f, {HL}>;
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    qv[c * {CH}u + {d}u] = OWN(Q, qrow, c * {CH}u + {d}u) * p.scale;
    acc[c * {CH}u + {d}u] = vec4f(0.0);
//#end
  }
  // -1e30, not -inf: exp(m - mNew) stays finite (0) before the first kept key.
  var m = -1e30;
  var l = 0.0;
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
//#if CAUSAL
  let last = i32(i) + p.off;
//#endif
  let jEnd = keyEnd(wg.x * {QW}u);
  for (var j = 0u; j < jEnd; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j * p.ksl) * {HD4}u;
    var s = 0.0;
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      s += dot(qv[c * {CH}u + {d}u], ROW(K, ks, kr + ph + c * {CH}u, d));
//#end
    }
//#if PARTS
    s = partSum1(s);
//#endif
//#if CAUSAL
    // Keys past this query's diagonal change nothing (every lane still walks them, for the
    // subgroup's shared loads).
    let ok = i32(j) <= last;
    let mNew = select(m, max(m, s), ok);
    let pj = select(0.0, exp(s - mNew), ok);
//#else
    let mNew = max(m, s);
    let pj = exp(s - mNew);
//#endif
    let corr = exp(m - mNew);
    l = l * corr + pj;
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let vs{s} = V[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      acc[c * {CH}u + {d}u] = acc[c * {CH}u + {d}u] * corr + pj * ROW(V, vs, kr + ph + c * {CH}u, d);
//#end
    }
    m = mNew;
  }
  if (i >= p.Lq) { return; }
  // A query with no key to attend to gets a zero output (and a gradient of zero).
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    if (ph + c * {CH}u + {d}u < {HD4}u) { O[qrow * {HD4}u + ph + c * {CH}u + {d}u] = acc[c * {CH}u + {d}u] * inv; }
//#end
  }
  if (ph == 0u) { Stats[row] = select(vec2f(-1e30, 0.0), vec2f(m, log(l)), l > 0.0); }
}

@compute @workgroup_size(64)
fn attention_backward_q(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
  LANE(i)
  PAST_END(i, p.Lq)
  let bh = wg.y;
  let b = bh / p.H;
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let row = bh * p.Lq + min(i, p.Lq - 1u);
  let qrow = b * p.qsb + (bh % p.H) * p.qsh + min(i, p.Lq - 1u) * p.qsl;
  var delta = 0.0;
  var qv: array<vec4f, {HL}>;
  var gv: array<vec4f, {HL}>;
  var dq: array<vec4f, {HL}>;
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    qv[c * {CH}u + {d}u] = OWN(Q, qrow, c * {CH}u + {d}u) * p.scale;
    gv[c * {CH}u + {d}u] = OWN(dO, qrow, c * {CH}u + {d}u);
    delta += dot(gv[c * {CH}u + {d}u], OWN(Oin, qrow, c * {CH}u + {d}u));
    dq[c * {CH}u + {d}u] = vec4f(0.0);
//#end
  }
//#if PARTS
  delta = partSum1(delta);
//#endif
  let st = StatsIn[row];
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
//#if CAUSAL
  let last = i32(i) + p.off;
//#endif
  let jEnd = keyEnd(wg.x * {QW}u);
  for (var j = 0u; j < jEnd; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j * p.ksl) * {HD4}u;
    var s = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
      let vs{s} = V[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      s += dot(qv[c * {CH}u + {d}u], ROW(K, ks, kr + ph + c * {CH}u, d));
      dp += dot(gv[c * {CH}u + {d}u], ROW(V, vs, kr + ph + c * {CH}u, d));
//#end
    }
//#if PARTS
    let sdp = partSum(vec2f(s, dp));
    s = sdp.x;
    dp = sdp.y;
//#endif
//#if CAUSAL
    let ds = select(0.0, exp((s - st.x) - st.y) * (dp - delta), i32(j) <= last);
//#else
    let ds = exp((s - st.x) - st.y) * (dp - delta);
//#endif
    // The key row again rather than kept from the loop above (HL fewer live vec4s; with
    // one chunk the compiler merges the repeated loads).
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      dq[c * {CH}u + {d}u] += ds * ROW(K, ks, kr + ph + c * {CH}u, d);
//#end
    }
  }
  if (i >= p.Lq) { return; }
  if (ph == 0u) { Delta[row] = delta; }
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    if (ph + c * {CH}u + {d}u < {HD4}u) { dQ[qrow * {HD4}u + ph + c * {CH}u + {d}u] = dq[c * {CH}u + {d}u] * p.scale; }
//#end
  }
}

@compute @workgroup_size(64)
fn attention_backward_kv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
  LANE(j)
  PAST_END(j, p.Lk)
  // wg.y: (batch, key/value head); the GRP query heads h = kvh * GRP + g share it.
  let bkv = wg.y;
  let Hkv = p.H / p.GRP;
  let b = bkv / Hkv;
  let krow = b * p.ksb + (bkv % Hkv) * p.ksh + min(j, p.Lk - 1u) * p.ksl;
  let kept = keep(b, min(j, p.Lk - 1u));
  var kv: array<vec4f, {HL}>;
  var vv: array<vec4f, {HL}>;
  var dk: array<vec4f, {HL}>;
  var dv: array<vec4f, {HL}>;
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    kv[c * {CH}u + {d}u] = OWN(K, krow, c * {CH}u + {d}u) * p.scale;
    vv[c * {CH}u + {d}u] = OWN(V, krow, c * {CH}u + {d}u);
    dk[c * {CH}u + {d}u] = vec4f(0.0);
    dv[c * {CH}u + {d}u] = vec4f(0.0);
//#end
  }
//#if CAUSAL
  // Query i sees this key when i + off >= j; the block's first key bounds where to start.
  let first = i32(j) - p.off;
  let iStart = u32(clamp(i32(wg.x * {QW}u) - p.off, 0, i32(p.Lq)));
//#else
  let iStart = 0u;
//#endif
  for (var g = 0u; g < p.GRP; g++) {
    let h = (bkv % Hkv) * p.GRP + g;
    // qbase: the head's statistics; qb: its rows of Q and dO.
    let qbase = (b * p.H + h) * p.Lq;
    let qb = b * p.qsb + h * p.qsh;
    for (var i = iStart; i < p.Lq; i++) {
      let r = (qb + i * p.qsl) * {HD4}u;
      var s = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
        let qs{s} = Q[slice(r, ph, q, c, {s}u)];
        let gs{s} = dO[slice(r, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
        s += dot(ROW(Q, qs, r + ph + c * {CH}u, d), kv[c * {CH}u + {d}u]);
        dp += dot(ROW(dO, gs, r + ph + c * {CH}u, d), vv[c * {CH}u + {d}u]);
//#end
      }
//#if PARTS
      let sdp = partSum(vec2f(s, dp));
      s = sdp.x;
      dp = sdp.y;
//#endif
      let st = StatsIn[qbase + i];
//#if CAUSAL
      let pij = select(0.0, exp((s - st.x) - st.y), kept && i32(i) >= first);
//#else
      let pij = select(0.0, exp((s - st.x) - st.y), kept);
//#endif
      let ds = pij * (dp - DeltaIn[qbase + i]);
      for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
        let qs{s} = Q[slice(r, ph, q, c, {s}u)];
        let gs{s} = dO[slice(r, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
        dv[c * {CH}u + {d}u] += pij * ROW(dO, gs, r + ph + c * {CH}u, d);
        dk[c * {CH}u + {d}u] += ds * ROW(Q, qs, r + ph + c * {CH}u, d);
//#end
      }
    }
  }
  if (j >= p.Lk) { return; }
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
    if (ph + c * {CH}u + {d}u < {HD4}u) {
      dK[krow * {HD4}u + ph + c * {CH}u + {d}u] = dk[c * {CH}u + {d}u] * p.scale;
      dV[krow * {HD4}u + ph + c * {CH}u + {d}u] = dv[c * {CH}u + {d}u];
    }
//#end
  }
}
