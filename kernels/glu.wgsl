// Gated linear units, elementwise over two tensors of one shape.
//
// silu_gate           out = silu(gate) * up           (Qwen3's MLP: down(silu(gate(x)) * up(x)))
// silu_gate_backward  g_gate = gy * up * silu'(gate),  g_up = gy * silu(gate)   (one pass)
//   silu(x) = x s,  silu'(x) = s + x s (1 - s),  s = sigmoid(x)
// sigmoid from z = exp(-|x|) (never overflows: finite results for any finite x):
// sigmoid_pair of kernels/lib/exp.wgsl, shared with kernels/elementwise.wgsl.
//
// VEC4: the element count is a multiple of 4 and every array is read as vec4s.
// Invocation i is gid.x + gid.y * (num_workgroups.x * 256): large tensors fold into a 2D grid.
//
// Parameters and bindings: gluKernel in src/launch/glu.ts (which includes kernels/lib/exp.wgsl).

//#if VEC4
alias T = vec4f;
alias TI = vec4i;
//#else
alias T = f32;
alias TI = i32;
//#endif

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
