// matmul_sg's layout as a standalone generator (kernels/matmul.wgsl, row-major A [M, K] and B
// [K, N] with K, N multiples of 4), with switches for the load experiments of issue 11:
//   ROWS, CV   rows per group of 8 lanes, vec4 columns per lane (default 32, 1: the kernel's)
//   WG         invocations per workgroup (default 64)
//   NOLOAD     'a', 'b' or 'ab': those operands computed from the loop index instead of loaded
//   ONE=n      only the first n of A's vec4 loads real, B computed (times n loads per step)
//   TEX        'a', 'b' or 'ab': those operands read with textureLoad from rgba32float textures
//   NOBC=1     (with NOLOAD) no subgroup broadcasts either
//   UBOB=1     B read from a uniform binding instead of a storage one (K * N * 4 <= 64 KiB)
//   NOLOAD     'A', 'B' (upper case): those operands still loaded, but from an 8-row window that
//              stays in the first-level cache (are the loads' costs cache misses? no)
// It assumes subgroups of exactly 8 lanes (lavapipe's): broadcasts read lanes 0-7, so on wider
// subgroups the products are wrong, which the printed maxdiff shows.
// subgroup kernel: a group of 8 lanes owns ROWS rows x (8 * 4 * CV) columns; lane q owns CV vec4 columns
// at col = (wg.x * 8 + q) * 4 + c * 32 (c < CV) -- interleaved so B loads of a group stay contiguous.
export default (M, N, K, o = {}) => {
  const NOLOAD = o.NOLOAD ?? '', NOBC = o.NOBC, TEX = o.TEX ?? '';
  const ROWS = +(o.ROWS ?? 32), CV = +(o.CV ?? 1), WG = +(o.WG ?? 64), G = 8;
  if (o.UBOB && K * N * 4 > 65536) throw new Error(`UBOB=1 needs B (K x N = ${K} x ${N} floats) within one 64 KiB uniform binding`);
  const u = (n, f, sep = '\n') => Array.from({ length: n }, (_, i) => f(i)).join(sep);
  const code = `
enable subgroups;
diagnostic(off, subgroup_uniformity);
struct P { M: u32, N: u32, K: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
${o.UBOB ? `@group(0) @binding(2) var<uniform> B: array<vec4f, ${K * N / 4}>;` : '@group(0) @binding(2) var<storage, read> B: array<vec4f>;'}
@group(0) @binding(3) var<storage, read_write> C: array<vec4f>;
@group(0) @binding(5) var TA: texture_2d<f32>;
@group(0) @binding(6) var TB: texture_2d<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let q = lane % ${G}u;
  let row0 = (wg.y * ${WG / G}u + t / ${G}u) * ${ROWS}u;
  let K4 = p.K / 4u; let N4 = p.N / 4u;
  let c4 = wg.x * ${G * CV}u + q;
${u(ROWS * CV, (i) => `  var acc${i} = vec4f(0.0);`)}
  for (var k4 = 0u; k4 < K4; k4++) {
${u(ROWS / G, (g) => (o.ONE !== undefined) ? (g < +o.ONE ? `    let av${g} = A[min(row0 + ${g * G}u + q, p.M - 1u) * K4 + k4];` : `    let av${g} = vec4f(f32(k4 + ${g}u), f32(q ^ k4), f32(k4 * ${g + 3}u), f32(k4 | q));`) : TEX.includes('a') ? `    let av${g} = textureLoad(TA, vec2u(k4, min(row0 + ${g * G}u + q, p.M - 1u)), 0);` : NOLOAD.includes('A') ? `    let av${g} = A[(min(row0 + ${g * G}u + q, p.M - 1u) & 7u) * K4 + (k4 & 7u)];` : NOLOAD.includes('a') ? `    let av${g} = vec4f(f32(k4 + ${g}u), f32(q ^ k4), f32(k4 * ${g + 3}u), f32(k4 | q));` : `    let av${g} = A[min(row0 + ${g * G}u + q, p.M - 1u) * K4 + k4];`)}
${u(CV, (c) => u(4, (j) => (o.ONE !== undefined) ? `    let b${c}_${j} = vec4f(f32(k4 + ${j}u), f32(q ^ k4), f32(k4 * ${j + 5}u), f32(k4 | q));` : TEX.includes('b') ? `    let b${c}_${j} = textureLoad(TB, vec2u(min(c4 + ${c * G}u, N4 - 1u), k4 * 4u + ${j}u), 0);` : NOLOAD.includes('B') ? `    let b${c}_${j} = B[((k4 & 7u) * 4u + ${j}u) * N4 + min(c4 + ${c * G}u, N4 - 1u)];` : NOLOAD.includes('b') ? `    let b${c}_${j} = vec4f(f32(k4 + ${j}u), f32(q ^ k4), f32(k4 * ${j + 5}u), f32(k4 | q));` : `    let b${c}_${j} = B[(k4 * 4u + ${j}u) * N4 + min(c4 + ${c * G}u, N4 - 1u)];`))}
${u(ROWS / 4, (L) => `    {
${u(4, (J) => NOBC ? `      let a${J} = av${Math.floor((4 * L + J) / G)};` : `      let a${J} = subgroupBroadcast(av${Math.floor((4 * L + J) / G)}, ${(4 * L + J) % G}u);`)}
${u(4, (Cc) => u(CV, (c) => u(4, (J) => `      acc${(4 * L + Cc) * CV + c} = fma(vec4f(a${Cc}[${J}]), b${c}_${J}, acc${(4 * L + Cc) * CV + c});`)))}
    }`)}
  }
${u(ROWS, (r) => u(CV, (c) => `  if (row0 + ${r}u < p.M && c4 + ${c * G}u < N4) { C[(row0 + ${r}u) * N4 + c4 + ${c * G}u] = acc${r * CV + c}; }`))}
}`;
  return { code, textures: true, uniformB: !!o.UBOB, entry: 'main', dispatch: [Math.ceil(N / 4 / G / CV), Math.ceil(M / ROWS / (WG / G)), 1] };
};
