// The pairwise sigmoid (SigLIP) contrastive loss over a batch's similarity matrix S [B, N]
// (S_ij = <img_i, txt_j>, N >= B: text i is image i's report, texts B.. N-1 are reports of
// other cases, negatives for every image): logit_ij = exp(t) S_ij + b, z_ij = +1 where
// i == j, -1 elsewhere,
//   rows:     loss_i = sum_j v_i v_j softplus(-z_ij logit_ij)     (= -log sigmoid(z logit))
//   backward: dS_ij = g_i v_i v_j (-z_ij) sigmoid(-z_ij logit_ij) exp(t)
//             part_i = (sum_j of the same factor times S_ij, sum_j of it without exp(t) S_ij)
//             (the per-row shares of dt and db, summed by the op)
// v (VALID: MASK [N], one per text) masks out pairs with an empty report; an image's row
// takes its own report's v_i. One invocation per row.

// Parameters and bindings: siglipKernel in src/losses/siglip.ts. TB = [t, b] (t: the log of the
// scale); MASK [N] (with VALID); PART [B, 2].

fn v(i: u32) -> f32 {
//#if VALID
  return MASK[i];
//#else
  return 1.0;
//#endif
}

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), without overflow. WGSL has
// no log1p and rounding u = 1 + z first would lose z against 1 (a pair's term of 2e-9 came
// out 0), so log(u) - ((u - 1) - z) / u corrects u's rounding (Goldberg's trick, as the
// elementwise softplus), and z itself where u == 1.
fn softplus(x: f32) -> f32 {
  let z = exp(-abs(x));
  let u = 1.0 + z;
  return max(x, 0.0) + select(log(u) - ((u - 1.0) - z) / u, z, u == 1.0);
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

@compute @workgroup_size(64)
fn siglip_rows(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.B) { return; }
  let scale = exp(TB[0]);
  let b = TB[1];
  var acc = 0.0;
  for (var j = 0u; j < p.N; j++) {
    let z = select(-1.0, 1.0, i == j);
    acc += v(i) * v(j) * softplus(-z * (scale * S[i * p.N + j] + b));
  }
  ROWS[i] = acc;
}

@compute @workgroup_size(64)
fn siglip_backward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.B) { return; }
  let scale = exp(TB[0]);
  let b = TB[1];
  var dt = 0.0;
  var db = 0.0;
  for (var j = 0u; j < p.N; j++) {
    let z = select(-1.0, 1.0, i == j);
    let s = S[i * p.N + j];
    // d softplus(-z l) / dl = -z sigmoid(-z l)
    let dl = G[i] * v(i) * v(j) * (-z) * sigmoid(-z * (scale * s + b));
    DS[i * p.N + j] = dl * scale;
    dt += dl * scale * s;
    db += dl;
  }
  PART[2u * i] = dt;
  PART[2u * i + 1u] = db;
}
