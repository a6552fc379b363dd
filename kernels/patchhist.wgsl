// Soft intensity histogram of each 3D patch: for patch row m and bin k,
//   out[m, k] = K * mean over the patch's voxels v of w_k(x[v]),
// with w_k the "hat" of linear interpolation between ascending centres c_0 < ... < c_{K-1}:
// a value between c_j and c_{j+1} gives 1 - t to bin j and t to bin j + 1 (t its fraction of
// the interval); values at or below c_0 count fully to bin 0, at or above c_{K-1} to bin K-1.
// Every row's bins sum to K: each bin is the share of the patch in it relative to an even spread
// (1 on average), a scale a Linear layer's usual initialisation and learning rate suit; shares
// (1 / K on average) learned several times slower (issue 7).
//
// Volume x [B, 1, X, Y, Z] (z fastest); rows ordered as the patch embedding's
// (kernels/patch3d.wgsl): m = (b * nWin + n) * T + t, window n = (ih * Wg + iw) * Dg + id,
// token t = (ph * nW + pw) * nD + pd.
//
// One invocation per row holds the K sums in a private array (K <= 32; indexed at run time, so
// on lavapipe it lives in memory, not registers: 38 ms a step for the small preset's 4096
// patches of 1024 voxels) and walks its patch in a fixed order: deterministic, no atomics. The interval of a value is found by a binary search
// over the centres, which sit in workgroup memory. Forward only: the model's input needs no
// gradient (src/ops/patchhist.ts refuses one).
//
// Parameters and bindings: patchHistKernel in src/launch/patchhist.ts.

var<workgroup> cs: array<f32, 32>;

@compute @workgroup_size(64)
fn patch_hist(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  if (li < p.K) { cs[li] = Cn[li]; }
  workgroupBarrier();
  let m = gid.x + gid.y * nwg.x * 64u;
  if (m >= p.M) { return; }

  let base = rowBase(m); // kernels/lib/patchrows.wgsl (C = 1)

  var acc: array<f32, 32>;
  for (var k = 0u; k < 32u; k++) { acc[k] = 0.0; }
  let last = p.K - 1u;
  let lo = cs[0];
  let hi = cs[last];
  for (var i0 = 0u; i0 < p.p0; i0++) {
    for (var i1 = 0u; i1 < p.p1; i1++) {
      let row = base + (i0 * p.Y + i1) * p.Z;
      for (var i2 = 0u; i2 < p.p2; i2++) {
        let v = x[row + i2];
        if (v <= lo) { acc[0] += 1.0; continue; }
        if (v >= hi) { acc[last] += 1.0; continue; }
        // The j with cs[j] <= v < cs[j + 1] (0 <= j < last).
        var a = 0u;
        var z = last;
        while (z - a > 1u) {
          let mid = (a + z) / 2u;
          if (cs[mid] <= v) { a = mid; } else { z = mid; }
        }
        let f = (v - cs[a]) / (cs[a + 1u] - cs[a]);
        acc[a] += 1.0 - f;
        acc[a + 1u] += f;
      }
    }
  }
  let inv = f32(p.K) / f32(p.p0 * p.p1 * p.p2);
  for (var k = 0u; k < p.K; k++) { Out[m * p.K + k] = acc[k] * inv; }
}
