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
// One invocation per row walks its patch in a fixed order (deterministic, no atomics) and
// adds every voxel's weight to all K bins at once, with the hat written branch-free:
//   w_k(v) = clamp(min(1 + (v - c_k) aL_k, 1 + (c_k - v) aR_k), 0, 1),
//   aL_k = 1 / (c_k - c_{k-1}) (0 for k = 0), aR_k = 1 / (c_{k+1} - c_k) (0 for k = K - 1),
// which is (v - c_{k-1}) / (c_k - c_{k-1}) on the left of c_k, the mirror on its right, and 1
// beyond the end centres for the end bins. K is a compile-time constant (one pipeline per K)
// so that the K sums are registers: the earlier kernel found one interval by a binary search
// and added into a run-time-indexed private array, which lavapipe keeps in memory and which
// diverges lane by lane (45 ms a step for the small preset's 4096 patches of 1024 voxels).
// (c_k, aL_k, aR_k) sit in workgroup memory, read at constant indices: the same address for
// every lane. Forward only: the model's input needs no gradient (src/ops/patchhist.ts refuses
// one). Values are expected finite: an infinite voxel gives inf * 0 = NaN, and WGSL leaves min
// and clamp of NaN to the implementation.
//
// Parameters and bindings: patchHistKernel in src/launch/patchhist.ts.

var<workgroup> cs: array<vec4f, {K}>;

@compute @workgroup_size(64)
fn patch_hist(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  if (li < {K}u) {
    let c = Cn[li];
    let aL = select(0.0, 1.0 / (c - Cn[max(li, 1u) - 1u]), li > 0u);
    let aR = select(0.0, 1.0 / (Cn[min(li + 1u, {K}u - 1u)] - c), li + 1u < {K}u);
    cs[li] = vec4f(c, aL, aR, 0.0);
  }
  workgroupBarrier();
  let m = gid.x + gid.y * nwg.x * 64u;
  if (m >= p.M) { return; }

  let base = rowBase(m); // kernels/lib/patchrows.wgsl (C = 1)

//#unroll k K
  var a{k} = 0.0;
  let h{k} = cs[{k}];
//#end
  for (var i0 = 0u; i0 < p.p0; i0++) {
    for (var i1 = 0u; i1 < p.p1; i1++) {
      let row = base + (i0 * p.Y + i1) * p.Z;
      for (var i2 = 0u; i2 < p.p2; i2++) {
        let v = x[row + i2];
//#unroll k K
        a{k} += clamp(min(1.0 + (v - h{k}.x) * h{k}.y, 1.0 + (h{k}.x - v) * h{k}.z), 0.0, 1.0);
//#end
      }
    }
  }
  let inv = f32({K}) / f32(p.p0 * p.p1 * p.p2);
//#unroll k K
  Out[m * {K}u + {k}u] = a{k} * inv;
//#end
}
