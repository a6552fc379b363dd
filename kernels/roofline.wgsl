// The device's roofs, measured (bench/suites/roofline.ts): what the bench reports every other
// kernel as a fraction of. Not used by the framework.
//
// fma_peak  p.iters rounds of {U} x {ACC} multiply-adds per invocation on {ACC} independent
//           accumulators: enough independent chains to hide the FMA latency (lavapipe runs each
//           invocation as one SIMD lane, so an accumulator is one vector register across a
//           subgroup; a GPU needs them for instruction-level parallelism within a thread).
//           The multiplier and addend come from the parameter block, so the compiler cannot
//           fold or reassociate the chains; the sum is stored so none is dead code. With
//           m = 1 - 2^-20 and c > 0 every chain converges to c / (1 - m) and stays normal
//           (no denormal slow paths).
// copy4     Y = X as vec4f, {PER} vec4s per invocation, each a full-grid stride apart, so that
//           neighbouring invocations touch neighbouring vec4s on every step.
// load4     p.iters rounds of {PER} vec4 loads per invocation, each at an address of its own
//           (lane i starts at vec4 3 i), within a window of p.mask + 1 vec4s small enough for
//           the first-level cache: the rate at which a kernel can bring operands into lanes
//           from a storage buffer, whatever the memory behind it. On lavapipe this is the
//           binding limit of register-blocked kernels such as matmul_sg: every load whose
//           address differs between lanes runs as a loop over the SIMD lanes (a bounds test,
//           a scalar load and an insert per component; Mesa's lp_bld_nir_soa.c,
//           emit_load_mem), tens of cycles per vec4 per lane group against one for an FMA.
//           Only constant addresses take Mesa's uniform path, so no loop index can. The
//           {PER} sums are stored so that no load is dead code.
// load4u    (flag UNIFORM) load4 from a uniform array XU holding the same window: lavapipe
//           builds a lane-divergent uniform load as straight-line gathers (emit_load_ubo), not
//           a loop over the lanes; the matmul's UB path reads a linear layer's weight so.
//
// Invocation i is gid.x + gid.y * (num_workgroups.x * {WG}): large grids fold into 2D.

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * (nwg.x * {WG}u);
}

@compute @workgroup_size({WG})
fn fma_peak(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  let m = p.m;
  let c = p.c;
  // Distinct starting values per chain and invocation: identical chains could be merged.
  let seed = f32(i & 1023u) * 1e-4;
//#unroll A ACC
  var a{A} = seed + f32({A}) * 1e-3;
//#end
  for (var it = 0u; it < p.iters; it++) {
//#unroll R U
//#unroll A ACC
    a{A} = fma(a{A}, m, c);
//#end
//#end
  }
  var s = 0.0;
//#unroll A ACC
  s += a{A};
//#end
  if (i < p.n) { Y[i] = s; }
}

@compute @workgroup_size({WG})
fn copy4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  let stride = nwg.x * nwg.y * {WG}u;
//#unroll K PER
  if (i + {K}u * stride < p.n) { Y4[i + {K}u * stride] = X4[i + {K}u * stride]; }
//#end
}

//#if UNIFORM
fn load_x(j: u32) -> vec4f { return XU[j]; }
//#else
fn load_x(j: u32) -> vec4f { return X4[j]; }
//#endif

@compute @workgroup_size({WG})
//#if UNIFORM
fn load4u(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
//#else
fn load4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
//#endif
  let i = index(gid, nwg);
  let base = i * 3u;
//#unroll K PER
  var s{K} = vec4f(0.0);
//#end
  for (var it = 0u; it < p.iters; it++) {
    let at = base + it * {PER}u;
//#unroll K PER
    s{K} += load_x((at + {K}u) & p.mask);
//#end
  }
  var s = vec4f(0.0);
//#unroll K PER
  s += s{K};
//#end
  if (i < p.n) { Y[i] = s.x + s.y + s.z + s.w; }
}
