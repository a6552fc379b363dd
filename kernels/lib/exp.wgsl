// exp for kernels that need it accurate, and the logistic built on it; included (defineKernel
// `includes`) by kernels that define `alias T` (f32 or vec4f) and `alias TI` (i32 or vec4i).

const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693145751953125;         // 0x3f317200: 15 significant bits
const LN2_LO: f32 = 1.428606765330187e-06;     // ln 2 - LN2_HI

// exp(r) for |r| <= 0.5 within 1 ulp: 1 + (r + r^2 P(r)), P of degree 5 fitted to
// (exp(r) - 1 - r) / r^2 (float64 relative error 1e-9; 0.83 ulp with f32 Horner). The
// driver's exp is not used: lavapipe's is 3.3 ulp off near 0 and 16 ulp at -15.
fn exp_small(r: T) -> T {
  var p = T(1.972924074e-04);
  p = p * r + 1.400330104e-03;
  p = p * r + 8.334060200e-03;
  p = p * r + 4.166511819e-02;
  p = p * r + 1.666665971e-01;
  p = p * r + 5.000000596e-01;
  return 1.0 + (r + (r * r) * p);
}

// exp(-a) for 0 <= a <= 350 (a + extra is the exponent; |extra| <= 0.15, added after the
// range reduction): a = n ln 2 + r (Cody-Waite; n ln2_hi is exact for n < 512), so
// exp(-a - extra) = 2^-n exp(-(r + extra)). Results under ~1e-38 may flush to 0.
fn exp_neg(a: T, extra: T) -> T {
  let n = round(a * LOG2E);
  let r = (a - n * LN2_HI) - n * LN2_LO;
  return ldexp(exp_small(-(r + extra)), -TI(n));
}

// Numerically safe logistic: z = exp(-|x|) never overflows (exp(+1e4) would be inf);
// returns sigmoid(x) and 1 - sigmoid(x), each without cancellation.
struct SigmoidPair { s: T, c: T }

fn sigmoid_pair(x: T) -> SigmoidPair {
  let z = exp_neg(min(abs(x), T(200.0)), T(0.0));
  let inv = 1.0 / (1.0 + z);
  let pos = x >= T(0.0);
  return SigmoidPair(select(z * inv, inv, pos), select(inv, z * inv, pos));
}

