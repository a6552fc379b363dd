// Elementwise ops. The op is a pipeline-overridable constant, so each op is its own
// specialised pipeline with the switch folded away.
//
// unary           y = f(x, alpha)                  (alpha: the scalar of addScalar, mulScalar, powScalar)
// unary_backward  gx = gy * f'(x, y, alpha)         (y is the forward output)
// binary          out = g(a[i], b[i]) for two tensors of one shape (vec4 when VEC4)
// binary_strided  out = g(a[ia], b[ib]) with broadcasting: ia, ib from per-dimension strides
//                 (0 where broadcast), rank <= 8, one invocation per run of 64 along the
//                 innermost dimension, so the divisions that find a run's start (integer
//                 division has no SIMD instruction on CPUs) are paid once per run
//
// Invocation i is gid.x + gid.y * (num_workgroups.x * 256): large tensors fold into a 2D grid.

override OP: u32 = 0u;

// Parameters, bindings and the op switches (unary_f, unary_df, binary_f) are generated:
// elementwiseKernel in src/launch/elementwise.ts, from the table in
// src/launch/elementwise-table.ts. p.dims, p.stridesA, p.stridesB: output dims (innermost
// last) and the operands' strides (0 where broadcast), rank <= 8.

//#if VEC4
alias T = vec4f;
alias TU = vec4u;
alias TI = vec4i;
//#else
alias T = f32;
alias TU = u32;
alias TI = i32;
//#endif

const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)

// The exact-erf GELU (gelu_parts): kernels/lib/gelu.wgsl (included).

// GELU, tanh approximation; u clamped to +-10 (tanh there is +-1 in f32) so that neither
// x^3 nor a driver's tanh of a huge argument (exp overflow, inf / inf) gives NaN.
fn gelu_tanh_t(x: T) -> T {
  let xc = clamp(x, T(-10.0), T(10.0));
  return tanh(clamp(GELU_C * (xc + 0.044715 * xc * xc * xc), T(-10.0), T(10.0)));
}

// x^e with WGSL's pow (defined for x >= 0 only) extended as in JavaScript: a negative base
// takes an integer exponent (the sign from its parity) and gives NaN for any other.
fn spow(x: T, e: T) -> T {
  let m = pow(abs(x), e);
  let integer = e == round(e);
  let odd = integer & (abs(e) % T(2.0) == T(1.0));
  // NaN from a runtime value: a constant NaN is a shader-creation error in WGSL.
  let nan = T(bitcast<f32>(0x7fc00000u + p.zero));
  return select(select(m, -m, odd & (x < T(0.0))), nan, (x < T(0.0)) & !integer);
}

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}


@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  Y[i] = unary_f(X[i], p.alpha);
}


@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  Y[i] = T(p.alpha);
}

// unary_backward reads x, gy and the forward output y (YF) and writes gx.
@compute @workgroup_size(256)
fn unary_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  GX[i] = GY[i] * unary_df(X[i], YF[i], p.alpha);
}


fn dim(d: u32) -> u32 { return p.dims[d / 4u][d % 4u]; }
fn strideA(d: u32) -> u32 { return p.stridesA[d / 4u][d % 4u]; }
fn strideB(d: u32) -> u32 { return p.stridesB[d / 4u][d % 4u]; }

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  C[i] = binary_f(A[i], B[i]);
}

// The general broadcast: invocation i copies run i % chunks of row i / chunks.
@compute @workgroup_size(64)
fn binary_strided(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  let inner = dim(p.rank - 1u);
  let chunks = (inner + 63u) / 64u;
  if (id >= (p.n / inner) * chunks) { return; }
  let start = (id % chunks) * 64u;
  var rem = id / chunks;
  let first = rem * inner + start;
  var ia = start * strideA(p.rank - 1u);
  var ib = start * strideB(p.rank - 1u);
  for (var d = i32(p.rank) - 2; d >= 0; d--) {
    let n = dim(u32(d));
    let c = rem % n;
    rem = rem / n;
    ia += c * strideA(u32(d));
    ib += c * strideB(u32(d));
  }
  let sa = strideA(p.rank - 1u);
  let sb = strideB(p.rank - 1u);
  let len = min(64u, inner - start);
  for (var j = 0u; j < len; j++) {
    C[first + j] = binary_f(A[ia + j * sa], B[ib + j * sb]);
  }
}
