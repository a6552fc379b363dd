// Strided copies, the one kernel family behind permute, slice, expand and concat.
//
// gather:  out[i] = X[offset + sum_d c_d * strides[d]]   (i walks `dims` row-major)
//          permute: strides permuted; slice: offset + parent strides; expand: stride 0
// scatter: Y[offset + sum_d c_d * strides[d]] = X[i]     (writes a strided view: concat, slice backward)
//
// One invocation copies a run of up to CHUNK elements along the innermost dimension. The
// offset of the run's first element needs a division per dimension; integer division has
// no SIMD instruction on CPUs (lavapipe runs each lane's divide in turn), so it is paid
// once per run, not once per element. Within a run the strided offset just adds. On GPUs
// CHUNK is 1 (one element per invocation): neighbouring lanes then write neighbouring
// addresses, and read them where the innermost input stride is 1. gather_tiled (below)
// transposes through workgroup memory so that both sides are.

override CHUNK: u32 = 64u;

// Parameters and bindings: layoutKernel in src/launch/layout.ts.

fn dim(d: u32) -> u32 { return p.dims[d / 4u][d % 4u]; }
fn stride(d: u32) -> u32 { return p.strides[d / 4u][d % 4u]; }

struct Run { first: u32, strided: u32, len: u32, step: u32 }

// The run for invocation `id`: its first contiguous index, the strided offset of that
// element, how many elements it covers and the strided step between them.
fn run(id: u32) -> Run {
  let inner = dim(p.rank - 1u);
  let row = id / p.chunks;
  let start = (id % p.chunks) * CHUNK;
  var rem = row;
  var at = p.offset + start * stride(p.rank - 1u);
  for (var d = i32(p.rank) - 2; d >= 0; d--) {
    let n = dim(u32(d));
    at += (rem % n) * stride(u32(d));
    rem = rem / n;
  }
  return Run(row * inner + start, at, min(CHUNK, inner - start), stride(p.rank - 1u));
}

fn invocation(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = invocation(gid, nwg);
  if (id >= (p.n / dim(p.rank - 1u)) * p.chunks) { return; }
  let r = run(id);
  for (var j = 0u; j < r.len; j++) { Y[r.first + j] = X[r.strided + j * r.step]; }
}

@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = invocation(gid, nwg);
  if (id >= (p.n / dim(p.rank - 1u)) * p.chunks) { return; }
  let r = run(id);
  for (var j = 0u; j < r.len; j++) { Y[r.strided + j * r.step] = X[r.first + j]; }
}

// ---------------------------------------------------------------- transposing gather, for GPUs
// For a gather whose innermost output axis Q (= rank - 1) is strided in X while another output
// axis P (p.axis) is not: TILE x TILE blocks of (P, Q) go through workgroup memory, read with
// neighbouring lanes on neighbouring P (X's contiguous axis) and written with neighbouring
// lanes on neighbouring Q (Y's). Workgroups walk [batches, tilesP, tilesQ], batches being
// every output axis but P and Q.

const TILE: u32 = 32u;
// One padding column: a column of the tile falls in distinct workgroup-memory banks.
var<workgroup> tile: array<f32, 1056>; // TILE * (TILE + 1)

@compute @workgroup_size(32, 8)
fn gather_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let g = wid.x + wid.y * nwg.x;
  let tq = g % p.tilesQ;
  let tp = (g / p.tilesQ) % p.tilesP;
  var b = g / (p.tilesQ * p.tilesP);
  if (b >= p.batches) { return; } // uniform over the workgroup
  let q = p.rank - 1u;
  // The batch index's offsets in X and Y, and Y's stride along P (Y is row-major).
  var inAt = p.offset;
  var outAt = 0u;
  var outStride = 1u;
  var strideP = 0u;
  for (var d = i32(q); d >= 0; d--) {
    let dd = u32(d);
    let n = dim(dd);
    if (dd == p.axis) {
      strideP = outStride;
    } else if (dd != q) {
      inAt += (b % n) * stride(dd);
      outAt += (b % n) * outStride;
      b = b / n;
    }
    outStride *= n;
  }
  let nP = dim(p.axis);
  let nQ = dim(q);
  let p0 = tp * TILE;
  let q0 = tq * TILE;
  for (var r = lid.y; r < TILE; r += 8u) {
    let a = p0 + lid.x;
    let c = q0 + r;
    if (a < nP && c < nQ) { tile[r * (TILE + 1u) + lid.x] = X[inAt + a * stride(p.axis) + c * stride(q)]; }
  }
  workgroupBarrier();
  for (var r = lid.y; r < TILE; r += 8u) {
    let a = p0 + r;
    let c = q0 + lid.x;
    if (a < nP && c < nQ) { Y[outAt + a * strideP + c] = tile[lid.x * (TILE + 1u) + r]; }
  }
}
