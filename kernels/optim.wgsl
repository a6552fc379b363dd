// Optimizer steps, in place on a parameter and its state.
// Step-dependent values (learning rate, bias corrections, the gradient-clipping scale) are
// read from a small storage buffer written once per step, not from uniforms, so that the
// uniform cache does not grow with the step count and nothing is read back to the host.
//
// hyper = [lr, beta1, beta2, eps, weightDecay, 1 - beta1^t, 1 - beta2^t, momentum]
// scale = [gradient scale, global norm, skip, steps skipped so far], computed on the GPU when
//         clipping: scale is 1 or maxNorm / norm; when the norm is not finite (a NaN or an
//         infinity anywhere in the gradients) the step is skipped: no parameter or moment
//         changes, so one bad batch cannot poison the weights.

// Parameters and bindings: optimKernel in src/launch/optim.ts (hyper has 8 values).

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// SGD with momentum (M) and decoupled weight decay.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n || scale[2] != 0.0) { return; }
  let lr = hyper[0];
  let g = G[i] * scale[0];
  let m = hyper[7] * M[i] + g;
  M[i] = m;
  P[i] = P[i] - lr * (m + hyper[4] * P[i]);
}

// AdamW (Loshchilov & Hutter): decoupled weight decay.
@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n || scale[2] != 0.0) { return; }
  let lr = hyper[0];
  let b1 = hyper[1];
  let b2 = hyper[2];
  let g = G[i] * scale[0];
  let m = b1 * M[i] + (1.0 - b1) * g;
  let v = b2 * V[i] + (1.0 - b2) * g * g;
  M[i] = m;
  V[i] = v;
  let mhat = m / hyper[5];
  let vhat = v / hyper[6];
  P[i] = P[i] - lr * (mhat / (sqrt(vhat) + hyper[3]) + hyper[4] * P[i]);
}

// Gradient clipping: sq holds the sum of squares of every gradient (one entry per
// parameter tensor); scaleOut = [min(1, maxNorm / (norm + 1e-6)), norm, skip, skipped].
// hyper[0] here carries maxNorm (0: no clipping, report the norm only).
@compute @workgroup_size(1)
fn clip_scale() {
  var s = 0.0;
  for (var i = 0u; i < p.n; i++) { s += sq[i]; }
  let norm = sqrt(s);
  let maxNorm = hyper[0];
  // Not finite: all exponent bits set (an infinity or a NaN). Tested on the bits because a
  // compiler may fold `x != x` away.
  let bad = (bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u;
  scaleOut[0] = select(select(1.0, min(1.0, maxNorm / (norm + 1e-6)), maxNorm > 0.0), 0.0, bad);
  scaleOut[1] = norm;
  scaleOut[2] = select(0.0, 1.0, bad);
  scaleOut[3] = scaleOut[3] + select(0.0, 1.0, bad);
}
