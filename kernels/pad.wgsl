// Row padding for kernels that read rows as vec4s (attention, for head widths that are not a
// multiple of 4): rows of D floats to rows of HD4 = ceil(D / 4) vec4s with a zero tail
// (pad_rows), and back (unpad_rows). One invocation per vec4 slot of the padded side (p.n of
// them); HD4 is a template constant, so the row index is a division by a constant.
//
// Parameters and bindings: padKernel in src/launch/pad.ts.

@compute @workgroup_size(64)
fn pad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let c = (e % {HD4}u) * 4u;
  let at = (e / {HD4}u) * p.D + c;
  var v = vec4f(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (c + k < p.D) { v[k] = X[at + k]; }
  }
  Y4[e] = v;
}

@compute @workgroup_size(64)
fn unpad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let c = (e % {HD4}u) * 4u;
  let at = (e / {HD4}u) * p.D + c;
  let v = X4[e];
  for (var k = 0u; k < 4u; k++) {
    if (c + k < p.D) { Y[at + k] = v[k]; }
  }
}
