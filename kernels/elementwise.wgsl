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
const INV_SQRT2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268; // 1 / sqrt(2 pi)

// ---------------------------------------------------------------- exact-erf GELU
//
// GELU(x) = x Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2); GELU'(x) = Phi(x) + x phi(x).
// WGSL has no erf. With a = |x| / sqrt 2 and e = exp(-x^2 / 2):
//   Phi(-|x|) = 0.5 e erfcx(a),   phi(x) = e / sqrt(2 pi),   Phi(|x|) = 1 - Phi(-|x|),
// where erfcx(a) = exp(a^2) erfc(a) is smooth and slowly varying, so relative accuracy
// holds in the tail (Phi(-10) = 7.6e-24) where 1 + erf(x / sqrt 2) would cancel to 0.
// (Abramowitz-Stegun 7.1.26 has 1.5e-7 absolute error on erf: 25% relative error of
// Phi at x = -5.) Measured against float64 on the dense grid of test/ops/elementwise.test.ts:
// GELU within 5 ulp, GELU' within 5 ulp of its two terms' sum of magnitudes.

// erfcx(a) for 0 <= a <= 11.4: (1 + 2a) erfcx(a) = P(q), q = (a - 2) / (a + 2) in [-1, 0.7],
// P a degree-12 polynomial fitted to float64 erfcx by iteratively reweighted least squares
// on the relative error (max 3.2e-10 in float64; 2.2e-7 = 3.6 x 2^-24 evaluated in f32, by
// simulation over 400k points).
fn erfcx_pos(a: T) -> T {
  let q = (a - 2.0) / (a + 2.0);
  var p = T(1.471304222e-05);
  p = p * q + 1.095570260e-04;
  p = p * q + 1.666662138e-04;
  p = p * q - 4.377902078e-04;
  p = p * q - 1.431074576e-03;
  p = p * q + 1.269417931e-03;
  p = p * q + 8.715230040e-03;
  p = p * q - 8.034239523e-03;
  p = p * q - 5.421902612e-02;
  p = p * q + 1.640513241e-01;
  p = p * q - 1.660304517e-01;
  p = p * q - 9.276382625e-02;
  p = p * q + 1.276978374e+00;
  return p / (1.0 + 2.0 * a);
}

// exp(-x^2 / 2) for |x| <= 16 to about 1 ulp: a plain exp(-0.5 * x * x) carries the
// rounding of x^2 / 2 (up to 128, so up to 4e-6 absolute) as a relative error of the
// result. Here s is x with its low 12 significand bits cleared, so s^2 / 2 is exact, and
// x^2 / 2 = s^2 / 2 + (x - s)(x + s) / 2, the second part under 0.13.
fn exp_neg_half_sq(x: T) -> T {
  let s = bitcast<T>(bitcast<TU>(x) & TU(0xfffff000u));
  return exp_neg(0.5 * (s * s), 0.5 * ((x - s) * (x + s)));
}

struct GeluParts { phi: T, dens: T }  // Phi(x), x phi(x)

fn gelu_parts(x: T) -> GeluParts {
  // Beyond |x| = 16, Phi is 0 or 1 and phi is 0 in f32 (clamping keeps squares finite).
  let xc = clamp(x, T(-16.0), T(16.0));
  let e = exp_neg_half_sq(xc);
  let h = 0.5 * e * erfcx_pos(abs(xc) * INV_SQRT2); // Phi(-|x|)
  let neg = xc < T(0.0);
  return GeluParts(select(1.0 - h, h, neg), xc * (e * INV_SQRT_2PI));
}

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
