// Gated linear units, elementwise over two tensors of one shape.
//
// silu_gate           out = silu(gate) * up           (Qwen3's MLP: down(silu(gate(x)) * up(x)))
// silu_gate_backward  g_gate = gy * up * silu'(gate),  g_up = gy * silu(gate)   (one pass)
//   silu(x) = x s,  silu'(x) = s + x s (1 - s),  s = sigmoid(x)
// sigmoid from z = exp(-|x|) (never overflows: finite results for any finite x); exp by
// Cody-Waite reduction and a fitted polynomial, as in kernels/elementwise.wgsl (keep the
// two in step).
//
// VEC4: the element count is a multiple of 4 and every array is read as vec4s.
// Invocation i is gid.x + gid.y * (num_workgroups.x * 256): large tensors fold into a 2D grid.

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

//#if VEC4
alias T = vec4f;
alias TI = vec4i;
//#else
alias T = f32;
alias TI = i32;
//#endif

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> G: array<T>;
@group(0) @binding(2) var<storage, read> U: array<T>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;
@group(0) @binding(4) var<storage, read> GY: array<T>;
@group(0) @binding(5) var<storage, read_write> GG: array<T>;
@group(0) @binding(6) var<storage, read_write> GU: array<T>;

const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693145751953125;
const LN2_LO: f32 = 1.428606765330187e-06;

// exp(r), |r| <= 0.5, within 1 ulp (see exp_small in kernels/elementwise.wgsl).
fn exp_small(r: T) -> T {
  var q = T(1.972924074e-04);
  q = q * r + 1.400330104e-03;
  q = q * r + 8.334060200e-03;
  q = q * r + 4.166511819e-02;
  q = q * r + 1.666665971e-01;
  q = q * r + 5.000000596e-01;
  return 1.0 + (r + (r * r) * q);
}

// exp(-a), 0 <= a <= 200 (results under ~1e-38 may flush to 0).
fn exp_neg(a: T) -> T {
  let n = round(a * LOG2E);
  let r = (a - n * LN2_HI) - n * LN2_LO;
  return ldexp(exp_small(-r), -TI(n));
}

struct SigmoidPair { s: T, c: T }  // sigmoid(x), 1 - sigmoid(x)

fn sigmoid_pair(x: T) -> SigmoidPair {
  let z = exp_neg(min(abs(x), T(200.0)));
  let inv = 1.0 / (1.0 + z);
  let pos = x >= T(0.0);
  return SigmoidPair(select(z * inv, inv, pos), select(inv, z * inv, pos));
}

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

@compute @workgroup_size(256)
fn silu_gate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let g = G[i];
  O[i] = g * sigmoid_pair(g).s * U[i];
}

@compute @workgroup_size(256)
fn silu_gate_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let g = G[i];
  let sp = sigmoid_pair(g);
  let gy = GY[i];
  GG[i] = gy * U[i] * (sp.s + g * sp.s * sp.c);
  GU[i] = gy * (g * sp.s);
}
