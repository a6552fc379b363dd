// Optimizer steps, in place on a parameter and its state.
// Step-dependent values (learning rate, bias corrections, the gradient-clipping scale) are
// read from a small storage buffer written once per step, not from uniforms, so that the
// uniform cache does not grow with the step count and nothing is read back to the host.
//
// hyper[0]: the step values (struct Hyper); state[0]: the clipping state (struct ClipState),
// computed on the GPU when clipping: scale is 1 or maxNorm / norm; when the norm is not
// finite (a NaN or an infinity anywhere in the gradients) the step is skipped: no parameter
// or moment changes, so one bad batch cannot poison the weights.
//
// Parameters, bindings and both structs: optimKernel in src/launch/optim.ts.

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// SGD with momentum (M) and decoupled weight decay.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n || state[0].skip != 0.0) { return; }
  let h = hyper[0];
  let g = G[i] * state[0].scale;
  let m = h.momentum * M[i] + g;
  M[i] = m;
  P[i] = P[i] - h.lr * (m + h.weightDecay * P[i]);
}

// AdamW (Loshchilov & Hutter): decoupled weight decay. One element's step, shared by adamw and
// adamw3 so that both give the same bits: the new (parameter, first moment, second moment).
fn adamwStep(p0: f32, g0: f32, m0: f32, v0: f32, h: Hyper, scale: f32) -> vec3f {
  let g = g0 * scale;
  let m = h.beta1 * m0 + (1.0 - h.beta1) * g;
  let v = h.beta2 * v0 + (1.0 - h.beta2) * g * g;
  let mhat = m / h.bias1;
  let vhat = v / h.bias2;
  return vec3f(p0 - h.lr * (mhat / (sqrt(vhat) + h.eps) + h.weightDecay * p0), m, v);
}

@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n || state[0].skip != 0.0) { return; }
  let r = adamwStep(P[i], G[i], M[i], V[i], hyper[0], state[0].scale);
  P[i] = r.x;
  M[i] = r.y;
  V[i] = r.z;
}

// AdamW on three parameters of one group at once (slot k = wg.z; P{k}, G{k}, M{k}, V{k}, n{k}
// elements): on lavapipe a dispatch costs ~45 us however small its tensor, and the small
// preset's 132 parameters are mostly small. 12 buffers and hyper and state make 14 storage
// bindings, within lavapipe's 16 (src/launch/optim.ts falls back to adamw below that).
@compute @workgroup_size(256)
fn adamw3(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(workgroup_id) wg: vec3u) {
  let i = index(gid, nwg);
  if (state[0].skip != 0.0) { return; }
//#unroll k 3
  if (wg.z == {k}u && i < p.n{k}) {
    let r = adamwStep(P{k}[i], G{k}[i], M{k}[i], V{k}[i], hyper[0], state[0].scale);
    P{k}[i] = r.x;
    M{k}[i] = r.y;
    V{k}[i] = r.z;
  }
//#end
}

// Gradient clipping: sq holds the sum of squares of every gradient (one entry per parameter
// tensor); the scale is min(1, maxNorm / (norm + 1e-6)); p.maxNorm 0: no clipping, the norm
// is reported only.
@compute @workgroup_size(1)
fn clip_scale() {
  var s = 0.0;
  for (var i = 0u; i < p.n; i++) { s += sq[i]; }
  let norm = sqrt(s);
  let maxNorm = p.maxNorm;
  // Not finite: all exponent bits set (an infinity or a NaN). Tested on the bits because a
  // compiler may fold `x != x` away.
  let bad = (bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u;
  let skipped = stateOut[0].skipped;
  stateOut[0] = ClipState(select(select(1.0, min(1.0, maxNorm / (norm + 1e-6)), maxNorm > 0.0), 0.0, bad), norm, select(0.0, 1.0, bad), skipped + select(0.0, 1.0, bad));
}
