// Elementwise ops. The op is a pipeline-overridable constant, so each op is its own
// specialised pipeline with the switch folded away.
//
// unary           y = f(x, alpha)                  (alpha: the scalar of add/mul/pow_scalar)
// unary_backward  gx = gy * f'(x, y, alpha)         (y is the forward output)
// binary          out = g(a[i], b[i]) for two tensors of one shape (vec4 when VEC4)
// binary_strided  out = g(a[ia], b[ib]) with broadcasting: ia, ib from per-dimension strides
//                 (0 where broadcast), rank <= 8, one invocation per run of 64 along the
//                 innermost dimension, so the divisions that find a run's start (integer
//                 division has no SIMD instruction on CPUs) are paid once per run
//
// Invocation i is gid.x + gid.y * (num_workgroups.x * 256): large tensors fold into a 2D grid.

override OP: u32 = 0u;

struct Params {
  n: u32,      // output elements (vec4s when VEC4)
  na: u32,
  nb: u32,
  rank: u32,
  alpha: f32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  dims: array<vec4u, 2>,     // output dims, innermost last
  stridesA: array<vec4u, 2>,
  stridesB: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

//#if VEC4
alias T = vec4f;
//#else
alias T = f32;
//#endif

const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)

// x^e with WGSL's pow (defined for x >= 0 only) extended as in JavaScript: a negative base
// takes an integer exponent (the sign from its parity) and gives NaN for any other.
fn spow(x: T, e: T) -> T {
  let m = pow(abs(x), e);
  let integer = e == round(e);
  let odd = integer & (abs(e) % T(2.0) == T(1.0));
  // NaN from a runtime value: a constant NaN is a shader-creation error in WGSL.
  let nan = T(bitcast<f32>(0x7fc00000u + p._pad0));
  return select(select(m, -m, odd & (x < T(0.0))), nan, (x < T(0.0)) & !integer);
}

// Unary op codes (keep in step with src/ops/elementwise.ts).
// 0 copy, 1 neg, 2 exp, 3 log, 4 sqrt, 5 tanh, 6 sigmoid, 7 relu, 8 gelu (tanh form),
// 9 add_scalar, 10 mul_scalar, 11 pow_scalar, 12 abs, 13 step (x > 0), 14 square,
// 15 rsqrt, 16 recip, 17 sign, 18 sin, 19 cos
fn unary_f(x: T, a: f32) -> T {
  switch OP {
    case 0u: { return x; }
    case 1u: { return -x; }
    case 2u: { return exp(x); }
    case 3u: { return log(x); }
    case 4u: { return sqrt(x); }
    case 5u: { return tanh(x); }
    case 6u: { return 1.0 / (1.0 + exp(-x)); }
    case 7u: { return max(x, T(0.0)); }
    case 8u: { return 0.5 * x * (1.0 + tanh(GELU_C * (x + 0.044715 * x * x * x))); }
    case 9u: { return x + a; }
    case 10u: { return x * a; }
    case 11u: { return spow(x, T(a)); }
    case 12u: { return abs(x); }
    case 13u: { return select(T(0.0), T(1.0), x > T(0.0)); }
    case 14u: { return x * x; }
    case 15u: { return inverseSqrt(x); }
    case 16u: { return 1.0 / x; }
    case 17u: { return sign(x); }
    case 18u: { return sin(x); }
    case 19u: { return cos(x); }
    default: { return x; }
  }
}

// d f / d x, from the input x and the forward output y (whichever is cheaper or stabler).
fn unary_df(x: T, y: T, a: f32) -> T {
  switch OP {
    case 0u: { return T(1.0); }
    case 1u: { return T(-1.0); }
    case 2u: { return y; }
    case 3u: { return 1.0 / x; }
    case 4u: { return 0.5 / y; }
    case 5u: { return 1.0 - y * y; }
    case 6u: { return y * (1.0 - y); }
    case 7u: { return select(T(0.0), T(1.0), x > T(0.0)); }
    case 8u: {
      let u = GELU_C * (x + 0.044715 * x * x * x);
      let t = tanh(u);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case 9u: { return T(1.0); }
    case 10u: { return T(a); }
    case 11u: { return a * spow(x, T(a - 1.0)); }
    case 12u: { return sign(x); }
    case 13u: { return T(0.0); }
    case 14u: { return 2.0 * x; }
    case 15u: { return -0.5 * y * y * y; }
    case 16u: { return -y * y; }
    case 17u: { return T(0.0); }
    case 18u: { return cos(x); }
    case 19u: { return -sin(x); }
    default: { return T(1.0); }
  }
}

// Binary op codes: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 eq (1.0 / 0.0), 7 gt, 8 pow
fn binary_f(a: T, b: T) -> T {
  switch OP {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return max(a, b); }
    case 5u: { return min(a, b); }
    case 6u: { return select(T(0.0), T(1.0), a == b); }
    case 7u: { return select(T(0.0), T(1.0), a > b); }
    case 8u: { return spow(a, b); }
    default: { return a; }
  }
}

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read_write> Y: array<T>;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  Y[i] = unary_f(X[i], p.alpha);
}

@group(0) @binding(3) var<storage, read> GY: array<T>;
@group(0) @binding(4) var<storage, read_write> GX: array<T>;
@group(0) @binding(5) var<storage, read> YF: array<T>;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  Y[i] = T(p.alpha);
}

// unary_backward reads x (1), gy (3) and y (5) and writes gx (4).
@compute @workgroup_size(256)
fn unary_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  GX[i] = GY[i] * unary_df(X[i], YF[i], p.alpha);
}

@group(0) @binding(6) var<storage, read> A: array<T>;
@group(0) @binding(7) var<storage, read> B: array<T>;
@group(0) @binding(8) var<storage, read_write> C: array<T>;

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
