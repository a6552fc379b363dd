// Batched matrix multiply: C[b] = op(A[b]) @ op(B[b]) (+ bias[n]), f32, any sizes.
//
// Element (m, k) of op(A[b]) is A[b * aBatch + m * sAm + k * sAk]; element (k, n) of
// op(B[b]) is B[b * bBatch + k * sBk + n * sBn]. Transposes are just other strides; a batch
// stride of 0 broadcasts an operand over the batch.
//
// Three kernels, picked by src/launch/matmul.ts (gpu.tuning.matmul, or the autotuned choice):
//
// matmul_sg (needs subgroups of at least 4 lanes): register-blocked for CPU drivers such as
//   lavapipe, where each invocation is one SIMD lane, every memory load is a per-lane
//   scalar access costing tens of cycles, and a subgroup broadcast is one register shuffle.
//   Lanes work in groups of GROUP (8 on lavapipe, 4 on SwiftShader). Each lane owns 4
//   adjacent columns for ROWS = 32 rows (32 vec4 accumulators). Per 4 steps of k a lane
//   loads one vec4 of A for each of ROWS / GROUP rows (the group together holds 32 rows x
//   4 k) and one vec4 of B per k; every A vec4 then reaches the whole group by a
//   broadcast. With GROUP = 8 that is 8 loads for 512 multiply-adds per lane, against 32
//   for a plain 8x8 register tile. Groups work independently, so subgroups wider than a
//   group work too (shuffles replace broadcasts).
//   With A^T (TA4; the weight gradient G^T X of a linear layer), A is stored [K, M] and a
//   vec4 along k would be 4 strided scalar loads; instead each lane loads, per k, one vec4
//   along m (4 adjacent rows), and a broadcast then carries 4 rows at one k instead of one
//   row at 4 k: the same 8 loads and 32 broadcasts per 4 steps of k.
// matmul_tiled: portable register-blocked kernel without subgroups: each invocation
//   computes 4 rows x 4 columns.
// matmul_wg (flag WGT; F16 for its f16 form): the layout for real GPUs, below.
//
// Flags (set by the launch from the shapes and strides):
//   VEC4A  A is row-major [M, K] with K % 4 == 0: A is read as vec4 along k
//   VEC4B  B is row-major [K, N] with N % 4 == 0: B is read as vec4 along n
//   TB4    op(B) = B^T with B stored [N, K], K % 4 == 0: read as vec4 along k
//   VEC4C  N % 4 == 0: C is written as vec4
//   BIAS   add bias[n]
//   SGEXACT the subgroup is exactly GROUP lanes (broadcast instead of shuffle)
//   WGT    compile matmul_wg (and leave out the other kernels' loaders)
//   TA4    op(A) = A^T with A stored [K, M], M % 4 == 0: read as vec4 along m (matmul_sg
//          also needs ROWS a multiple of 4 GROUP; see its transposed-A loop)
//   F16    (WGT) operands rounded to f16 in workgroup memory (needs shader-f16)
//   GELU, DGELU, RES, SCALE, KEEP, EPILOOP: the epilogues of store() (need VEC4C; store() is
//          in kernels/lib/matmul-store.wgsl, included)
//   UB     (matmul_sg, as entry matmul_sg_ub) B read from the uniform array BU, which holds
//          columns n0 .. n0 + nU - 1 of op(B): with TB4 rows n0 .. of B [N, K], a slab the
//          launch binds per dispatch; with VEC4B all of B. On lavapipe a lane-divergent
//          uniform load is straight-line gathers, a storage load a loop over the lanes
//          (kernel.ts uniform()): no faster on an AVX-512 EPYC, 1.2-1.7x on an AVX2 one.

//#if SUBGROUPS
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif
//#if F16
enable f16;
//#endif

// Parameters and bindings: matmulKernel in src/launch/matmul.ts. The element types of A, B
// and C depend on the flags:
//#if VEC4A
alias AE = vec4f;
//#else
//#if TA4
alias AE = vec4f;
//#else
alias AE = f32;
//#endif
//#endif
//#if VEC4B
alias BE = vec4f;
//#else
//#if TB4
alias BE = vec4f;
//#else
alias BE = f32;
//#endif
//#endif
//#if VEC4C
alias CE = vec4f;
//#else
alias CE = f32;
//#endif
// The element type of kernels/lib/exp.wgsl and lib/gelu.wgsl (included) in the epilogues.
alias T = vec4f;
alias TU = vec4u;
alias TI = vec4i;

//#if !WGT
override WG: u32 = 64u;

//#if TA4
// op(A)[b][m .. m + 3][k] with A stored [K, M], M % 4 == 0: rows past M are clamped (never
// stored), k past K reads 0 (B is clamped there, not zeroed).
fn loadAT(b: u32, m: u32, k: u32) -> vec4f {
  let v = A[(b * p.aBatch + min(k, p.K - 1u) * p.M + min(m, p.M - 4u)) / 4u];
  return select(vec4f(0.0), v, k < p.K);
}
//#else
// op(A)[b][m][4 k4 .. 4 k4 + 3]; rows past M are clamped (never stored), k past K reads 0.
fn loadA(b: u32, m: u32, k4: u32) -> vec4f {
  let mm = min(m, p.M - 1u);
//#if VEC4A
  return A[(b * p.aBatch + mm * p.K) / 4u + k4];
//#else
  let base = b * p.aBatch + mm * p.sAm;
  let k = k4 * 4u;
  let kl = p.K - 1u;
  return vec4f(
    select(0.0, A[base + min(k, kl) * p.sAk], k < p.K),
    select(0.0, A[base + min(k + 1u, kl) * p.sAk], k + 1u < p.K),
    select(0.0, A[base + min(k + 2u, kl) * p.sAk], k + 2u < p.K),
    select(0.0, A[base + min(k + 3u, kl) * p.sAk], k + 3u < p.K));
//#endif
}
//#endif

// op(B)[b][4 k4 + i][n .. n + 3] for i = 0..3. Rows past K and columns past N are clamped
// (A supplies zeros for k past K; columns past N are never stored).
struct Bk { b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f }

fn loadBk(b: u32, k4: u32, n: u32) -> Bk {
  let kl = p.K - 1u;
  let nl = p.N - 1u;
  let k = k4 * 4u;
//#if TB4
  // B stored [N, K]: one vec4 along k per column, transposed in registers (free on a CPU,
  // where each vec4 component is its own SIMD register).
//#if UB
  // Columns past the slab (past N: never stored) read its last row; the slab has no batch.
  let ul = p.nU - 1u;
  let t0 = BU[min(n - p.n0, ul) * (p.K / 4u) + k4];
  let t1 = BU[min(n + 1u - p.n0, ul) * (p.K / 4u) + k4];
  let t2 = BU[min(n + 2u - p.n0, ul) * (p.K / 4u) + k4];
  let t3 = BU[min(n + 3u - p.n0, ul) * (p.K / 4u) + k4];
//#else
  let t0 = B[(b * p.bBatch + min(n, nl) * p.K) / 4u + k4];
  let t1 = B[(b * p.bBatch + min(n + 1u, nl) * p.K) / 4u + k4];
  let t2 = B[(b * p.bBatch + min(n + 2u, nl) * p.K) / 4u + k4];
  let t3 = B[(b * p.bBatch + min(n + 3u, nl) * p.K) / 4u + k4];
//#endif
  return Bk(vec4f(t0.x, t1.x, t2.x, t3.x), vec4f(t0.y, t1.y, t2.y, t3.y),
            vec4f(t0.z, t1.z, t2.z, t3.z), vec4f(t0.w, t1.w, t2.w, t3.w));
//#else
//#if VEC4B
  let c4 = min(n / 4u, p.N / 4u - 1u);
  let base = b * p.bBatch / 4u + c4;
  let row = p.N / 4u;
//#if UB
  return Bk(BU[c4 + min(k, kl) * row], BU[c4 + min(k + 1u, kl) * row],
            BU[c4 + min(k + 2u, kl) * row], BU[c4 + min(k + 3u, kl) * row]);
//#else
  return Bk(B[base + min(k, kl) * row], B[base + min(k + 1u, kl) * row],
            B[base + min(k + 2u, kl) * row], B[base + min(k + 3u, kl) * row]);
//#endif
//#else
  let base = b * p.bBatch;
  return Bk(loadBRow(base + min(k, kl) * p.sBk, n), loadBRow(base + min(k + 1u, kl) * p.sBk, n),
            loadBRow(base + min(k + 2u, kl) * p.sBk, n), loadBRow(base + min(k + 3u, kl) * p.sBk, n));
//#endif
//#endif
}

//#if !VEC4B
//#if !TB4
fn loadBRow(base: u32, n: u32) -> vec4f {
  let nl = p.N - 1u;
  return vec4f(B[base + min(n, nl) * p.sBn], B[base + min(n + 1u, nl) * p.sBn],
               B[base + min(n + 2u, nl) * p.sBn], B[base + min(n + 3u, nl) * p.sBn]);
}
//#endif
//#endif
//#endif

// biasAt(n) and store(b, m, n, v) with the epilogues: kernels/lib/matmul-store.wgsl (included).

//#if !WGT
//#if SUBGROUPS
@compute @workgroup_size(WG)
//#if UB
fn matmul_sg_ub(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32,
                @builtin(subgroup_invocation_id) lane: u32) {
//#else
fn matmul_sg(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
//#endif
  let q = lane % {GROUP}u;                            // lane within its group
  let row0 = (wg.y * (WG / {GROUP}u) + t / {GROUP}u) * {ROWS}u; // the group's ROWS rows
  let col = p.n0 + (wg.x * {GROUP}u + q) * 4u;        // this lane's 4 columns
  let b = wg.z;
//#if !SGEXACT
  let src = lane - q;
//#endif
//#unroll R ROWS
  var acc{R} = vec4f(0.0);
//#end
  let nk4 = (p.K + 3u) / 4u;
  for (var k4 = 0u; k4 < nk4; k4++) {
//#if TA4
    // Lane q holds rows 4q .. 4q + 3 of each block of 4 GROUP rows at each of the 4 k:
    // row R of the group comes from lane (R / 4) % GROUP of block R / (4 GROUP), component R % 4.
//#unroll J 4
//#unroll G ROWS / (4 * GROUP)
    let av{J}_{G} = loadAT(b, row0 + {G * 4 * GROUP}u + 4u * q, k4 * 4u + {J}u);
//#end
//#end
    let bk = loadBk(b, k4, col);
    // Each accumulator takes its 4 k steps in a row: the 4 vec4 of a 4 x 4 block of A
    // (4 rows x 4 k) are broadcast first. (Accumulators far outnumber the CPU's vector
    // registers and live in memory; updating each once per k step would load and store it
    // 4 times as often, which measured ~30% slower.)
//#unroll L ROWS / 4
    {
//#unroll J 4
//#if SGEXACT
      let a{J} = subgroupBroadcast(av{J}_{L / GROUP}, {L % GROUP}u);
//#else
      let a{J} = subgroupShuffle(av{J}_{L / GROUP}, src + {L % GROUP}u);
//#endif
//#end
//#unroll C 4
      acc{4 * L + C} = fma(vec4f(a0[{C}]), bk.b0, acc{4 * L + C});
      acc{4 * L + C} = fma(vec4f(a1[{C}]), bk.b1, acc{4 * L + C});
      acc{4 * L + C} = fma(vec4f(a2[{C}]), bk.b2, acc{4 * L + C});
      acc{4 * L + C} = fma(vec4f(a3[{C}]), bk.b3, acc{4 * L + C});
//#end
    }
//#end
//#else
//#unroll G ROWS / GROUP
    let av{G} = loadA(b, row0 + {G * GROUP}u + q, k4);
//#end
    let bk = loadBk(b, k4, col);
//#unroll R ROWS
    {
//#if SGEXACT
      let a = subgroupBroadcast(av{R / GROUP}, {R % GROUP}u);
//#else
      let a = subgroupShuffle(av{R / GROUP}, src + {R % GROUP}u);
//#endif
      acc{R} = fma(vec4f(a.x), bk.b0, acc{R});
      acc{R} = fma(vec4f(a.y), bk.b1, acc{R});
      acc{R} = fma(vec4f(a.z), bk.b2, acc{R});
      acc{R} = fma(vec4f(a.w), bk.b3, acc{R});
    }
//#end
//#endif
  }
  let bv = biasAt(col);
//#if EPILOOP
  // A loop, not 32 inlined copies of an epilogue (which made the whole kernel 1.6x slower).
  var outs = array<vec4f, {ROWS}u>(
//#unroll R ROWS
    acc{R} + bv,
//#end
  );
  for (var r = 0u; r < {ROWS}u; r++) { store(b, row0 + r, col, outs[r]); }
//#else
//#unroll R ROWS
  store(b, row0 + {R}u, col, acc{R} + bv);
//#end
//#endif
}
//#endif

//#if !TA4
@compute @workgroup_size(8, 8)
fn matmul_tiled(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col = gid.x * 4u;
  let b = gid.z;
//#unroll R 4
  var acc{R} = vec4f(0.0);
//#end
  let nk4 = (p.K + 3u) / 4u;
  for (var k4 = 0u; k4 < nk4; k4++) {
//#unroll R 4
    let a{R} = loadA(b, row0 + {R}u, k4);
//#end
    let bk = loadBk(b, k4, col);
//#unroll R 4
    acc{R} = fma(vec4f(a{R}.x), bk.b0, acc{R});
    acc{R} = fma(vec4f(a{R}.y), bk.b1, acc{R});
    acc{R} = fma(vec4f(a{R}.z), bk.b2, acc{R});
    acc{R} = fma(vec4f(a{R}.w), bk.b3, acc{R});
//#end
  }
  let bv = biasAt(col);
//#unroll R 4
  store(b, row0 + {R}u, col, acc{R} + bv);
//#end
}
//#endif
//#endif

//#if WGT
// matmul_wg: the classic GPU layout. A workgroup computes a BM x BN tile of C; each K-step
// of BK it stages a BK x BM tile of op(A) and a BK x BN tile of op(B) in workgroup memory,
// k-major ([k][m], [k][n]) so that an invocation reads its TM rows and TN columns for one k
// as TM / 4 + TN / 4 vec4 loads, then does TM * TN multiply-adds from registers. On a GPU
// workgroup memory is on-chip and shared by the workgroup, so each global element is read
// once per tile instead of once per invocation that needs it.
// Double buffering: the next tile is read from global memory into registers before the
// multiply-adds on the current one (the loads' latency hides behind the arithmetic) and
// stored into the other buffer after them; one barrier per K-step then suffices, since a
// buffer is only rewritten after every invocation has passed the barrier that ended its use.
// Global reads are vec4 where the layout allows (VEC4A, TA4, VEC4B, TB4), with consecutive
// invocations on consecutive addresses; a vec4 read along k is scattered into the k-major
// tile by component.
// F16: the tiles hold f16 (converted when staged), widened to f32 before the multiply-add:
// a product of two f16 values is exact in f32, so the only f16 error is each operand's
// rounding (2^-11 relative, 2^-25 absolute below 2^-14). f16 products or sums would add a
// rounding per term and overflow past 65504 for no gain; the gain is half-size tiles (twice
// the tile per byte of workgroup memory). Operands past 65504 are outside its domain.
//
// Template constants: BM, BN, BK (tile), TM, TN (per invocation; multiples of 4), THREADS =
// (BM / TM) * (BN / TN), LA = BM * BK / 4 / THREADS and LB = BN * BK / 4 / THREADS (vec4s
// each invocation stages per K-step).
//#if F16
alias ST = f16;
//#else
alias ST = f32;
//#endif

// Two buffers of [k][m / 4] and [k][n / 4].
var<workgroup> As: array<vec4<ST>, {2 * BK * BM / 4}>;
var<workgroup> Bs: array<vec4<ST>, {2 * BK * BN / 4}>;

// The i-th vec4 of the A tile at rows m0.., k0..: along m (TA4: i = k * BM/4 + m/4) or along
// k (i = m * BK/4 + k/4). Rows past M are clamped (never stored); k past K reads 0, in both
// operands, so that an inf or NaN in a clamped element cannot reach a stored result.
fn fetchA(b: u32, m0: u32, k0: u32, i: u32) -> vec4f {
//#if TA4
  let k = k0 + i / {BM / 4}u;
  let m = min(m0 + (i % {BM / 4}u) * 4u, p.M - 4u);
  if (k >= p.K) { return vec4f(0.0); }
  return A[(b * p.aBatch + k * p.M + m) / 4u];
//#else
  let m = min(m0 + i / {BK / 4}u, p.M - 1u);
  let k = k0 + (i % {BK / 4}u) * 4u;
//#if VEC4A
  if (k >= p.K) { return vec4f(0.0); }
  return A[(b * p.aBatch + m * p.K + k) / 4u];
//#else
  let base = b * p.aBatch + m * p.sAm;
  let kl = p.K - 1u;
  return vec4f(
    select(0.0, A[base + min(k, kl) * p.sAk], k < p.K),
    select(0.0, A[base + min(k + 1u, kl) * p.sAk], k + 1u < p.K),
    select(0.0, A[base + min(k + 2u, kl) * p.sAk], k + 2u < p.K),
    select(0.0, A[base + min(k + 3u, kl) * p.sAk], k + 3u < p.K));
//#endif
//#endif
}

fn stashA(buf: u32, i: u32, v: vec4f) {
  let at = buf * {BK * BM / 4}u;
//#if TA4
  As[at + i] = vec4<ST>(v);
//#else
  let m = i / {BK / 4}u;
  let j = at + (i % {BK / 4}u) * {BM}u + m / 4u;
  let c = m % 4u;
  As[j][c] = ST(v.x);
  As[j + {BM / 4}u][c] = ST(v.y);
  As[j + {2 * BM / 4}u][c] = ST(v.z);
  As[j + {3 * BM / 4}u][c] = ST(v.w);
//#endif
}

// The i-th vec4 of the B tile at k0.., columns n0..: along k (TB4: i = n * BK/4 + k/4) or
// along n (i = k * BN/4 + n/4). Columns past N are clamped, k past K reads 0.
fn fetchB(b: u32, n0: u32, k0: u32, i: u32) -> vec4f {
//#if TB4
  let n = min(n0 + i / {BK / 4}u, p.N - 1u);
  let k = k0 + (i % {BK / 4}u) * 4u;
  if (k >= p.K) { return vec4f(0.0); }
  return B[(b * p.bBatch + n * p.K + k) / 4u];
//#else
  let k = k0 + i / {BN / 4}u;
  let n = n0 + (i % {BN / 4}u) * 4u;
  if (k >= p.K) { return vec4f(0.0); }
//#if VEC4B
  return B[(b * p.bBatch + k * p.N + min(n, p.N - 4u)) / 4u];
//#else
  let base = b * p.bBatch + k * p.sBk;
  let nl = p.N - 1u;
  return vec4f(B[base + min(n, nl) * p.sBn], B[base + min(n + 1u, nl) * p.sBn],
               B[base + min(n + 2u, nl) * p.sBn], B[base + min(n + 3u, nl) * p.sBn]);
//#endif
//#endif
}

fn stashB(buf: u32, i: u32, v: vec4f) {
  let at = buf * {BK * BN / 4}u;
//#if TB4
  let n = i / {BK / 4}u;
  let j = at + (i % {BK / 4}u) * {BN}u + n / 4u;
  let c = n % 4u;
  Bs[j][c] = ST(v.x);
  Bs[j + {BN / 4}u][c] = ST(v.y);
  Bs[j + {2 * BN / 4}u][c] = ST(v.z);
  Bs[j + {3 * BN / 4}u][c] = ST(v.w);
//#else
  Bs[at + i] = vec4<ST>(v);
//#endif
}

@compute @workgroup_size({THREADS})
fn matmul_wg(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let b = wg.z;
  let m0 = wg.y * {BM}u;
  let n0 = wg.x * {BN}u;
  let tx = t % {BN / TN}u;
  let ty = t / {BN / TN}u;
//#unroll R TM
//#unroll C TN / 4
  var acc{R}_{C} = vec4f(0.0);
//#end
//#end
  let steps = (p.K + {BK - 1}u) / {BK}u;
//#unroll J LA
  stashA(0u, t + {J * THREADS}u, fetchA(b, m0, 0u, t + {J * THREADS}u));
//#end
//#unroll J LB
  stashB(0u, t + {J * THREADS}u, fetchB(b, n0, 0u, t + {J * THREADS}u));
//#end
  workgroupBarrier();
  for (var s = 0u; s < steps; s++) {
    let cur = s % 2u;
    let more = s + 1u < steps;
    let k1 = (s + 1u) * {BK}u;
//#unroll J LA
    var ra{J} = vec4f(0.0);
//#end
//#unroll J LB
    var rb{J} = vec4f(0.0);
//#end
    if (more) {
//#unroll J LA
      ra{J} = fetchA(b, m0, k1, t + {J * THREADS}u);
//#end
//#unroll J LB
      rb{J} = fetchB(b, n0, k1, t + {J * THREADS}u);
//#end
    }
    let abase = cur * {BK * BM / 4}u + ty * {TM / 4}u;
    let bbase = cur * {BK * BN / 4}u + tx * {TN / 4}u;
    for (var kk = 0u; kk < {BK}u; kk++) {
//#unroll I TM / 4
      let a{I} = vec4f(As[abase + kk * {BM / 4}u + {I}u]);
//#end
//#unroll C TN / 4
      let b{C} = vec4f(Bs[bbase + kk * {BN / 4}u + {C}u]);
//#end
//#unroll R TM
//#unroll C TN / 4
      acc{R}_{C} = fma(vec4f(a{R / 4}[{R % 4}]), b{C}, acc{R}_{C});
//#end
//#end
    }
    if (more) {
//#unroll J LA
      stashA(1u - cur, t + {J * THREADS}u, ra{J});
//#end
//#unroll J LB
      stashB(1u - cur, t + {J * THREADS}u, rb{J});
//#end
    }
    workgroupBarrier();
  }
//#unroll C TN / 4
  let bv{C} = biasAt(n0 + tx * {TN}u + {C * 4}u);
//#end
//#unroll R TM
//#unroll C TN / 4
  store(b, m0 + ty * {TM}u + {R}u, n0 + tx * {TN}u + {C * 4}u, acc{R}_{C} + bv{C});
//#end
//#end
}
//#endif
