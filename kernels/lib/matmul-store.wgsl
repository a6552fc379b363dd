// The matmul's store: the bias (biasAt) and C's write with its epilogues, shared by every
// kernel of kernels/matmul.wgsl; included with `expand` (src/launch/matmul.ts), so the file's
// flags apply: BIAS, VEC4C, and the epilogues GELU, DGELU, RES with SCALE, KEEP (need VEC4C).

fn biasAt(n: u32) -> vec4f {
//#if BIAS
  let nl = p.N - 1u;
  return vec4f(bias[min(n, nl)], bias[min(n + 1u, nl)], bias[min(n + 2u, nl)], bias[min(n + 3u, nl)]);
//#else
  return vec4f(0.0);
//#endif
}

// v: the sum with its bias (biasAt, loaded once per column by the caller: a lane stores many
// rows of the same 4 columns, and 4 scalar bias loads per row cost as much as the k loop's
// loads when K is short).
fn store(b: u32, m: u32, n: u32, v: vec4f) {
  if (m >= p.M || n >= p.N) { return; }
//#if VEC4C
  // Epilogues, each rounding as the separate elementwise ops it replaces (the same code,
  // kernels/lib/gelu.wgsl), so a fused step gives the same bits: GELU C = gelu(v); DGELU
  // C = v * gelu'(E), E the forward's pre-activation; RES C = E + S v (LayerScale S with SCALE,
  // the residual E); KEEP writes v to P for the backward. The OR with a run-time zero rounds
  // the product before the add, as the mul kernel does (no fused multiply-add).
  let i = (b * p.cBatch + m * p.N + n) / 4u;
  var y = v;
//#if KEEP
  P[i] = v;
//#endif
//#if GELU
  y = v * gelu_parts(v).phi;
//#endif
//#if DGELU
  let g = gelu_parts(E[i]);
  y = v * (g.phi + g.dens);
//#endif
//#if RES
  var s = v;
//#if SCALE
  s = bitcast<vec4f>(bitcast<vec4u>(v * vec4f(S[n], S[n + 1u], S[n + 2u], S[n + 3u])) | vec4u(p.zero));
//#endif
  y = E[i] + s;
//#endif
  C[i] = y;
//#else
  let base = b * p.cBatch + m * p.N;
  C[base + n] = v.x;
  if (n + 1u < p.N) { C[base + n + 1u] = v.y; }
  if (n + 2u < p.N) { C[base + n + 2u] = v.z; }
  if (n + 3u < p.N) { C[base + n + 3u] = v.w; }
//#endif
}
