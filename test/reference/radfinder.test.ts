// Self-test of the float64 RadFinder reference (test/reference/radfinder.ts): properties that
// hold for any correct implementation of the spec and fail for the usual mistakes (layout,
// RoPE pairing, GQA grouping, causality, weight norm, key list). CPU only, small sizes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  RELEASED_CONFIG,
  applyRopeHalf,
  erf,
  erfc,
  gelu,
  imageForward,
  l2normalize,
  layerNorm,
  localizationProbs,
  numel,
  patchEmbed,
  projectionHead,
  radfinderKeys,
  radfinderLoraKeys,
  randomStateDict,
  rmsNorm,
  rope3dAngles,
  textForward,
  textHiddenStates,
  vitAttention,
  weightNormMatrix,
  zeroShotScore,
  type RfConfig,
  type StateDict,
} from './radfinder.ts';

const t = suite('reference/radfinder');

const SMALL: RfConfig = {
  vision: { embedDim: 12, depth: 1, heads: 2, mlpRatio: 4, patch: [4, 4, 2], window: [8, 8, 4], ropeBase: 1000, eps: 1e-6 },
  combiner: { depth: 1, heads: 2, ropeBase: 100 },
  head: { hidden: 10, bottleneck: 6, out: 5 },
  text: { hidden: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 4, intermediate: 24, vocab: 50, eps: 1e-6, ropeTheta: 1e6, eosId: 49 },
};

function rand(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let a = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return lo + (hi - lo) * (((x ^ (x >>> 14)) >>> 0) / 4294967296);
  });
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.is(a.length, b.length, 'lengths');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  const d = maxDiff(a, b);
  assert.ok(d <= tol, `${what}: max difference ${d.toExponential(2)} > ${tol}`);
};

/** Volume (X, Y, Z) -> windows (N, 1, w0, w1, w2), (ih, iw, id) order, depth fastest. */
function toWindows(vol: Float64Array, size: [number, number, number], win: [number, number, number]): Float64Array {
  const [X, Y, Z] = size;
  const [w0, w1, w2] = win;
  const [Hg, Wg, Dg] = [X / w0, Y / w1, Z / w2];
  const out = new Float64Array(X * Y * Z);
  let o = 0;
  for (let ih = 0; ih < Hg; ih++)
    for (let iw = 0; iw < Wg; iw++)
      for (let id = 0; id < Dg; id++)
        for (let a = 0; a < w0; a++)
          for (let b = 0; b < w1; b++)
            for (let c = 0; c < w2; c++) out[o++] = vol[((ih * w0 + a) * Y + iw * w1 + b) * Z + id * w2 + c];
  return out;
}
function flipAxis(vol: Float64Array, size: [number, number, number], axis: number): Float64Array {
  const [X, Y, Z] = size;
  const out = new Float64Array(vol.length);
  for (let x = 0; x < X; x++)
    for (let y = 0; y < Y; y++)
      for (let z = 0; z < Z; z++) {
        const s = [x, y, z];
        s[axis] = size[axis] - 1 - s[axis];
        out[(x * Y + y) * Z + z] = vol[(s[0] * Y + s[1]) * Z + s[2]];
      }
  return out;
}
/** Make the patch kernel symmetric under a flip of one kernel axis (so only RoPE can break a mirror symmetry). */
function symmetriseKernel(cfg: RfConfig, sd: StateDict, axis: number): void {
  const w = sd.get('model.backbone_image.patch_embed.proj.weight')!.data;
  const [p0, p1, p2] = cfg.vision.patch;
  const K = p0 * p1 * p2;
  const copy = w.slice();
  for (let e = 0; e < cfg.vision.embedDim; e++)
    for (let a = 0; a < p0; a++)
      for (let b = 0; b < p1; b++)
        for (let c = 0; c < p2; c++) {
          const s = [a, b, c];
          s[axis] = cfg.vision.patch[axis] - 1 - s[axis];
          w[e * K + (a * p1 + b) * p2 + c] = 0.5 * (copy[e * K + (a * p1 + b) * p2 + c] + copy[e * K + (s[0] * p1 + s[1]) * p2 + s[2]]);
        }
}
function ropeOff(sd: StateDict): void {
  for (const k of ['model.backbone_image.rope.periods', 'model.feature_comb_image.rope.periods']) sd.get(k)!.data.fill(Infinity);
}

t('erf, erfc and exact GELU to double precision', () => {
  const cases: [number, number][] = [
    [erf(0.5), 0.5204998778130465],
    [erf(1), 0.8427007929497149],
    [erf(2.5), 0.999593047982555],
    [erf(-1.5), -0.9661051464753108],
  ];
  for (const [a, b] of cases) assert.ok(Math.abs(a - b) < 1e-15, `erf ${a} vs ${b}`);
  assert.ok(Math.abs(erfc(3) / 2.209049699858544e-5 - 1) < 1e-13, `erfc(3) ${erfc(3)}`);
  assert.ok(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1) < 1e-13, `erfc(5) ${erfc(5)}`);
  assert.ok(Math.abs(gelu(1) - 0.8413447460685429) < 1e-15, `gelu(1) ${gelu(1)}`);
  assert.ok(Math.abs(gelu(-1) + 0.15865525393145705) < 1e-15, `gelu(-1) ${gelu(-1)}`);
  // tanh approximation differs by ~1e-4 here: the exact form must not be confused with it
  assert.ok(Math.abs(gelu(1.5) - 1.5 * 0.9331927987311419) < 1e-15, `gelu(1.5) ${gelu(1.5)}`);
  assert.ok(gelu(-10) < 0 && gelu(-10) > -1e-21, `gelu(-10) ${gelu(-10)}`);
});

t('layerNorm (biased variance, eps) and rmsNorm (no +1)', () => {
  const x = Float64Array.from([1, 2, 3, 6]);
  const ln = layerNorm(x, Float64Array.from([1, 1, 1, 1]), new Float64Array(4), 0);
  close(ln, [-2, -1, 0, 3].map((v) => v / Math.sqrt(3.5)), 1e-15, 'layerNorm');
  const rn = rmsNorm(x, Float64Array.from([2, 2, 2, 2]), 0);
  close(rn, Array.from(x, (v) => (2 * v) / Math.sqrt(12.5)), 1e-15, 'rmsNorm');
});

t('3D RoPE angles: formula, grid centre is the identity, rotation keeps norms, relative positions', () => {
  const grid: [number, number, number] = [3, 4, 5];
  const a = rope3dAngles(grid, 12, 100);
  assert.is(a.length, 60);
  assert.is(a[0].length, 6);
  // token (h, w, d) = (2, 1, 3), d fastest; F = 2, periods [1, 10]
  const tok = a[(2 * 4 + 1) * 5 + 3];
  const c = [(2 * 2.5) / 3 - 1, (2 * 1.5) / 4 - 1, (2 * 3.5) / 5 - 1];
  close(tok, [0, 1, 2].flatMap((ax) => [1, 10].map((p) => (2 * Math.PI * c[ax]) / p)), 1e-14, 'angles');
  // the centre of an odd grid has coordinate 0 on every axis: identity rotation
  const centre = rope3dAngles([3, 3, 3], 12, 1000)[13];
  assert.is(maxDiff(centre, new Float64Array(6)), 0);
  const x = rand(12, 5);
  assert.equal(Array.from(applyRopeHalf(x, centre)), Array.from(x));
  // physical divisors: coordinates run past +1
  const phys = rope3dAngles([1, 1, 16], 6, 100, [1, 1, 2]);
  close([phys[15][2]], [2 * Math.PI * ((2 * 15.5) / 2 - 1)], 1e-12, 'physical depth coordinate');
  // rotation preserves norms; pairs are (j, j + h) (NOT interleaved)
  for (const ang of a) close([norm(applyRopeHalf(x, ang))], [norm(x)], 1e-14, 'norm');
  const e0 = new Float64Array(12);
  e0[0] = 1;
  const r = applyRopeHalf(e0, tok);
  close([r[0], r[6]], [Math.cos(tok[0]), Math.sin(tok[0])], 1e-15, 'rotate-half pair');
  assert.is(r[1], 0);
  // <R(a)q, R(b)k> depends only on a - b
  const q = rand(12, 6), k = rand(12, 7);
  const shift = rand(6, 8, -3, 3);
  const add = (u: Float64Array) => u.map((v, i) => v + shift[i]);
  close([dot(applyRopeHalf(q, a[7]), applyRopeHalf(k, a[30]))], [dot(applyRopeHalf(q, add(a[7])), applyRopeHalf(k, add(a[30])))], 1e-12, 'relative');
});

t('attention: CLS (null angles) is unrotated; RoPE changes spatial tokens', () => {
  const sd = randomStateDict(SMALL, 3);
  const x = Array.from({ length: 5 }, (_, i) => rand(12, 100 + i));
  const ang = rope3dAngles([2, 2, 1], 6, 1000);
  const pre = 'model.backbone_image.blocks.0.attn';
  const withNull = vitAttention(sd, pre, x, 2, [null, ...ang]);
  const withZero = vitAttention(sd, pre, x, 2, [new Float64Array(3), ...ang]);
  const withRot = vitAttention(sd, pre, x, 2, [Float64Array.from([0.3, -0.2, 0.1]), ...ang]);
  const noRope = vitAttention(sd, pre, x, 2, [null, null, null, null, null]);
  close(withNull.flatMap((r) => [...r]), withZero.flatMap((r) => [...r]), 1e-14, 'null = zero angle');
  assert.ok(maxDiff(withNull[0], withRot[0]) > 1e-6, 'rotating CLS must matter');
  assert.ok(maxDiff(withNull[1], noRope[1]) > 1e-6, 'RoPE must matter');
});

/** The shape of /work/shared/radfinder-reduced-config.example.json (non-cubic window, 3 combiner heads). */
const EXAMPLE: RfConfig = {
  vision: { embedDim: 36, depth: 2, heads: 2, mlpRatio: 4, patch: [16, 16, 4], window: [32, 48, 16], ropeBase: 1000, eps: 1e-6 },
  combiner: { depth: 1, heads: 3, ropeBase: 100 },
  head: { hidden: 48, bottleneck: 20, out: 16 },
  text: { hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 80, vocab: 300, eps: 1e-6, ropeTheta: 1e6, eosId: 256 },
};

t('patch embedding layout: (N,1,w0,w1,w2) depth fastest, tokens (ph, pw, pd) depth fastest', () => {
  for (const cfg of [SMALL, EXAMPLE]) {
    const sd = randomStateDict(cfg, 4);
    const W = sd.get('model.backbone_image.patch_embed.proj.weight')!.data;
    const b = sd.get('model.backbone_image.patch_embed.proj.bias')!.data;
    const E = cfg.vision.embedDim;
    const [w0, w1, w2] = cfg.vision.window;
    const [p0, p1, p2] = cfg.vision.patch;
    const K = p0 * p1 * p2;
    for (const [x, y, z] of [[5, 2, 3], [0, 7, 0], [7, 3, 2], [w0 - 1, w1 - 2, w2 - 1]]) {
      const win = new Float64Array(w0 * w1 * w2);
      win[(x * w1 + y) * w2 + z] = 1;
      const toks = patchEmbed(cfg, sd, win);
      assert.is(toks.length, (w0 / p0) * (w1 / p1) * (w2 / p2));
      const hit = (Math.floor(x / p0) * (w1 / p1) + Math.floor(y / p1)) * (w2 / p2) + Math.floor(z / p2);
      toks.forEach((tk, i) => {
        const want = Float64Array.from({ length: E }, (_, e) => b[e] + (i === hit ? W[e * K + ((x % p0) * p1 + (y % p1)) * p2 + (z % p2)] : 0));
        close(tk, want, 1e-15, `token ${i} for voxel ${[x, y, z]}`);
      });
    }
  }
});

t('the example reduced config runs (non-cubic window, 2 depth windows)', () => {
  const sd = randomStateDict(EXAMPLE, 21);
  const vol = rand(2 * 32 * 48 * 16, 22, 0, 1); // already in window order: grid (1, 1, 2)
  const r = imageForward(EXAMPLE, sd, vol, [1, 1, 2]);
  assert.is(r.depth.length, 8);
  assert.ok([r.image, r.disease, ...r.depth].every((v) => v.length === 16 && v.every(Number.isFinite)));
  const txt = textForward(EXAMPLE, sd, [72, 105, 256]);
  assert.ok(txt.report.length === 16 && txt.snippet.every(Number.isFinite));
});

t('weight-normalised last layer: row norms are |g|, g read from the file (aliases accepted)', () => {
  const sd = randomStateDict(SMALL, 5);
  for (const h of ['projection_image', 'projection_image_copy', 'projection_text', 'projection_text_copy']) {
    const pre = `model.${h}`;
    const g = sd.get(`${pre}.last_layer.parametrizations.weight.original0`)!.data;
    assert.ok(g.every((v) => Math.abs(v - 1) > 1e-6), 'random g is not 1');
    const { w, out, inp } = weightNormMatrix(sd, pre);
    assert.is(out, 5);
    assert.is(inp, 6);
    for (let o = 0; o < out; o++) close([norm(w.slice(o * inp, (o + 1) * inp))], [Math.abs(g[o])], 1e-14, `${h} row ${o}`);
  }
  const x = rand(16, 9);
  const y = projectionHead(sd, 'model.projection_text', x);
  const alias: StateDict = new Map(sd);
  alias.set('model.projection_text.last_layer.weight_g', alias.get('model.projection_text.last_layer.parametrizations.weight.original0')!);
  alias.set('model.projection_text.last_layer.weight_v', alias.get('model.projection_text.last_layer.parametrizations.weight.original1')!);
  alias.delete('model.projection_text.last_layer.parametrizations.weight.original0');
  alias.delete('model.projection_text.last_layer.parametrizations.weight.original1');
  close(projectionHead(alias, 'model.projection_text', x), y, 0, 'weight_g/weight_v aliases');
  // scaling g scales the output (no normalisation inside the head)
  const g2: StateDict = new Map(sd);
  const gk = 'model.projection_text.last_layer.parametrizations.weight.original0';
  g2.set(gk, { shape: [5, 1], data: sd.get(gk)!.data.map((v) => 3 * v) });
  close(projectionHead(g2, 'model.projection_text', x), y.map((v) => 3 * v), 1e-12, 'output scales with g');
});

t('text: causal (appending tokens leaves earlier states), GQA grouping floor(h / (heads/kvHeads))', () => {
  const sd = randomStateDict(SMALL, 6);
  const eos = SMALL.text.eosId;
  const a = textForward(SMALL, sd, [7, 21, eos]);
  const longer = textHiddenStates(SMALL, sd, [7, 21, eos, 3, 30]);
  close(longer[2], a.state, 1e-13, 'state of EOS after appending');
  assert.ok(maxDiff(textForward(SMALL, sd, [8, 21, eos]).state, a.state) > 1e-6, 'earlier tokens must matter');
  assert.is(a.report.length, 5);
  assert.is(a.snippet.length, 5);
  assert.ok(maxDiff(a.report, a.snippet) > 1e-6, 'the two text heads differ');
  // Same model with kvHeads = heads and each kv head duplicated for its query group: identical.
  const t2 = { ...SMALL.text, kvHeads: 4 };
  const cfg2: RfConfig = { ...SMALL, text: t2 };
  const sd2: StateDict = new Map(sd);
  const hd = SMALL.text.headDim, H = SMALL.text.hidden;
  for (let l = 0; l < SMALL.text.layers; l++)
    for (const n of ['k_proj', 'v_proj']) {
      const key = `model.backbone_text.layers.${l}.self_attn.${n}.weight`;
      const w = sd.get(key)!.data;
      const w2 = new Float64Array(4 * hd * H);
      for (let h = 0; h < 4; h++) w2.set(w.subarray(Math.floor(h / 2) * hd * H, (Math.floor(h / 2) + 1) * hd * H), h * hd * H);
      sd2.set(key, { shape: [4 * hd, H], data: w2 });
    }
  close(textForward(cfg2, sd2, [7, 21, eos]).state, a.state, 1e-13, 'GQA = MHA with repeated kv heads');
  // a single token sees only itself: attention output = o_proj(v) exactly; the state is finite and normalised by the final RMSNorm
  const one = textForward(SMALL, sd, [eos]).state;
  assert.ok(one.every(Number.isFinite));
});

t('image: shapes, window independence, mirror symmetries with RoPE off, RoPE breaks them', () => {
  const cfg = SMALL;
  const size: [number, number, number] = [16, 8, 8]; // grid (2, 1, 2)
  const grid: [number, number, number] = [2, 1, 2];
  const vol = rand(16 * 8 * 8, 11, 0, 1);
  const sd = randomStateDict(cfg, 12);
  const base = imageForward(cfg, sd, toWindows(vol, size, cfg.vision.window), grid);
  assert.is(base.image.length, 5);
  assert.is(base.disease.length, 5);
  assert.is(base.depth.length, 2 * 2); // (w2/p2) * Dg bins
  assert.equal(base.valid, [true, true, true, true]);
  assert.is(base.backboneCls.length, 4);
  assert.ok([base.image, base.disease, ...base.depth].every((v) => v.every(Number.isFinite)));
  assert.ok(maxDiff(base.image, base.disease) > 1e-6, 'image and disease heads differ');

  // windows are encoded independently: swapping two windows swaps their backbone outputs
  const win = toWindows(vol, size, cfg.vision.window);
  const n = 256;
  const swapped = win.slice();
  swapped.set(win.subarray(0, n), 3 * n);
  swapped.set(win.subarray(3 * n, 4 * n), 0);
  const sw = imageForward(cfg, sd, swapped, grid);
  close(sw.backboneCls[0], base.backboneCls[3], 1e-13, 'swapped CLS');
  close(sw.backbonePatchMean[3], base.backbonePatchMean[0], 1e-13, 'swapped patch mean');
  close(sw.backboneCls[1], base.backboneCls[1], 1e-13, 'untouched window');

  // RoPE off + kernel symmetric along x: flipping the volume along x changes nothing
  const off = randomStateDict(cfg, 12);
  ropeOff(off);
  symmetriseKernel(cfg, off, 0);
  symmetriseKernel(cfg, off, 2);
  const o1 = imageForward(cfg, off, toWindows(vol, size, cfg.vision.window), grid);
  const fx = imageForward(cfg, off, toWindows(flipAxis(vol, size, 0), size, cfg.vision.window), grid);
  close(fx.image, o1.image, 1e-12, 'x flip, RoPE off: image');
  close(fx.disease, o1.disease, 1e-12, 'x flip, RoPE off: disease');
  fx.depth.forEach((d, i) => close(d, o1.depth[i], 1e-12, `x flip, RoPE off: depth ${i}`));
  // ... and flipping along depth reverses the depth bins (d2 = id * T2 + pd ordering is consistent)
  const fz = imageForward(cfg, off, toWindows(flipAxis(vol, size, 2), size, cfg.vision.window), grid);
  close(fz.image, o1.image, 1e-12, 'z flip, RoPE off: image');
  fz.depth.forEach((d, i) => close(d, o1.depth[3 - i], 1e-12, `z flip, RoPE off: depth ${i}`));
  // with RoPE on (same weights otherwise), the x flip is visible. With F = 1 the only period is
  // base^0 = 1, and a 2-cell axis sits at angles +-pi (a flip-symmetric rotation), so use period 3.
  const on = randomStateDict(cfg, 12);
  for (const k of ['model.backbone_image.rope.periods', 'model.feature_comb_image.rope.periods']) on.get(k)!.data.fill(3);
  symmetriseKernel(cfg, on, 0);
  symmetriseKernel(cfg, on, 2);
  const n1 = imageForward(cfg, on, toWindows(vol, size, cfg.vision.window), grid);
  const nx = imageForward(cfg, on, toWindows(flipAxis(vol, size, 0), size, cfg.vision.window), grid);
  assert.ok(maxDiff(nx.image, n1.image) > 1e-8, 'RoPE must make the x flip visible');
  // every depth bin embedding depends on its own rows: bins differ
  assert.ok(maxDiff(n1.depth[0], n1.depth[1]) > 1e-8);
});

t('zero-shot score (mean7) and localisation', () => {
  const e = (i: number) => Float64Array.from({ length: 4 }, (_, j) => (j === i ? 1 : 0));
  assert.ok(Math.abs(zeroShotScore(e(0).map((v) => 3 * v), [e(0), e(0).map((v) => 5 * v)], [e(1)]) - 1 / (1 + Math.exp(-1))) < 1e-15);
  // normalise each prompt before averaging: a long prompt does not dominate
  const pos = [Float64Array.from([100, 0, 0, 0]), Float64Array.from([0, 1, 0, 0])];
  const s = zeroShotScore(Float64Array.from([1, 1, 0, 0]), pos, [e(2)]);
  assert.ok(Math.abs(s - 1 / (1 + Math.exp(-1))) < 1e-15, `mean7 ${s}`);
  const depth = [Float64Array.from([1, 0]), Float64Array.from([1, 1]), Float64Array.from([0, 1]), Float64Array.from([-1, 0.1])];
  const loc = localizationProbs(depth, Float64Array.from([0, 2]), [true, true, false, true], 0.1);
  close(loc.cosine, [0, Math.SQRT1_2, 1, 0.1 / Math.sqrt(1.01)], 1e-15, 'cosine');
  assert.is(loc.bin, 1, 'masked bin 2 cannot win');
  assert.is(loc.probs[2], 0);
  close([loc.probs.reduce((a, b) => a + b, 0)], [1], 1e-15, 'probs sum');
  close([loc.probs[1] / loc.probs[0]], [Math.exp(Math.SQRT1_2 / 0.1)], 1e-9, 'tau');
  close(l2normalize(Float64Array.from([3, 4])), [0.6, 0.8], 1e-16, 'l2normalize');
});

t('keys: released sizes, section 5 counts, parameter count; reduced sizes', () => {
  const keys = radfinderKeys(RELEASED_CONFIG);
  const lora = radfinderLoraKeys(RELEASED_CONFIG, 16);
  assert.is(new Set(keys.map((k) => k.key)).size, keys.length, 'keys are unique');
  const count = (p: string) => keys.filter((k) => k.key.startsWith(`model.${p}`)).length;
  assert.is(count('backbone_image.'), 390);
  assert.is(count('feature_comb_image.'), 72);
  assert.is(count('projection_'), 32);
  assert.is(count('backbone_text.') + lora.length, 534);
  assert.is(count('criterion.'), 2);
  assert.is(lora.length, 4 * 28 * 2);
  assert.is(keys.length, 1030 - 4 * 28 * 2);
  const shape = (k: string) => keys.find((x) => x.key === `model.${k}`)?.shape;
  assert.equal(shape('backbone_image.patch_embed.proj.weight'), [1080, 1, 16, 16, 4]);
  assert.equal(shape('backbone_image.rope.periods'), [15]);
  assert.equal(shape('backbone_image.blocks.23.attn.kv.weight'), [2160, 1080]);
  assert.equal(shape('feature_comb_image.patch_proj.weight'), [1080, 2160]);
  assert.equal(shape('projection_image_copy.layers.0.weight'), [2048, 2160]);
  assert.equal(shape('projection_text_copy.layers.0.weight'), [2048, 1024]);
  assert.equal(shape('projection_text.last_layer.parametrizations.weight.original0'), [512, 1]);
  assert.equal(shape('backbone_text.embed_tokens.weight'), [151669, 1024]);
  assert.equal(shape('backbone_text.layers.27.self_attn.q_proj.weight'), [2048, 1024]);
  assert.equal(shape('backbone_text.layers.27.self_attn.o_proj.weight'), [1024, 2048]);
  assert.equal(shape('criterion.t'), []);
  const params = keys.reduce((s, k) => s + numel(k.shape), 0);
  const loraParams = lora.reduce((s, k) => s + numel(k.shape), 0);
  assert.is(params, 1_025_215_160);
  assert.is(params + loraParams, 1_029_802_680);
  console.log(`    released RadFinder: ${keys.length} keys (${keys.length + lora.length} with LoRA), ${params} parameters without LoRA, ${params + loraParams} with`);

  // reduced sizes: every key is generated with its shape, periods are base^(k/F)
  const sd = randomStateDict(SMALL, 1);
  const small = radfinderKeys(SMALL);
  assert.is(sd.size, small.length);
  for (const k of small) assert.is(sd.get(k.key)!.data.length, numel(k.shape), k.key);
  close(sd.get('model.backbone_image.rope.periods')!.data, [1], 0, 'F = 1');
  const sd2 = randomStateDict({ ...SMALL, vision: { ...SMALL.vision, embedDim: 24 } }, 1);
  close(sd2.get('model.backbone_image.rope.periods')!.data, [1, Math.sqrt(1000)], 1e-12, 'periods base^(k/F)');
  assert.ok(sd.get('model.backbone_image.blocks.0.ls1.gamma')!.data.every((v) => v !== 1));
  assert.ok(sd.get('model.backbone_image.blocks.0.attn.q.bias')!.data.every((v) => v !== 0));
  assert.throws(() => radfinderKeys({ ...SMALL, vision: { ...SMALL.vision, heads: 3 } }), /divisible by 6/);
});

t.run();
