// Batched matrix multiply: C[b] = op(A[b]) @ op(B[b]) (+ bias[n]), f32, any sizes.
//
// Element (m, k) of op(A[b]) is A[b * aBatch + m * sAm + k * sAk]; element (k, n) of
// op(B[b]) is B[b * bBatch + k * sBk + n * sBn]. Transposes are just other strides; a batch
// stride of 0 broadcasts an operand over the batch.
//
// Two variants, picked by src/launch/matmul.ts (gpu.tuning.matmul selects one for benchmarks):
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
// matmul_tiled: portable register-blocked kernel without subgroups: each invocation
//   computes 4 rows x 4 columns.
//
// Flags (set by the launch from the shapes and strides):
//   VEC4A  A is row-major [M, K] with K % 4 == 0: A is read as vec4 along k
//   VEC4B  B is row-major [K, N] with N % 4 == 0: B is read as vec4 along n
//   TB4    op(B) = B^T with B stored [N, K], K % 4 == 0: read as vec4 along k
//   VEC4C  N % 4 == 0: C is written as vec4
//   BIAS   add bias[n]
//   SGEXACT the subgroup is exactly GROUP lanes (broadcast instead of shuffle)

//#if SUBGROUPS
enable subgroups;
diagnostic(off, subgroup_uniformity);
//#endif

// Parameters and bindings: matmulKernel in src/launch/matmul.ts. The element types of A, B
// and C depend on the flags:
//#if VEC4A
alias AE = vec4f;
//#else
alias AE = f32;
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

override WG: u32 = 64u;

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
  let t0 = B[(b * p.bBatch + min(n, nl) * p.K) / 4u + k4];
  let t1 = B[(b * p.bBatch + min(n + 1u, nl) * p.K) / 4u + k4];
  let t2 = B[(b * p.bBatch + min(n + 2u, nl) * p.K) / 4u + k4];
  let t3 = B[(b * p.bBatch + min(n + 3u, nl) * p.K) / 4u + k4];
  return Bk(vec4f(t0.x, t1.x, t2.x, t3.x), vec4f(t0.y, t1.y, t2.y, t3.y),
            vec4f(t0.z, t1.z, t2.z, t3.z), vec4f(t0.w, t1.w, t2.w, t3.w));
//#else
//#if VEC4B
  let c4 = min(n / 4u, p.N / 4u - 1u);
  let base = b * p.bBatch / 4u + c4;
  let row = p.N / 4u;
  return Bk(B[base + min(k, kl) * row], B[base + min(k + 1u, kl) * row],
            B[base + min(k + 2u, kl) * row], B[base + min(k + 3u, kl) * row]);
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

fn biasAt(n: u32) -> vec4f {
//#if BIAS
  let nl = p.N - 1u;
  return vec4f(bias[min(n, nl)], bias[min(n + 1u, nl)], bias[min(n + 2u, nl)], bias[min(n + 3u, nl)]);
//#else
  return vec4f(0.0);
//#endif
}

fn store(b: u32, m: u32, n: u32, v: vec4f) {
  if (m >= p.M || n >= p.N) { return; }
//#if VEC4C
  C[(b * p.cBatch + m * p.N + n) / 4u] = v + biasAt(n);
//#else
  let base = b * p.cBatch + m * p.N;
  let w = v + biasAt(n);
  C[base + n] = w.x;
  if (n + 1u < p.N) { C[base + n + 1u] = w.y; }
  if (n + 2u < p.N) { C[base + n + 2u] = w.z; }
  if (n + 3u < p.N) { C[base + n + 3u] = w.w; }
//#endif
}

//#if SUBGROUPS
@compute @workgroup_size(WG)
fn matmul_sg(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
  let q = lane % {GROUP}u;                            // lane within its group
  let row0 = (wg.y * (WG / {GROUP}u) + t / {GROUP}u) * {ROWS}u; // the group's ROWS rows
  let col = (wg.x * {GROUP}u + q) * 4u;               // this lane's 4 columns
  let b = wg.z;
//#if !SGEXACT
  let src = lane - q;
//#endif
//#unroll R ROWS
  var acc{R} = vec4f(0.0);
//#end
  let nk4 = (p.K + 3u) / 4u;
  for (var k4 = 0u; k4 < nk4; k4++) {
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
  }
//#unroll R ROWS
  store(b, row0 + {R}u, col, acc{R});
//#end
}
//#endif

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
//#unroll R 4
  store(b, row0 + {R}u, col, acc{R});
//#end
}
