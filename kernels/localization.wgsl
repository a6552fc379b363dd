// The depth head of intra-scan localization: which 12 mm depth bin of a scan a report
// sentence refers to. Per snippet s, over its bins d (scores = cos(slice_d, snippet) / tau,
// computed by the caller; bins outside the scan masked by `valid`):
//   p_d    = softmax over valid bins
//   q_d    = the Gaussian target, exp(-(d - t_s)^2 / (2 sigma^2)) within a radius of t_s:
//            RADFINDER (radfinder localization_loss.py, the default): radius max(floor(3 sigma
//              + 0.5), 1), normalised over every bin of the row, then zeroed outside the valid
//              bins without normalising again (the target's mass near padding is lost);
//            otherwise: radius ceil(3 sigma), normalised over the valid bins only.
//   loss_s = -sum_d q_d log p_d                     (soft cross-entropy)
//   E_s    = sum_d p_d (d + 1/2) binMm              (expected depth, the regression readout)
//   A_s    = argmax_d p_d                           (the prediction)
// out is [S, 3] = (loss, E, A). Backward (gradients for loss and E; A has none):
//   dscore_d = gL_s (p_d sum_valid(q) - q_d) + gE_s p_d (z_d - E_s),  z_d = (d + 1/2) binMm
// (sum_valid(q) is 1 but for RADFINDER targets that lost mass to padded bins)
// A snippet without a valid bin gives (0, 0, 0) and a zero gradient.
// One invocation per snippet; a snippet's bins are few (tens), so three passes are cheap.

// Parameters (S, D, sigma, binMm) and bindings: depthHeadKernel in src/losses/localization.ts.
// SCORES, VALID [S, D]; TARGET [S]; OUT [S, 3] (forward); the backward reads the forward's
// output as HEAD and its gradient as G_OUT [S, 3], and writes D_SCORES [S, D].

fn isValid(i: u32) -> bool { return VALID[i] != 0.0; }

// q_d before normalisation.
fn gauss(d: u32, t: i32) -> f32 {
  let diff = f32(i32(d) - t);
//#if RADFINDER
  let radius = max(floor(3.0 * p.sigma + 0.5), 1.0);
//#else
  let radius = ceil(3.0 * p.sigma);
//#endif
  return select(0.0, exp(-diff * diff / (2.0 * p.sigma * p.sigma)), abs(diff) <= radius);
}

// Per snippet: the max m of the valid bins' scores and the log of the softmax's normaliser
// lz = log(sum exp(score - m)), kept apart (log p = (score - m) - lz: score - m is exact near
// m, and rounding m + lz first would lose lz against a large m; scores of 1e4 gave an expected
// depth of 11.997 mm for 12), and the Gaussian target's normaliser (both entry points start
// from these).
struct Stats { m: f32, lz: f32, qsum: f32, qvalid: f32 }

fn stats(s: u32) -> Stats {
  let base = s * p.D;
  let t = TARGET[s];
  var m = -1e30;
  for (var d = 0u; d < p.D; d++) { if (isValid(base + d)) { m = max(m, SCORES[base + d]); } }
  var z = 0.0;
  var qsum = 0.0;
  var qvalid = 0.0;
  for (var d = 0u; d < p.D; d++) {
    if (isValid(base + d)) {
      z += exp(SCORES[base + d] - m);
      qvalid += gauss(d, t);
    }
    qsum += gauss(d, t);
  }
//#if RADFINDER
  return Stats(m, log(z), qsum, qvalid / qsum);
//#else
  return Stats(m, log(z), qvalid, 1.0);
//#endif
}

// Depth of bin d's centre in mm from the first bin's start.
fn depthMm(d: u32) -> f32 { return (f32(d) + 0.5) * p.binMm; }

@compute @workgroup_size(64)
fn depth_head(@builtin(global_invocation_id) gid: vec3u) {
  let s = gid.x;
  if (s >= p.S) { return; }
  let base = s * p.D;
  let t = TARGET[s];
  let st = stats(s);
  var loss = 0.0;
  var e = 0.0;
  var best = 0u;
  var bestScore = -1e30;
  for (var d = 0u; d < p.D; d++) {
    if (!isValid(base + d)) { continue; }
    let sc = SCORES[base + d];
    let logp = (sc - st.m) - st.lz;
    loss -= gauss(d, t) / st.qsum * logp;
    e += exp(logp) * depthMm(d);
    if (sc > bestScore) { bestScore = sc; best = d; }
  }
  OUT[3u * s] = loss;
  OUT[3u * s + 1u] = e;
  OUT[3u * s + 2u] = f32(best);
}

@compute @workgroup_size(64)
fn depth_head_backward(@builtin(global_invocation_id) gid: vec3u) {
  let s = gid.x;
  if (s >= p.S) { return; }
  let base = s * p.D;
  let t = TARGET[s];
  let st = stats(s);
  let e = HEAD[3u * s + 1u];
  let gL = G_OUT[3u * s];
  let gE = G_OUT[3u * s + 1u];
  for (var d = 0u; d < p.D; d++) {
    if (!isValid(base + d)) { D_SCORES[base + d] = 0.0; continue; }
    let pd = exp((SCORES[base + d] - st.m) - st.lz);
    D_SCORES[base + d] = gL * (pd * st.qvalid - gauss(d, t) / st.qsum) + gE * pd * (depthMm(d) - e);
  }
}
