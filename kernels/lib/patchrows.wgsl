// Where a patch starts in a volume, shared by the kernels that read patches in place
// (kernels/patch3d.wgsl, kernels/patchhist.wgsl). Volume x [B, C, X, Y, Z] (z fastest); patch
// rows m = (b * nWin + n) * T + t, window n = (ih * Wg + iw) * Dg + id, token t = (ph * nW + pw)
// * nD + pd (depth fastest in both); without windows there is one window (the volume). Needs the
// parameters C, X, Y, Z, T, nW, nD, nWin, Wg, Dg, w0, w1, w2, p0, p1, p2 in `p`.

// i = (a * nb + b) * nc + c -> (a, b, c): a window's or a token's three coordinates.
fn coords3(i: u32, nb: u32, nc: u32) -> vec3u {
  let bc = nb * nc;
  let a = i / bc;
  let r = i - a * bc;
  let b = r / nc;
  return vec3u(a, b, r - b * nc);
}

// Offset in x of the first voxel of window bw = b * nWin + n (channel 0).
fn windowBase(bw: u32) -> u32 {
  let b = bw / p.nWin;
  let w = coords3(bw - b * p.nWin, p.Wg, p.Dg);
  return b * p.C * p.X * p.Y * p.Z + (w.x * p.w0 * p.Y + w.y * p.w1) * p.Z + w.z * p.w2;
}

// Offset in x of the first voxel of row m's patch (channel 0).
fn rowBase(m: u32) -> u32 {
  let bw = m / p.T;
  let t = coords3(m - bw * p.T, p.nW, p.nD);
  return windowBase(bw) + (t.x * p.p0 * p.Y + t.y * p.p1) * p.Z + t.z * p.p2;
}
