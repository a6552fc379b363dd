// The pairwise sigmoid (SigLIP) contrastive loss over a batch's similarity matrix S
// (S_ij = <img_i, txt_j>): logit_ij = exp(t) S_ij + b, z_ij = +1 on the diagonal, -1 off it,
//   rows:     loss_i = sum_j v_i v_j softplus(-z_ij logit_ij)     (= -log sigmoid(z logit))
//   backward: dS_ij = g_i v_i v_j (-z_ij) sigmoid(-z_ij logit_ij) exp(t)
//             part_i = (sum_j of the same factor times S_ij, sum_j of it without exp(t) S_ij)
//             (the per-row shares of dt and db, summed by the op)
// v (VALID) masks out pairs with an empty report. One invocation per row.

struct Params { B: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> S: array<f32>;
@group(0) @binding(2) var<storage, read> tb: array<f32>;     // [t, b]: t = log of the scale
@group(0) @binding(3) var<storage, read> valid: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;
@group(0) @binding(5) var<storage, read> G: array<f32>;
@group(0) @binding(6) var<storage, read_write> dS: array<f32>;
@group(0) @binding(7) var<storage, read_write> part: array<f32>;  // [B, 2]

fn v(i: u32) -> f32 {
//#if VALID
  return valid[i];
//#else
  return 1.0;
//#endif
}

// softplus(x) = log(1 + exp(x)) without overflow.
fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

@compute @workgroup_size(64)
fn siglip_rows(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.B) { return; }
  let scale = exp(tb[0]);
  let b = tb[1];
  var acc = 0.0;
  for (var j = 0u; j < p.B; j++) {
    let z = select(-1.0, 1.0, i == j);
    acc += v(i) * v(j) * softplus(-z * (scale * S[i * p.B + j] + b));
  }
  rows[i] = acc;
}

@compute @workgroup_size(64)
fn siglip_backward(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.B) { return; }
  let scale = exp(tb[0]);
  let b = tb[1];
  var dt = 0.0;
  var db = 0.0;
  for (var j = 0u; j < p.B; j++) {
    let z = select(-1.0, 1.0, i == j);
    let s = S[i * p.B + j];
    // d softplus(-z l) / dl = -z sigmoid(-z l)
    let dl = G[i] * v(i) * v(j) * (-z) * sigmoid(-z * (scale * s + b));
    dS[i * p.B + j] = dl * scale;
    dt += dl * scale * s;
    db += dl;
  }
  part[2u * i] = dt;
  part[2u * i + 1u] = db;
}
