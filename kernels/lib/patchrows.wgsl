// Where a patch starts in a volume, shared by the kernels that read patches in place
// (kernels/patch3d.wgsl, kernels/patchhist.wgsl). Volume x [B, C, X, Y, Z] (z fastest); patch
// rows m = (b * nWin + n) * T + t, window n = (ih * Wg + iw) * Dg + id, token t = (ph * nW + pw)
// * nD + pd (depth fastest in both); without windows there is one window (the volume). Needs the
// parameters C, X, Y, Z, T, nW, nD, nWin, Wg, Dg, w0, w1, w2, p0, p1, p2 in `p`.

// Offset in x of the first voxel of window bw = b * nWin + n (channel 0).
fn windowBase(bw: u32) -> u32 {
  let b = bw / p.nWin;
  let n = bw - b * p.nWin;
  let wd = p.Wg * p.Dg;
  let ih = n / wd;
  let iw = (n - ih * wd) / p.Dg;
  let id = n - ih * wd - iw * p.Dg;
  return b * p.C * p.X * p.Y * p.Z + (ih * p.w0 * p.Y + iw * p.w1) * p.Z + id * p.w2;
}

// Offset in x of the first voxel of row m's patch (channel 0).
fn rowBase(m: u32) -> u32 {
  let bw = m / p.T;
  let t = m - bw * p.T;
  let td = p.nW * p.nD;
  let ph = t / td;
  let pw = (t - ph * td) / p.nD;
  let pd = t - ph * td - pw * p.nD;
  return windowBase(bw) + ((ph * p.p0) * p.Y + pw * p.p1) * p.Z + pd * p.p2;
}
