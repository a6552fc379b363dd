// The sums of squares of up to 7 gradients, one workgroup each: sq[ik] = sum(Gk^2) for
// wg.x = k, for the global gradient norm that clipping reads (kernels/optim.wgsl, clip_scale).
// One dispatch for 7 parameters: a reduction and a copy per parameter made the clipping 314 of
// the small preset's 1713 dispatches, and on lavapipe a dispatch costs ~0.1 ms however small
// its tensor (larger gradients, past GRAD_NORM_BATCH_MAX elements, keep the reduction over the
// whole device). 7 gradients and the output are 8 storage buffers, WebGPU's default
// maxStorageBuffersPerShaderStage. Each lane sums a strided share in f32, then a tree over the
// 256 lanes (as kernels/reduce.wgsl).
//
// Parameters and bindings: gradNormKernel in src/launch/optim.ts.

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_squares_multi(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  var at = 0u;
//#unroll k 7
  if (wg.x == {k}u) { at = p.i{k}; for (var i = li; i < p.n{k}; i += 256u) { let v = G{k}[i]; acc += v * v; } }
//#end
  part[li] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { part[li] += part[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { sq[at] = part[0]; }
}
