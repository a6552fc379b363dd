// Exact-erf GELU pieces, included (defineKernel `includes`, after lib/exp.wgsl) by kernels
// that define `alias T` (f32 or vec4f) and `alias TU` (u32 or vec4u): kernels/elementwise.wgsl
// (gelu and its derivative) and kernels/matmul.wgsl (the GELU epilogues). One copy, so that
// a fused epilogue rounds exactly as the separate elementwise op does.

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
