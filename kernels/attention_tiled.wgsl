// Fused scaled dot-product attention with key/value tiles in workgroup memory, in the
// manner of FlashAttention-2: the variant for real GPUs (gpu.tuning.attention.variant =
// 'tiled'). Same inputs, outputs and saved statistics as kernels/attention.wgsl (see there
// for the formulas, the grouped-query and causal conventions and why (m, log l) are kept
// apart), so a forward of one variant and a backward of the other agree.
//
// Layout. A workgroup of T = NR * R invocations owns NR rows (queries in attention and
// attention_tiled_backward_q, keys in attention_tiled_backward_kv) of one (batch, head).
// Each row is held by R invocations ("parts"): part r keeps vec4 slices r, r + R, r + 2R,
// ... of the row (HL = NC * CL of them, 8 or fewer in the automatic layouts; zero past the
// head), so a query's q and output accumulator stay in registers whatever the head width
// (D = 128: R = 4, 32 floats each). The other side (keys and values, or queries and output
// gradients) streams through workgroup memory in tiles of NT rows, loaded cooperatively
// with coalesced loads: each tile is read from memory once per workgroup.
//
// Per tile, the R parts of a row compute partial dot products over their slices and write
// them to Sa (and Sb) at [tile row][invocation]; after a barrier every part sums the R
// partials of its row in the same order (score()), so the R parts hold bit-identical
// scores, maxima and sums without a second reduction. (All invocations walk the same tile
// row at once: the reads of the rows' partials fall in distinct banks, R apart, or
// coincide.) The three kernels sum a score's terms in the same order whatever the tile and
// chunk sizes (R depends on the head width only), so the backward recomputes exactly the
// forward's scores, the saved m among them.
//
// Head widths whose tile does not fit in workgroup memory are walked in NC chunks of
// DC = CL * R vec4s (chunk c holds slices [c * DC, (c + 1) * DC), i.e. each part's slices
// c * CL .. c * CL + CL - 1): the dot products over all chunks first, then the updates
// chunk by chunk in reverse, so that the chunk last loaded is used before any reload.
// Every chunk loop is unrolled (//#unroll c NC), so the private arrays are indexed by
// constants only and stay in registers.

// F16T (variant 'tiled-f16', forward and backward q): the key and value tiles hold f16
// (converted when staged: keys and values rounded to f16, 2^-11 relative), widened to f32
// before every product, so all arithmetic stays f32; half the workgroup memory per tile.
// F16R (the same variant's backward kv, whose tiles stream queries and output gradients in
// f32): its own key and value rows are rounded to f16 the same way (on a device that rounds
// a conversion the same way in registers as into workgroup memory, which WGSL leaves open),
// so that it recomputes the forward's scores and the gradients are those of attention over
// the rounded keys and values. |k| and |v| past 65504 become infinite in f16.

// Parameters and bindings: attentionTiledKernel in src/launch/attention.ts.

//#if F16T
enable f16;
alias TV = vec4<f16>;
//#else
alias TV = vec4f;
//#endif
//#if F16R
enable f16;
//#endif

// The streamed tile: keys and values (forward, backward q) or scaled queries and output
// gradients (backward kv), NT rows of one chunk of DC vec4s.
var<workgroup> Ta: array<TV, {NT * DC}>;
var<workgroup> Tb: array<TV, {NT * DC}>;
// Partial dot products q . k (Sa) and dO . v (Sb), [tile row][invocation].
var<workgroup> Sa: array<f32, {NT * T}>;
var<workgroup> Sb: array<f32, {NT * T}>;
// Per tile row: x = 1 for a key that exists and is not masked (forward, backward q); for a
// query (backward kv) its saved (m, log l), Delta and 1 where it exists.
var<workgroup> Rw: array<vec4f, {NT}>;

// Rows [r0, r0 + NT) of arr (row r at row base + r * sl of the buffer, see the strides in
// kernels/attention.wgsl; rows from n on read as zeros), chunk c, times mul, into tile.
//#define LOAD(tile, arr, base, sl, r0, n, c, mul) for (var x = t; x < {NT * DC}u; x += {T}u) { let r = r0 + x / {DC}u; let d = c * {DC}u + x % {DC}u; tile[x] = TV(select(vec4f(0.0), arr[(base + min(r, n - 1u) * sl) * {HD4}u + min(d, {HD4}u - 1u)], r < n && d < {HD4}u) * mul); }

// Slice d (a vec4 index into the head) of row `row` of arr, zero past the head.
//#if PADV
//#define OWN(arr, row, d) select(vec4f(0.0), arr[row * {HD4}u + min(d, {HD4}u - 1u)], d < {HD4}u)
//#else
//#define OWN(arr, row, d) arr[row * {HD4}u + d]
//#endif

// The trip count of the loops over a tile's rows: a constant on GPUs (unrolled there), a
// uniform on CPU drivers (DYNT), whose LLVM unrolls the constant loops too and then
// compiles for tens of seconds (one row's work is already HL vector operations).
fn tileRows() -> u32 {
//#if DYNT
  return p.nt;
//#else
  return {NT}u;
//#endif
}

// The row's score against tile row j: its R partials summed in order (r0: the row's first
// invocation).
fn score(j: u32, r0: u32) -> f32 {
  var s = 0.0;
//#unroll r R
  s += Sa[j * {T}u + r0 + {r}u];
//#end
  return s;
}

fn score2(j: u32, r0: u32) -> f32 {
  var s = 0.0;
//#unroll r R
  s += Sb[j * {T}u + r0 + {r}u];
//#end
  return s;
}

fn keep(b: u32, j: u32) -> bool {
//#if MASK
  return mask[b * p.Lk + j] != 0.0;
//#else
  return true;
//#endif
}

// The keys [0, end) that some query of the block [i0, i0 + NR) may attend.
fn keyEnd(i0: u32) -> u32 {
//#if CAUSAL
  return u32(clamp(i32(min(i0 + {NR}u, p.Lq)) + p.off, 0, i32(p.Lk)));
//#else
  return p.Lk;
//#endif
}

// Whether tile row j (key kj) counts for this query (forward and backward q).
//#if CAUSAL
//#define OK(j, kj) (Rw[j].x != 0.0 && i32(kj) <= last)
//#else
//#define OK(j, kj) (Rw[j].x != 0.0)
//#endif

@compute @workgroup_size({T})
fn attention_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let part = t % {R}u;
  let r0 = t - part;
  let i = wg.x * {NR}u + t / {R}u;
  let bh = wg.y;
  let b = bh / p.H;
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let row = bh * p.Lq + min(i, p.Lq - 1u);
  let qrow = b * p.qsb + (bh % p.H) * p.qsh + min(i, p.Lq - 1u) * p.qsl;
  var qv: array<vec4f, {HL}>;
  var acc: array<vec4f, {HL}>;
//#unroll k HL
  qv[{k}] = OWN(Q, qrow, part + {R * k}u) * p.scale;
  acc[{k}] = vec4f(0.0);
//#end
  // -1e30, not -inf: exp(m - mNew) stays finite (0) before the first kept key.
  var m = -1e30;
  var l = 0.0;
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
//#if CAUSAL
  let last = i32(i) + p.off;
//#endif
  let jEnd = keyEnd(wg.x * {NR}u);
  for (var j0 = 0u; j0 < jEnd; j0 += {NT}u) {
    if (t < {NT}u) { Rw[t] = vec4f(select(0.0, 1.0, j0 + t < jEnd && keep(b, min(j0 + t, p.Lk - 1u)))); }
    // Scores: partial dot products over the chunks (the last chunk of V comes with the
    // last of K).
//#unroll c NC
    if ({c}u > 0u) { workgroupBarrier(); }
    LOAD(Ta, K, kbase, p.ksl, j0, jEnd, {c}u, 1.0)
    if ({c}u + 1u == {NC}u) { LOAD(Tb, V, kbase, p.ksl, j0, jEnd, {c}u, 1.0) }
    workgroupBarrier();
    for (var j = 0u; j < tileRows(); j++) {
      var s = select(0.0, Sa[j * {T}u + t], {c}u > 0u);
//#unroll k CL
      s += dot(qv[{c * CL + k}], vec4f(Ta[j * {DC}u + part + {R * k}u]));
//#end
      Sa[j * {T}u + t] = s;
    }
//#end
    workgroupBarrier();
    // Online softmax over the tile: rescale once per tile, not once per key.
    var mt = m;
    for (var j = 0u; j < tileRows(); j++) {
      mt = select(mt, max(mt, score(j, r0)), OK(j, j0 + j));
    }
    let corr = exp(m - mt);
    m = mt;
    l *= corr;
//#unroll k HL
    acc[{k}] *= corr;
//#end
//#unroll c NC
    if ({c}u > 0u) {
      workgroupBarrier();
      LOAD(Tb, V, kbase, p.ksl, j0, jEnd, {NC - 1 - c}u, 1.0)
      workgroupBarrier();
    }
    for (var j = 0u; j < tileRows(); j++) {
      let pj = select(0.0, exp(score(j, r0) - m), OK(j, j0 + j));
      if ({c}u == 0u) { l += pj; }
//#unroll k CL
      acc[{(NC - 1 - c) * CL + k}] += pj * vec4f(Tb[j * {DC}u + part + {R * k}u]);
//#end
    }
//#end
    workgroupBarrier();
  }
  if (i >= p.Lq) { return; }
  // A query with no key to attend to gets a zero output (and a gradient of zero).
  let inv = select(0.0, 1.0 / l, l > 0.0);
//#unroll k HL
  if (part + {R * k}u < {HD4}u) { O[qrow * {HD4}u + part + {R * k}u] = acc[{k}] * inv; }
//#end
  if (part == 0u) { Stats[row] = select(vec2f(-1e30, 0.0), vec2f(m, log(l)), l > 0.0); }
}

@compute @workgroup_size({T})
fn attention_tiled_backward_q(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let part = t % {R}u;
  let r0 = t - part;
  let i = wg.x * {NR}u + t / {R}u;
  let bh = wg.y;
  let b = bh / p.H;
  // row: the query's statistics ([B, H, Lq] always); qrow: its row of Q, O, dO, dQ.
  let row = bh * p.Lq + min(i, p.Lq - 1u);
  let qrow = b * p.qsb + (bh % p.H) * p.qsh + min(i, p.Lq - 1u) * p.qsl;
  var qv: array<vec4f, {HL}>;
  var gv: array<vec4f, {HL}>;
  var dq: array<vec4f, {HL}>;
  var dpart = 0.0;
//#unroll k HL
  qv[{k}] = OWN(Q, qrow, part + {R * k}u) * p.scale;
  gv[{k}] = OWN(dO, qrow, part + {R * k}u);
  dpart += dot(gv[{k}], OWN(Oin, qrow, part + {R * k}u));
  dq[{k}] = vec4f(0.0);
//#end
  // Delta = dO . O: the parts' partial sums, summed in order through Sa.
  Sa[t] = dpart;
  workgroupBarrier();
  let delta = score(0u, r0);
  let st = StatsIn[row];
  workgroupBarrier();
  let kbase = b * p.ksb + ((bh % p.H) / p.GRP) * p.ksh;
//#if CAUSAL
  let last = i32(i) + p.off;
//#endif
  let jEnd = keyEnd(wg.x * {NR}u);
  for (var j0 = 0u; j0 < jEnd; j0 += {NT}u) {
    if (t < {NT}u) { Rw[t] = vec4f(select(0.0, 1.0, j0 + t < jEnd && keep(b, min(j0 + t, p.Lk - 1u)))); }
//#unroll c NC
    if ({c}u > 0u) { workgroupBarrier(); }
    LOAD(Ta, K, kbase, p.ksl, j0, jEnd, {c}u, 1.0)
    LOAD(Tb, V, kbase, p.ksl, j0, jEnd, {c}u, 1.0)
    workgroupBarrier();
    for (var j = 0u; j < tileRows(); j++) {
      var s = select(0.0, Sa[j * {T}u + t], {c}u > 0u);
      var dp = select(0.0, Sb[j * {T}u + t], {c}u > 0u);
//#unroll k CL
      s += dot(qv[{c * CL + k}], vec4f(Ta[j * {DC}u + part + {R * k}u]));
      dp += dot(gv[{c * CL + k}], vec4f(Tb[j * {DC}u + part + {R * k}u]));
//#end
      Sa[j * {T}u + t] = s;
      Sb[j * {T}u + t] = dp;
    }
//#end
    workgroupBarrier();
    // dq += dS k, with dS = P (dO . v - Delta); the key chunks in reverse (the last is loaded).
//#unroll c NC
    if ({c}u > 0u) {
      workgroupBarrier();
      LOAD(Ta, K, kbase, p.ksl, j0, jEnd, {NC - 1 - c}u, 1.0)
      workgroupBarrier();
    }
    for (var j = 0u; j < tileRows(); j++) {
      let ds = select(0.0, exp((score(j, r0) - st.x) - st.y) * (score2(j, r0) - delta), OK(j, j0 + j));
//#unroll k CL
      dq[{(NC - 1 - c) * CL + k}] += ds * vec4f(Ta[j * {DC}u + part + {R * k}u]);
//#end
    }
//#end
    workgroupBarrier();
  }
  if (i >= p.Lq) { return; }
  if (part == 0u) { Delta[row] = delta; }
//#unroll k HL
  if (part + {R * k}u < {HD4}u) { dQ[qrow * {HD4}u + part + {R * k}u] = dq[{k}] * p.scale; }
//#end
}

@compute @workgroup_size({T})
fn attention_tiled_backward_kv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let part = t % {R}u;
  let r0 = t - part;
  let j = wg.x * {NR}u + t / {R}u;
  // wg.y: (batch, key/value head); the GRP query heads h = kvh * GRP + g share it.
  let bkv = wg.y;
  let Hkv = p.H / p.GRP;
  let b = bkv / Hkv;
  let krow = b * p.ksb + (bkv % Hkv) * p.ksh + min(j, p.Lk - 1u) * p.ksl;
  let kept = j < p.Lk && keep(b, min(j, p.Lk - 1u));
  var kv: array<vec4f, {HL}>;
  var vv: array<vec4f, {HL}>;
//#if F16R
  // 1 as an f16 the compiler cannot know: without it, the round trip f32 -> f16 -> f32 below
  // was folded away (lavapipe), leaving this kernel's keys and values unrounded.
  let one16 = f16(select(1.0, p.scale / p.scale, p.scale != 0.0));
//#endif
  var dk: array<vec4f, {HL}>;
  var dv: array<vec4f, {HL}>;
//#unroll k HL
//#if F16R
  kv[{k}] = vec4f(vec4<f16>(OWN(K, krow, part + {R * k}u)) * one16);
  vv[{k}] = vec4f(vec4<f16>(OWN(V, krow, part + {R * k}u)) * one16);
//#else
  kv[{k}] = OWN(K, krow, part + {R * k}u);
  vv[{k}] = OWN(V, krow, part + {R * k}u);
//#endif
  dk[{k}] = vec4f(0.0);
  dv[{k}] = vec4f(0.0);
//#end
//#if CAUSAL
  // Query i sees this key when i + off >= j; the block's first key bounds where to start.
  let first = i32(j) - p.off;
  let iStart = u32(clamp(i32(wg.x * {NR}u) - p.off, 0, i32(p.Lq)));
//#else
  let iStart = 0u;
//#endif
  for (var g = 0u; g < p.GRP; g++) {
    let h = (bkv % Hkv) * p.GRP + g;
    // qbase: the head's statistics; qb: its rows of Q and dO.
    let qbase = (b * p.H + h) * p.Lq;
    let qb = b * p.qsb + h * p.qsh;
    for (var i0 = iStart; i0 < p.Lq; i0 += {NT}u) {
      if (t < {NT}u) {
        let qr = qbase + min(i0 + t, p.Lq - 1u);
        let st = StatsIn[qr];
        Rw[t] = vec4f(st.x, st.y, DeltaIn[qr], select(0.0, 1.0, i0 + t < p.Lq));
      }
      // The queries come scaled, as in the forward (q * scale) . k: the same scores.
//#unroll c NC
      if ({c}u > 0u) { workgroupBarrier(); }
      LOAD(Ta, Q, qb, p.qsl, i0, p.Lq, {c}u, p.scale)
      LOAD(Tb, dO, qb, p.qsl, i0, p.Lq, {c}u, 1.0)
      workgroupBarrier();
      for (var ii = 0u; ii < tileRows(); ii++) {
        var s = select(0.0, Sa[ii * {T}u + t], {c}u > 0u);
        var dp = select(0.0, Sb[ii * {T}u + t], {c}u > 0u);
//#unroll k CL
        s += dot(vec4f(Ta[ii * {DC}u + part + {R * k}u]), kv[{c * CL + k}]);
        dp += dot(vec4f(Tb[ii * {DC}u + part + {R * k}u]), vv[{c * CL + k}]);
//#end
        Sa[ii * {T}u + t] = s;
        Sb[ii * {T}u + t] = dp;
      }
//#end
      workgroupBarrier();
      // dv += P dO, dk += dS (scale q); the chunks in reverse (the last is loaded).
//#unroll c NC
      if ({c}u > 0u) {
        workgroupBarrier();
        LOAD(Ta, Q, qb, p.qsl, i0, p.Lq, {NC - 1 - c}u, p.scale)
        LOAD(Tb, dO, qb, p.qsl, i0, p.Lq, {NC - 1 - c}u, 1.0)
        workgroupBarrier();
      }
      for (var ii = 0u; ii < tileRows(); ii++) {
        let w = Rw[ii];
//#if CAUSAL
        let ok = kept && w.w != 0.0 && i32(i0 + ii) >= first;
//#else
        let ok = kept && w.w != 0.0;
//#endif
        let pij = select(0.0, exp((score(ii, r0) - w.x) - w.y), ok);
        let ds = pij * (score2(ii, r0) - w.z);
//#unroll k CL
        dv[{(NC - 1 - c) * CL + k}] += pij * vec4f(Tb[ii * {DC}u + part + {R * k}u]);
        dk[{(NC - 1 - c) * CL + k}] += ds * vec4f(Ta[ii * {DC}u + part + {R * k}u]);
//#end
      }
//#end
      workgroupBarrier();
    }
  }
  if (j >= p.Lk) { return; }
//#unroll k HL
  if (part + {R * k}u < {HD4}u) {
    dK[krow * {HD4}u + part + {R * k}u] = dk[{k}];
    dV[krow * {HD4}u + part + {R * k}u] = dv[{k}];
  }
//#end
}
