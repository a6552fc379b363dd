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
// block), its index i within the dispatch's first p.rs rows (i = wg.x * QW + ...), and its
// RPL rows (queries, or keys in attention_backward_kv) i + u * p.rs, u < RPL (ROWS, below).
//#if SG
//#if PARTS
//#define LANE(i) let q = lane % {G}u; let part = q / {QPG}u; let pl = part * {QPG}u; let ph = part * {HL}u; let i = wg.x * {QW}u + (t / {G}u) * {QPG}u + q % {QPG}u;
//#else
//#define LANE(i) let q = lane % {G}u; let ph = 0u; let i = wg.x * 64u + t;
//#endif
//#else
//#define LANE(i) let ph = 0u; let i = wg.x * 64u + t;
//#endif

// ROWS: each lane holds RPL rows (queries, or keys in attention_backward_kv) p.rs apart (a
// multiple of 8, >= ceil(L / RPL)): each walked row, loaded once per subgroup and broadcast,
// then serves RPL times as many rows (on lavapipe its loads cost more than one row's
// arithmetic). Each row's statements are those of RPL = 1, in order: the same bits. Suffix
// {u}: row u of the lane; a lane past p.rs (in a subgroup wider than 8) has no rows.
//#define ROWU(i, k, n) select(n, i + {k}u * p.rs, i < p.rs)

// Rows (or keys) past the end leave at once, a whole subgroup of them together (else they
// would walk every key for nothing); a subgroup with one row in range stays whole, for the
// shared loads. (i is the lane's first row: if it is past the end, so are the others.)
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

// Causal attention walks only the keys that some query sharing the walk may attend: up to
// the diagonal of the largest row of the subgroup (with subgroups, whose lanes walk
// together) or of the workgroup (without). `last`: the lane's last row (past the end when
// it has none). Keys past a row's diagonal change nothing, so the bound leaves every bit
// as it was. (The key/value backward starts, likewise, at the smallest key's diagonal.)
//#if SG
//#define TOPROW(last) subgroupMax(min(last, p.Lq - 1u))
//#define FIRSTKEY(j) subgroupMin(j)
//#else
//#define TOPROW(last) min(wg.x * {QW}u + {QW - 1}u + {RPL - 1}u * p.rs, p.Lq - 1u)
//#define FIRSTKEY(j) wg.x * {QW}u
//#endif
fn keyEnd(top: u32) -> u32 {
//#if CAUSAL
  return u32(clamp(i32(top) + 1 + p.off, 0, i32(p.Lk)));
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
  PAST_END(i, min(p.rs, p.Lq))
  let bh = wg.y;
  let b = bh / p.H;
//#unroll u RPL
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let i{u} = ROWU(i, u, p.Lq);
  let row{u} = bh * p.Lq + min(i{u}, p.Lq - 1u);
  let qrow{u} = b * p.qsb + (bh % p.H) * p.qsh + min(i{u}, p.Lq - 1u) * p.qsl;
  var qv{u}: array<vec4f, {HL}>;
  var acc{u}: array<vec4f, {HL}>;
  // -1e30, not -inf: exp(m - mNew) stays finite (0) before the first kept key.
  var m{u} = -1e30;
  var l{u} = 0.0;
//#if CAUSAL
  let last{u} = i32(i{u}) + p.off;
//#endif
//#end
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
//#unroll u RPL
    qv{u}[c * {CH}u + {d}u] = OWN(Q, qrow{u}, c * {CH}u + {d}u) * p.scale;
    acc{u}[c * {CH}u + {d}u] = vec4f(0.0);
//#end
//#end
  }
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
  let jEnd = keyEnd(TOPROW(i{RPL - 1}));
  for (var j = 0u; j < jEnd; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j * p.ksl) * {HD4}u;
//#unroll u RPL
    var sc{u} = 0.0;
//#end
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      let kd{d} = ROW(K, ks, kr + ph + c * {CH}u, d);
//#unroll u RPL
      sc{u} += dot(qv{u}[c * {CH}u + {d}u], kd{d});
//#end
//#end
    }
//#unroll u RPL
//#if PARTS
    sc{u} = partSum1(sc{u});
//#endif
//#if CAUSAL
    // Keys past this query's diagonal change nothing (every lane still walks them, for the
    // subgroup's shared loads).
    let ok{u} = i32(j) <= last{u};
    let mNew{u} = select(m{u}, max(m{u}, sc{u}), ok{u});
    let pj{u} = select(0.0, exp(sc{u} - mNew{u}), ok{u});
//#else
    let mNew{u} = max(m{u}, sc{u});
    let pj{u} = exp(sc{u} - mNew{u});
//#endif
    let corr{u} = exp(m{u} - mNew{u});
    l{u} = l{u} * corr{u} + pj{u};
//#end
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let vs{s} = V[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      let vd{d} = ROW(V, vs, kr + ph + c * {CH}u, d);
//#unroll u RPL
      acc{u}[c * {CH}u + {d}u] = acc{u}[c * {CH}u + {d}u] * corr{u} + pj{u} * vd{d};
//#end
//#end
    }
//#unroll u RPL
    m{u} = mNew{u};
//#end
  }
//#unroll u RPL
  if (i{u} < p.Lq) {
    // A query with no key to attend to gets a zero output (and a gradient of zero).
    let inv = select(0.0, 1.0 / l{u}, l{u} > 0.0);
    for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
      if (ph + c * {CH}u + {d}u < {HD4}u) { O[qrow{u} * {HD4}u + ph + c * {CH}u + {d}u] = acc{u}[c * {CH}u + {d}u] * inv; }
//#end
    }
    if (ph == 0u) { Stats[row{u}] = select(vec2f(-1e30, 0.0), vec2f(m{u}, log(l{u})), l{u} > 0.0); }
  }
//#end
}

@compute @workgroup_size(64)
fn attention_backward_q(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
  LANE(i)
  PAST_END(i, min(p.rs, p.Lq))
  let bh = wg.y;
  let b = bh / p.H;
//#unroll u RPL
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let i{u} = ROWU(i, u, p.Lq);
  let row{u} = bh * p.Lq + min(i{u}, p.Lq - 1u);
  let qrow{u} = b * p.qsb + (bh % p.H) * p.qsh + min(i{u}, p.Lq - 1u) * p.qsl;
  var delta{u} = 0.0;
  var qv{u}: array<vec4f, {HL}>;
  var gv{u}: array<vec4f, {HL}>;
  var dq{u}: array<vec4f, {HL}>;
//#if CAUSAL
  let last{u} = i32(i{u}) + p.off;
//#endif
//#end
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
//#unroll u RPL
    qv{u}[c * {CH}u + {d}u] = OWN(Q, qrow{u}, c * {CH}u + {d}u) * p.scale;
    gv{u}[c * {CH}u + {d}u] = OWN(dO, qrow{u}, c * {CH}u + {d}u);
    delta{u} += dot(gv{u}[c * {CH}u + {d}u], OWN(Oin, qrow{u}, c * {CH}u + {d}u));
    dq{u}[c * {CH}u + {d}u] = vec4f(0.0);
//#end
//#end
  }
//#unroll u RPL
//#if PARTS
  delta{u} = partSum1(delta{u});
//#endif
  let st{u} = StatsIn[row{u}];
//#end
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
  let jEnd = keyEnd(TOPROW(i{RPL - 1}));
  for (var j = 0u; j < jEnd; j++) {
    if (!keep(b, j)) { continue; }
    let kr = (kbase + j * p.ksl) * {HD4}u;
//#unroll u RPL
    var sc{u} = 0.0;
    var dp{u} = 0.0;
//#end
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
      let vs{s} = V[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      let kd{d} = ROW(K, ks, kr + ph + c * {CH}u, d);
      let vd{d} = ROW(V, vs, kr + ph + c * {CH}u, d);
//#unroll u RPL
      sc{u} += dot(qv{u}[c * {CH}u + {d}u], kd{d});
      dp{u} += dot(gv{u}[c * {CH}u + {d}u], vd{d});
//#end
//#end
    }
//#unroll u RPL
//#if PARTS
    let sdp{u} = partSum(vec2f(sc{u}, dp{u}));
    sc{u} = sdp{u}.x;
    dp{u} = sdp{u}.y;
//#endif
//#if CAUSAL
    let ds{u} = select(0.0, exp((sc{u} - st{u}.x) - st{u}.y) * (dp{u} - delta{u}), i32(j) <= last{u});
//#else
    let ds{u} = exp((sc{u} - st{u}.x) - st{u}.y) * (dp{u} - delta{u});
//#endif
//#end
    // The key row again rather than kept from the loop above (HL fewer live vec4s; with
    // one chunk the compiler merges the repeated loads).
    for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
      let ks{s} = K[slice(kr, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
      let kd{d} = ROW(K, ks, kr + ph + c * {CH}u, d);
//#unroll u RPL
      dq{u}[c * {CH}u + {d}u] += ds{u} * kd{d};
//#end
//#end
    }
  }
//#unroll u RPL
  if (i{u} < p.Lq) {
    if (ph == 0u) { Delta[row{u}] = delta{u}; }
    for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
      if (ph + c * {CH}u + {d}u < {HD4}u) { dQ[qrow{u} * {HD4}u + ph + c * {CH}u + {d}u] = dq{u}[c * {CH}u + {d}u] * p.scale; }
//#end
    }
  }
//#end
}

@compute @workgroup_size(64)
fn attention_backward_kv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32
//#if SG
           , @builtin(subgroup_invocation_id) lane: u32
//#endif
) {
  LANE(j)
  PAST_END(j, min(p.rs, p.Lk))
  // wg.y: (batch, key/value head); the GRP query heads h = kvh * GRP + g share it.
  let bkv = wg.y;
  let Hkv = p.H / p.GRP;
  let b = bkv / Hkv;
//#unroll u RPL
  let j{u} = ROWU(j, u, p.Lk);
  let krow{u} = b * p.ksb + (bkv % Hkv) * p.ksh + min(j{u}, p.Lk - 1u) * p.ksl;
  let kept{u} = keep(b, min(j{u}, p.Lk - 1u));
  var kv{u}: array<vec4f, {HL}>;
  var vv{u}: array<vec4f, {HL}>;
  var dk{u}: array<vec4f, {HL}>;
  var dv{u}: array<vec4f, {HL}>;
//#if CAUSAL
  // Query i sees this key when i + off >= j.
  let first{u} = i32(j{u}) - p.off;
//#endif
//#end
  for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
//#unroll u RPL
    kv{u}[c * {CH}u + {d}u] = OWN(K, krow{u}, c * {CH}u + {d}u) * p.scale;
    vv{u}[c * {CH}u + {d}u] = OWN(V, krow{u}, c * {CH}u + {d}u);
    dk{u}[c * {CH}u + {d}u] = vec4f(0.0);
    dv{u}[c * {CH}u + {d}u] = vec4f(0.0);
//#end
//#end
  }
//#if CAUSAL
  let iStart = u32(clamp(i32(FIRSTKEY(j)) - p.off, 0, i32(p.Lq)));
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
//#unroll u RPL
      var sc{u} = 0.0;
      var dp{u} = 0.0;
//#end
      for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
        let qs{s} = Q[slice(r, ph, q, c, {s}u)];
        let gs{s} = dO[slice(r, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
        let qd{d} = ROW(Q, qs, r + ph + c * {CH}u, d);
        let gd{d} = ROW(dO, gs, r + ph + c * {CH}u, d);
//#unroll u RPL
        sc{u} += dot(qd{d}, kv{u}[c * {CH}u + {d}u]);
        dp{u} += dot(gd{d}, vv{u}[c * {CH}u + {d}u]);
//#end
//#end
      }
      let st = StatsIn[qbase + i];
      let delta = DeltaIn[qbase + i];
//#unroll u RPL
//#if PARTS
      let sdp{u} = partSum(vec2f(sc{u}, dp{u}));
      sc{u} = sdp{u}.x;
      dp{u} = sdp{u}.y;
//#endif
//#if CAUSAL
      let pij{u} = select(0.0, exp((sc{u} - st.x) - st.y), kept{u} && i32(i) >= first{u});
//#else
      let pij{u} = select(0.0, exp((sc{u} - st.x) - st.y), kept{u});
//#endif
      let ds{u} = pij{u} * (dp{u} - delta);
//#end
      for (var c = 0u; c < chunks(); c++) {
//#if SG
//#unroll s SPC
        let qs{s} = Q[slice(r, ph, q, c, {s}u)];
        let gs{s} = dO[slice(r, ph, q, c, {s}u)];
//#end
//#endif
//#unroll d CH
        let qd{d} = ROW(Q, qs, r + ph + c * {CH}u, d);
        let gd{d} = ROW(dO, gs, r + ph + c * {CH}u, d);
//#unroll u RPL
        dv{u}[c * {CH}u + {d}u] += pij{u} * gd{d};
        dk{u}[c * {CH}u + {d}u] += ds{u} * qd{d};
//#end
//#end
      }
    }
  }
//#unroll u RPL
  if (j{u} < p.Lk) {
    for (var c = 0u; c < chunks(); c++) {
//#unroll d CH
      if (ph + c * {CH}u + {d}u < {HD4}u) {
        dK[krow{u} * {HD4}u + ph + c * {CH}u + {d}u] = dk{u}[c * {CH}u + {d}u] * p.scale;
        dV[krow{u} * {HD4}u + ph + c * {CH}u + {d}u] = dv{u}[c * {CH}u + {d}u];
      }
//#end
    }
  }
//#end
}
