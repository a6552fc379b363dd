// Float64 CPU reference of the released RadFinder model, written straight from
// /work/shared/RADFINDER-MODEL.md (sections 2, 3, 4, 5, 8) and nothing else: the ground truth
// the GPU model is compared against, module by module. Deliberately naive (row arrays, plain
// loops); meant for reduced sizes only.
//
// Conventions: every Linear weight is (out, in) and computes y = x W^T + b. Token rows are
// Float64Array. Keys are exactly section 5's, with the "model." prefix.

import { rng } from '../helpers/random.ts';
export interface RfVisionConfig {
  embedDim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  patch: [number, number, number];
  window: [number, number, number];
  ropeBase: number;
  eps: number /* 1e-6 */;
}
export interface RfCombinerConfig {
  depth: number;
  heads: number;
  ropeBase: number;
}
export interface RfHeadConfig {
  hidden: number;
  bottleneck: number;
  out: number;
}
export interface RfTextConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  eps: number;
  ropeTheta: number;
  eosId: number;
}
export interface RfConfig {
  vision: RfVisionConfig;
  combiner: RfCombinerConfig;
  head: RfHeadConfig;
  text: RfTextConfig;
}
export interface F64Tensor {
  shape: number[];
  data: Float64Array;
}
/** Keys exactly as RADFINDER-MODEL.md section 5, with the "model." prefix. */
export type StateDict = Map<string, F64Tensor>;

/** The released sizes (section 2, 3, 2.5): for key and parameter counts only, never allocate. */
export const RELEASED_CONFIG: RfConfig = {
  vision: { embedDim: 1080, depth: 24, heads: 12, mlpRatio: 4, patch: [16, 16, 4], window: [128, 128, 32], ropeBase: 1000, eps: 1e-6 },
  combiner: { depth: 4, heads: 12, ropeBase: 100 },
  head: { hidden: 2048, bottleneck: 256, out: 512 },
  text: {
    hidden: 1024, layers: 28, heads: 16, kvHeads: 8, headDim: 128, intermediate: 3072, vocab: 151669, eps: 1e-6,
    ropeTheta: 1e6, eosId: 151643,
  },
};

const P = 'model.';
const TEXT_HEADS = ['projection_text', 'projection_text_copy'] as const;
const IMAGE_HEADS = ['projection_image', 'projection_image_copy'] as const;

// ------------------------------------------------------------------------------- keys

type Init =
  | { kind: 'linearW'; fanIn: number }
  | { kind: 'bias' }
  | { kind: 'normW' }
  | { kind: 'normB' }
  | { kind: 'gamma' }
  | { kind: 'cls' }
  | { kind: 'periods'; base: number }
  | { kind: 'wnG' }
  | { kind: 'wnV' }
  | { kind: 'embed' }
  | { kind: 'const'; value: number }
  | { kind: 'lora'; fanIn: number };

interface KeySpec {
  key: string;
  shape: number[];
  init: Init;
}

function blockSpecs(prefix: string, E: number, mlp: number): KeySpec[] {
  const lin = (name: string, out: number, inp: number): KeySpec[] => [
    { key: `${prefix}.${name}.weight`, shape: [out, inp], init: { kind: 'linearW', fanIn: inp } },
    { key: `${prefix}.${name}.bias`, shape: [out], init: { kind: 'bias' } },
  ];
  const norm = (name: string): KeySpec[] => [
    { key: `${prefix}.${name}.weight`, shape: [E], init: { kind: 'normW' } },
    { key: `${prefix}.${name}.bias`, shape: [E], init: { kind: 'normB' } },
  ];
  return [
    ...norm('norm1'),
    ...lin('attn.q', E, E),
    ...lin('attn.kv', 2 * E, E),
    ...lin('attn.proj', E, E),
    { key: `${prefix}.ls1.gamma`, shape: [E], init: { kind: 'gamma' } },
    ...norm('norm2'),
    ...lin('mlp.fc1', mlp, E),
    ...lin('mlp.fc2', E, mlp),
    { key: `${prefix}.ls2.gamma`, shape: [E], init: { kind: 'gamma' } },
  ];
}

function checkConfig(cfg: RfConfig): void {
  const v = cfg.vision;
  const hdV = v.embedDim / v.heads;
  const hdC = v.embedDim / cfg.combiner.heads;
  if (!Number.isInteger(hdV) || hdV % 6 !== 0) throw new Error(`vision head dim ${hdV} must be an integer divisible by 6`);
  if (!Number.isInteger(hdC) || hdC % 6 !== 0) throw new Error(`combiner head dim ${hdC} must be an integer divisible by 6`);
  for (let a = 0; a < 3; a++)
    if (v.window[a] % v.patch[a] !== 0) throw new Error(`window ${v.window} is not a multiple of patch ${v.patch}`);
  const t = cfg.text;
  if (t.headDim % 2 !== 0) throw new Error('text head dim must be even');
  if (t.heads % t.kvHeads !== 0) throw new Error('text heads must be a multiple of kv heads');
}

function keySpecs(cfg: RfConfig): KeySpec[] {
  checkConfig(cfg);
  const v = cfg.vision;
  const E = v.embedDim;
  const mlp = v.mlpRatio * E;
  const [p0, p1, p2] = v.patch;
  const out: KeySpec[] = [];
  // 2.1 window backbone
  const bb = `${P}backbone_image`;
  out.push({ key: `${bb}.patch_embed.proj.weight`, shape: [E, 1, p0, p1, p2], init: { kind: 'linearW', fanIn: p0 * p1 * p2 } });
  out.push({ key: `${bb}.patch_embed.proj.bias`, shape: [E], init: { kind: 'bias' } });
  out.push({ key: `${bb}.cls_token`, shape: [1, 1, E], init: { kind: 'cls' } });
  out.push({ key: `${bb}.rope.periods`, shape: [E / v.heads / 6], init: { kind: 'periods', base: v.ropeBase } });
  for (let i = 0; i < v.depth; i++) out.push(...blockSpecs(`${bb}.blocks.${i}`, E, mlp));
  out.push({ key: `${bb}.norm.weight`, shape: [E], init: { kind: 'normW' } });
  out.push({ key: `${bb}.norm.bias`, shape: [E], init: { kind: 'normB' } });
  // 2.2 / 2.3 feature combiner (width = vision width, mlp ratio = vision's)
  const fc = `${P}feature_comb_image`;
  out.push({ key: `${fc}.patch_proj.weight`, shape: [E, 2 * E], init: { kind: 'linearW', fanIn: 2 * E } });
  out.push({ key: `${fc}.patch_proj.bias`, shape: [E], init: { kind: 'bias' } });
  out.push({ key: `${fc}.axis_patch_proj.weight`, shape: [E, E], init: { kind: 'linearW', fanIn: E } });
  out.push({ key: `${fc}.axis_patch_proj.bias`, shape: [E], init: { kind: 'bias' } });
  out.push({ key: `${fc}.cls_token`, shape: [1, 1, E], init: { kind: 'cls' } });
  out.push({ key: `${fc}.rope.periods`, shape: [E / cfg.combiner.heads / 6], init: { kind: 'periods', base: cfg.combiner.ropeBase } });
  for (let i = 0; i < cfg.combiner.depth; i++) out.push(...blockSpecs(`${fc}.blocks.${i}`, E, mlp));
  out.push({ key: `${fc}.norm.weight`, shape: [E], init: { kind: 'normW' } });
  out.push({ key: `${fc}.norm.bias`, shape: [E], init: { kind: 'normB' } });
  // 2.5 heads
  const { hidden, bottleneck, out: od } = cfg.head;
  const headSpecs = (name: string, inDim: number): KeySpec[] => {
    const h = `${P}${name}`;
    return [
      { key: `${h}.layers.0.weight`, shape: [hidden, inDim], init: { kind: 'linearW', fanIn: inDim } },
      { key: `${h}.layers.0.bias`, shape: [hidden], init: { kind: 'bias' } },
      { key: `${h}.layers.2.weight`, shape: [hidden, hidden], init: { kind: 'linearW', fanIn: hidden } },
      { key: `${h}.layers.2.bias`, shape: [hidden], init: { kind: 'bias' } },
      { key: `${h}.layers.4.weight`, shape: [bottleneck, hidden], init: { kind: 'linearW', fanIn: hidden } },
      { key: `${h}.layers.4.bias`, shape: [bottleneck], init: { kind: 'bias' } },
      { key: `${h}.last_layer.parametrizations.weight.original0`, shape: [od, 1], init: { kind: 'wnG' } },
      { key: `${h}.last_layer.parametrizations.weight.original1`, shape: [od, bottleneck], init: { kind: 'wnV' } },
    ];
  };
  for (const n of IMAGE_HEADS) out.push(...headSpecs(n, 2 * E));
  for (const n of TEXT_HEADS) out.push(...headSpecs(n, cfg.text.hidden));
  // 3 text backbone (LoRA keys excluded)
  const t = cfg.text;
  const tb = `${P}backbone_text`;
  const H = t.hidden;
  const qW = t.heads * t.headDim;
  const kvW = t.kvHeads * t.headDim;
  out.push({ key: `${tb}.embed_tokens.weight`, shape: [t.vocab, H], init: { kind: 'embed' } });
  for (let i = 0; i < t.layers; i++) {
    const l = `${tb}.layers.${i}`;
    out.push({ key: `${l}.self_attn.q_proj.weight`, shape: [qW, H], init: { kind: 'linearW', fanIn: H } });
    out.push({ key: `${l}.self_attn.k_proj.weight`, shape: [kvW, H], init: { kind: 'linearW', fanIn: H } });
    out.push({ key: `${l}.self_attn.v_proj.weight`, shape: [kvW, H], init: { kind: 'linearW', fanIn: H } });
    out.push({ key: `${l}.self_attn.o_proj.weight`, shape: [H, qW], init: { kind: 'linearW', fanIn: qW } });
    out.push({ key: `${l}.self_attn.q_norm.weight`, shape: [t.headDim], init: { kind: 'normW' } });
    out.push({ key: `${l}.self_attn.k_norm.weight`, shape: [t.headDim], init: { kind: 'normW' } });
    out.push({ key: `${l}.mlp.gate_proj.weight`, shape: [t.intermediate, H], init: { kind: 'linearW', fanIn: H } });
    out.push({ key: `${l}.mlp.up_proj.weight`, shape: [t.intermediate, H], init: { kind: 'linearW', fanIn: H } });
    out.push({ key: `${l}.mlp.down_proj.weight`, shape: [H, t.intermediate], init: { kind: 'linearW', fanIn: t.intermediate } });
    out.push({ key: `${l}.input_layernorm.weight`, shape: [H], init: { kind: 'normW' } });
    out.push({ key: `${l}.post_attention_layernorm.weight`, shape: [H], init: { kind: 'normW' } });
  }
  out.push({ key: `${tb}.norm.weight`, shape: [H], init: { kind: 'normW' } });
  // 4 SigLIP criterion scalars
  out.push({ key: `${P}criterion.t`, shape: [], init: { kind: 'const', value: Math.log(10) } });
  out.push({ key: `${P}criterion.b`, shape: [], init: { kind: 'const', value: -10 } });
  return out;
}

/** Every key and shape the config implies (section 5 + 8), LoRA keys excluded; in a fixed order. */
export function radfinderKeys(cfg: RfConfig): { key: string; shape: number[] }[] {
  return keySpecs(cfg).map(({ key, shape }) => ({ key, shape }));
}

/** The LoRA keys of section 5 (ignored by the forward): lora_A (r, in), lora_B (out, r) on q/k/v/o_proj. */
export function radfinderLoraKeys(cfg: RfConfig, rank: number): { key: string; shape: number[] }[] {
  const t = cfg.text;
  const qW = t.heads * t.headDim;
  const kvW = t.kvHeads * t.headDim;
  const dims: [string, number, number][] = [
    ['q_proj', qW, t.hidden],
    ['k_proj', kvW, t.hidden],
    ['v_proj', kvW, t.hidden],
    ['o_proj', t.hidden, qW],
  ];
  const out: { key: string; shape: number[] }[] = [];
  for (let i = 0; i < t.layers; i++)
    for (const [n, o, inp] of dims) {
      out.push({ key: `${P}backbone_text.layers.${i}.self_attn.${n}.lora_A`, shape: [rank, inp] });
      out.push({ key: `${P}backbone_text.layers.${i}.self_attn.${n}.lora_B`, shape: [o, rank] });
    }
  return out;
}

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

// ------------------------------------------------------------------------------- random weights

function hashKey(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Random weights for every key (seeded per key; realistic scales; LayerScale and weight-norm g not 1; non-zero biases; rope.periods = base^(k/F)). */
export function randomStateDict(cfg: RfConfig, seed: number): StateDict {
  const sd: StateDict = new Map();
  for (const { key, shape, init } of keySpecs(cfg)) {
    const n = numel(shape);
    const r = rng(hashKey(key, seed));
    const u = () => 2 * r() - 1; // uniform [-1, 1): std 1/sqrt(3)
    const data = new Float64Array(n);
    switch (init.kind) {
      case 'linearW':
      case 'lora': {
        const a = Math.sqrt(3 / init.fanIn); // std 1/sqrt(fanIn)
        for (let i = 0; i < n; i++) data[i] = a * u();
        break;
      }
      case 'bias':
        for (let i = 0; i < n; i++) data[i] = 0.2 * u();
        break;
      case 'normW':
        for (let i = 0; i < n; i++) data[i] = 1 + 0.25 * u();
        break;
      case 'normB':
        for (let i = 0; i < n; i++) data[i] = 0.1 * u();
        break;
      case 'gamma':
        for (let i = 0; i < n; i++) data[i] = 0.5 + 0.4 * u();
        break;
      case 'cls':
        for (let i = 0; i < n; i++) data[i] = u();
        break;
      case 'periods':
        for (let k = 0; k < n; k++) data[k] = init.base ** (k / n);
        break;
      case 'wnG':
        for (let i = 0; i < n; i++) data[i] = 1.5 + 0.5 * u(); // in [1, 2): never 1 exactly by construction of the scale
        break;
      case 'wnV':
        for (let i = 0; i < n; i++) data[i] = u();
        break;
      case 'embed':
        for (let i = 0; i < n; i++) data[i] = u();
        break;
      case 'const':
        data.fill(init.value);
        break;
    }
    sd.set(key, { shape: shape.slice(), data });
  }
  return sd;
}

// ------------------------------------------------------------------------------- elementary ops

function get(sd: StateDict, key: string): Float64Array {
  const t = sd.get(key);
  if (!t) throw new Error(`state dict has no ${key}`);
  return t.data;
}

/** y = x W^T + b for W (out, in). */
export function linear(x: Float64Array, w: Float64Array, b: Float64Array | null, out: number): Float64Array {
  const inp = x.length;
  if (w.length !== out * inp) throw new Error(`linear: weight has ${w.length} values, expected ${out}x${inp}`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o] : 0;
    const row = o * inp;
    for (let i = 0; i < inp; i++) s += w[row + i] * x[i];
    y[o] = s;
  }
  return y;
}

function lin(sd: StateDict, prefix: string, x: Float64Array, bias = true): Float64Array {
  const w = get(sd, `${prefix}.weight`);
  const b = bias ? get(sd, `${prefix}.bias`) : null;
  return linear(x, w, b, w.length / x.length);
}

// erf/erfc to double precision: erf by a positive-term series below 3; erfc by a continued fraction
// from 1 (so its relative error stays ~1e-15 in the tail, where 1 - erf would cancel).
function erfSeries(x: number): number {
  // erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!!
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}
function erfcContinuedFraction(x: number): number {
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), x > 0 (modified Lentz)
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    D = x + a * D;
    D = D === 0 ? tiny : D;
    C = x + a / C;
    C = C === 0 ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
/** erfc(x) for any x. */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 1) return 1 - erfSeries(x);
  return erfcContinuedFraction(x);
}
export function erf(x: number): number {
  if (x < 0) return -erf(-x);
  if (x < 3) return erfSeries(x);
  return 1 - erfcContinuedFraction(x);
}

/** GELU, exact erf form: 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: number): number {
  const z = x / Math.SQRT2;
  return x >= 0 ? 0.5 * x * (1 + erf(z)) : 0.5 * x * erfc(-z);
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i] - mean) ** 2;
  v /= n; // biased variance
  const r = 1 / Math.sqrt(v + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * r * w[i] + b[i];
  return y;
}

/** weight * x / sqrt(mean(x^2) + eps); no +1 offset. */
export function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const n = x.length;
  let ms = 0;
  for (let i = 0; i < n; i++) ms += x[i] * x[i];
  ms /= n;
  const r = 1 / Math.sqrt(ms + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = w[i] * x[i] * r;
  return y;
}

/** x / max(||x||, 1e-12) (torch F.normalize). */
export function l2normalize(x: Float64Array): Float64Array {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const n = Math.max(Math.sqrt(s), 1e-12);
  return x.map((v) => v / n);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const y = new Float64Array(a.length + b.length);
  y.set(a, 0);
  y.set(b, a.length);
  return y;
}

function meanRows(rows: Float64Array[]): Float64Array {
  const y = new Float64Array(rows[0].length);
  for (const r of rows) for (let i = 0; i < y.length; i++) y[i] += r[i];
  const c = Math.max(rows.length, 1);
  for (let i = 0; i < y.length; i++) y[i] /= c;
  return y;
}

function softmaxInPlace(s: Float64Array, valid?: (i: number) => boolean): void {
  let m = -Infinity;
  for (let i = 0; i < s.length; i++) if (!valid || valid(i)) m = Math.max(m, s[i]);
  let z = 0;
  for (let i = 0; i < s.length; i++) {
    const e = !valid || valid(i) ? Math.exp(s[i] - m) : 0;
    s[i] = e;
    z += e;
  }
  if (z > 0) for (let i = 0; i < s.length; i++) s[i] /= z; // no valid entry: all zero
}

// ------------------------------------------------------------------------------- RoPE

/** 2.4 with explicit periods (e.g. the stored `rope.periods`): per token in (h, w, d) order, d fastest, 3F angles [x | y | z]. */
export function rope3dAnglesFromPeriods(
  grid: [number, number, number],
  periods: ArrayLike<number>,
  divisors?: [number, number, number],
): Float64Array[] {
  const F = periods.length;
  const div = divisors ?? grid;
  const out: Float64Array[] = [];
  for (let h = 0; h < grid[0]; h++)
    for (let w = 0; w < grid[1]; w++)
      for (let d = 0; d < grid[2]; d++) {
        const idx = [h, w, d];
        const a = new Float64Array(3 * F);
        for (let ax = 0; ax < 3; ax++) {
          const c = (2 * (idx[ax] + 0.5)) / div[ax] - 1;
          for (let k = 0; k < F; k++) a[ax * F + k] = (2 * Math.PI * c) / periods[k];
        }
        out.push(a);
      }
  return out;
}

/** Per spatial token, headDim/2 angles (the first half of the headDim-vector), periods base^(k/F), F = headDim/6. */
export function rope3dAngles(
  grid: [number, number, number],
  headDim: number,
  base: number,
  divisors?: [number, number, number],
): Float64Array[] {
  if (headDim % 6 !== 0) throw new Error(`3D RoPE head dim ${headDim} not divisible by 6`);
  const F = headDim / 6;
  const periods = Float64Array.from({ length: F }, (_, k) => base ** (k / F));
  return rope3dAnglesFromPeriods(grid, periods, divisors);
}

/** Rotate-half: out[j] = x[j] cos - x[j+h] sin, out[j+h] = x[j+h] cos + x[j] sin, h = x.length/2 = angles.length. */
export function applyRopeHalf(x: Float64Array, angles: Float64Array): Float64Array {
  const h = angles.length;
  if (x.length !== 2 * h) throw new Error(`applyRopeHalf: vector of ${x.length} for ${h} angles`);
  const y = new Float64Array(2 * h);
  for (let j = 0; j < h; j++) {
    const c = Math.cos(angles[j]);
    const s = Math.sin(angles[j]);
    y[j] = x[j] * c - x[j + h] * s;
    y[j + h] = x[j + h] * c + x[j] * s;
  }
  return y;
}

// ------------------------------------------------------------------------------- ViT (2.1 block)

/**
 * Multi-head self-attention of one ViT block (ATT): q and kv Linear (kv = [K | V]), heads
 * head-major, RoPE on q and k of tokens whose angles are non-null, scale 1/sqrt(headDim),
 * optional key mask (true = attend), then proj.
 */
export function vitAttention(
  sd: StateDict,
  prefix: string,
  x: Float64Array[],
  heads: number,
  angles: (Float64Array | null)[],
  keyMask?: boolean[],
): Float64Array[] {
  const n = x.length;
  const E = x[0].length;
  const hd = E / heads;
  const q = x.map((r) => lin(sd, `${prefix}.q`, r));
  const kv = x.map((r) => lin(sd, `${prefix}.kv`, r));
  const out = x.map(() => new Float64Array(E));
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < heads; h++) {
    const rot = (v: Float64Array, t: number) => (angles[t] ? applyRopeHalf(v, angles[t]!) : v);
    const qh = q.map((r, t) => rot(r.slice(h * hd, (h + 1) * hd), t));
    const kh = kv.map((r, t) => rot(r.slice(h * hd, (h + 1) * hd), t));
    const vh = kv.map((r) => r.slice(E + h * hd, E + (h + 1) * hd));
    for (let i = 0; i < n; i++) {
      const s = new Float64Array(n);
      for (let j = 0; j < n; j++) s[j] = dot(qh[i], kh[j]) * scale;
      softmaxInPlace(s, keyMask ? (j) => keyMask[j] : undefined);
      for (let j = 0; j < n; j++) {
        if (s[j] === 0) continue;
        for (let c = 0; c < hd; c++) out[i][h * hd + c] += s[j] * vh[j][c];
      }
    }
  }
  return out.map((r) => lin(sd, `${prefix}.proj`, r));
}

/** One pre-norm block: x + ls1 * attn(LN1 x); x + ls2 * MLP(LN2 x), MLP = fc2(GELU(fc1)). */
export function vitBlock(
  sd: StateDict,
  prefix: string,
  x: Float64Array[],
  heads: number,
  eps: number,
  angles: (Float64Array | null)[],
  keyMask?: boolean[],
): Float64Array[] {
  const n1w = get(sd, `${prefix}.norm1.weight`), n1b = get(sd, `${prefix}.norm1.bias`);
  const n2w = get(sd, `${prefix}.norm2.weight`), n2b = get(sd, `${prefix}.norm2.bias`);
  const ls1 = get(sd, `${prefix}.ls1.gamma`), ls2 = get(sd, `${prefix}.ls2.gamma`);
  const a = vitAttention(sd, `${prefix}.attn`, x.map((r) => layerNorm(r, n1w, n1b, eps)), heads, angles, keyMask);
  const y = x.map((r, t) => r.map((v, i) => v + ls1[i] * a[t][i]));
  return y.map((r) => {
    const h = lin(sd, `${prefix}.mlp.fc1`, layerNorm(r, n2w, n2b, eps)).map(gelu);
    const m = lin(sd, `${prefix}.mlp.fc2`, h);
    return r.map((v, i) => v + ls2[i] * m[i]);
  });
}

/** CLS (unrotated) + tokens through all blocks and the final LayerNorm of a ViT stack. */
function vitStack(
  sd: StateDict,
  prefix: string,
  depth: number,
  heads: number,
  eps: number,
  tokens: Float64Array[],
  spatialAngles: Float64Array[],
  keyMask?: boolean[],
): Float64Array[] {
  let x = [get(sd, `${prefix}.cls_token`).slice(), ...tokens];
  const angles: (Float64Array | null)[] = [null, ...spatialAngles];
  const mask = keyMask ? [true, ...keyMask] : undefined; // prefix always attended
  for (let i = 0; i < depth; i++) x = vitBlock(sd, `${prefix}.blocks.${i}`, x, heads, eps, angles, mask);
  const nw = get(sd, `${prefix}.norm.weight`), nb = get(sd, `${prefix}.norm.bias`);
  return x.map((r) => layerNorm(r, nw, nb, eps));
}

/** Conv3d patch embedding (kernel = stride = patch) of one (w0, w1, w2) window: tokens (ph, pw, pd), pd fastest. */
export function patchEmbed(cfg: RfConfig, sd: StateDict, win: Float64Array): Float64Array[] {
  const v = cfg.vision;
  const E = v.embedDim;
  const [p0, p1, p2] = v.patch;
  const [w0, w1, w2] = v.window;
  const [T0, T1, T2] = [w0 / p0, w1 / p1, w2 / p2];
  const W = get(sd, `${P}backbone_image.patch_embed.proj.weight`);
  const b = get(sd, `${P}backbone_image.patch_embed.proj.bias`);
  const K = p0 * p1 * p2;
  const out: Float64Array[] = [];
  const patch = new Float64Array(K);
  for (let ph = 0; ph < T0; ph++)
    for (let pw = 0; pw < T1; pw++)
      for (let pd = 0; pd < T2; pd++) {
        for (let a = 0; a < p0; a++)
          for (let bb = 0; bb < p1; bb++)
            for (let c = 0; c < p2; c++)
              patch[(a * p1 + bb) * p2 + c] = win[((ph * p0 + a) * w1 + pw * p1 + bb) * w2 + pd * p2 + c];
        out.push(linear(patch, W, b, E));
      }
  return out;
}

/** 2.1: one window through the backbone; returns all 1 + T tokens after the final LayerNorm. */
export function backboneForward(cfg: RfConfig, sd: StateDict, win: Float64Array): Float64Array[] {
  const v = cfg.vision;
  const grid: [number, number, number] = [v.window[0] / v.patch[0], v.window[1] / v.patch[1], v.window[2] / v.patch[2]];
  const periods = get(sd, `${P}backbone_image.rope.periods`);
  const angles = rope3dAnglesFromPeriods(grid, periods);
  return vitStack(sd, `${P}backbone_image`, v.depth, v.heads, v.eps, patchEmbed(cfg, sd, win), angles);
}

/** The shared combiner transformer over projected tokens on a grid (2.2/2.3): CLS + tokens after final norm. */
export function combinerForward(
  cfg: RfConfig,
  sd: StateDict,
  tokens: Float64Array[],
  grid: [number, number, number],
  divisors?: [number, number, number],
  keyMask?: boolean[],
): Float64Array[] {
  const fc = `${P}feature_comb_image`;
  const angles = rope3dAnglesFromPeriods(grid, get(sd, `${fc}.rope.periods`), divisors);
  return vitStack(sd, fc, cfg.combiner.depth, cfg.combiner.heads, cfg.vision.eps, tokens, angles, keyMask);
}

// ------------------------------------------------------------------------------- heads (2.5)

/** last_layer weight: W[o, :] = g[o] * v[o, :] / ||v[o, :]|| (accepts weight_g / weight_v aliases). */
export function weightNormMatrix(sd: StateDict, prefix: string): { w: Float64Array; out: number; inp: number } {
  const gk = `${prefix}.last_layer.parametrizations.weight.original0`;
  const vk = `${prefix}.last_layer.parametrizations.weight.original1`;
  const g = (sd.get(gk) ?? sd.get(`${prefix}.last_layer.weight_g`))?.data;
  const vt = sd.get(vk) ?? sd.get(`${prefix}.last_layer.weight_v`);
  if (!g || !vt) throw new Error(`state dict has no weight-norm parameters under ${prefix}.last_layer`);
  const [out, inp] = [vt.shape[0], vt.shape[1]];
  const w = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inp; i++) s += vt.data[o * inp + i] ** 2;
    const f = g[o] / Math.sqrt(s);
    for (let i = 0; i < inp; i++) w[o * inp + i] = f * vt.data[o * inp + i];
  }
  return { w, out, inp };
}

/** Linear -> GELU -> Linear -> GELU -> Linear -> weight-normalised Linear (no bias); unnormalised output. */
export function projectionHead(sd: StateDict, prefix: string, x: Float64Array): Float64Array {
  let h: Float64Array = lin(sd, `${prefix}.layers.0`, x).map(gelu);
  h = lin(sd, `${prefix}.layers.2`, h).map(gelu);
  h = lin(sd, `${prefix}.layers.4`, h);
  const { w, out } = weightNormMatrix(sd, prefix);
  return linear(h, w, null, out);
}

// ------------------------------------------------------------------------------- image forward (2.1-2.3)

/** windows: (N, 1, w0, w1, w2) C-order with depth fastest, N = Hg*Wg*Dg in (ih, iw, id) order, one scan. */
export function imageForward(
  cfg: RfConfig,
  sd: StateDict,
  windows: Float64Array,
  grid: [number, number, number],
): {
  image: Float64Array;
  disease: Float64Array;
  depth: Float64Array[];
  valid: boolean[];
  backboneCls: Float64Array[];
  backbonePatchMean: Float64Array[];
} {
  checkConfig(cfg);
  const v = cfg.vision;
  const [Hg, Wg, Dg] = grid;
  const N = Hg * Wg * Dg;
  const winSize = v.window[0] * v.window[1] * v.window[2];
  if (windows.length !== N * winSize) throw new Error(`imageForward: ${windows.length} values for ${N} windows of ${winSize}`);
  const [T0, T1, T2] = [v.window[0] / v.patch[0], v.window[1] / v.patch[1], v.window[2] / v.patch[2]];
  const fc = `${P}feature_comb_image`;

  const backboneCls: Float64Array[] = [];
  const backbonePatchMean: Float64Array[] = [];
  // axis2 rows on the (Hg, Wg, T2*Dg) grid, C-order, d2 = id*T2 + pd fastest
  const D2 = T2 * Dg;
  const rows: Float64Array[] = new Array(Hg * Wg * D2);
  for (let n = 0; n < N; n++) {
    const toks = backboneForward(cfg, sd, windows.subarray(n * winSize, (n + 1) * winSize));
    backboneCls.push(toks[0]);
    const patches = toks.slice(1);
    backbonePatchMean.push(meanRows(patches));
    const ih = Math.floor(n / (Wg * Dg));
    const iw = Math.floor(n / Dg) % Wg;
    const id = n % Dg;
    for (let pd = 0; pd < T2; pd++) {
      const sel: Float64Array[] = [];
      for (let ph = 0; ph < T0; ph++) for (let pw = 0; pw < T1; pw++) sel.push(patches[(ph * T1 + pw) * T2 + pd]);
      rows[(ih * Wg + iw) * D2 + id * T2 + pd] = meanRows(sel);
    }
  }

  // 2.2 global path: patch_proj([CLS ; patch mean]) per window, combiner, [CLS_g ; mean of window tokens]
  const gTokens = backboneCls.map((c, n) => lin(sd, `${fc}.patch_proj`, concat(c, backbonePatchMean[n])));
  const gOut = combinerForward(cfg, sd, gTokens, grid, undefined, new Array(N).fill(true));
  const pooled = concat(gOut[0], meanRows(gOut.slice(1))); // every window valid in one scan
  const image = projectionHead(sd, `${P}projection_image`, pooled);
  const disease = projectionHead(sd, `${P}projection_image_copy`, pooled);

  // 2.3 axis2 path: axis_patch_proj, same combiner on (Hg, Wg, D2) with "physical" divisors (Hg, Wg, Dg)
  const aTokens = rows.map((r) => lin(sd, `${fc}.axis_patch_proj`, r));
  const aOut = combinerForward(cfg, sd, aTokens, [Hg, Wg, D2], [Hg, Wg, Dg], new Array(rows.length).fill(true));
  const clsA = aOut[0];
  const depth: Float64Array[] = [];
  for (let d = 0; d < D2; d++) {
    const sel: Float64Array[] = [];
    for (let h = 0; h < Hg; h++) for (let w = 0; w < Wg; w++) sel.push(aOut[1 + (h * Wg + w) * D2 + d]);
    depth.push(projectionHead(sd, `${P}projection_image_copy`, concat(clsA, meanRows(sel))));
  }
  return { image, disease, depth, valid: new Array(D2).fill(true), backboneCls, backbonePatchMean };
}

// ------------------------------------------------------------------------------- text (3)

/** Final-norm hidden states of every position of one sequence (Qwen3, causal, GQA, positions 0..L-1). */
export function textHiddenStates(cfg: RfConfig, sd: StateDict, ids: number[]): Float64Array[] {
  const t = cfg.text;
  const tb = `${P}backbone_text`;
  const H = t.hidden;
  const hd = t.headDim;
  const half = hd / 2;
  const L = ids.length;
  const emb = get(sd, `${tb}.embed_tokens.weight`);
  let x = ids.map((id) => {
    if (!(id >= 0 && id < t.vocab)) throw new Error(`token id ${id} outside the vocabulary`);
    return emb.slice(id * H, (id + 1) * H);
  });
  const invFreq = Float64Array.from({ length: half }, (_, k) => t.ropeTheta ** ((-2 * k) / hd));
  const angles = ids.map((_, p) => invFreq.map((f) => p * f));
  const group = t.heads / t.kvHeads;
  const scale = 1 / Math.sqrt(hd);
  for (let l = 0; l < t.layers; l++) {
    const p = `${tb}.layers.${l}`;
    const qn = get(sd, `${p}.self_attn.q_norm.weight`);
    const kn = get(sd, `${p}.self_attn.k_norm.weight`);
    const hIn = x.map((r) => rmsNorm(r, get(sd, `${p}.input_layernorm.weight`), t.eps));
    const q = hIn.map((r) => lin(sd, `${p}.self_attn.q_proj`, r, false));
    const k = hIn.map((r) => lin(sd, `${p}.self_attn.k_proj`, r, false));
    const v = hIn.map((r) => lin(sd, `${p}.self_attn.v_proj`, r, false));
    const qh = q.map((r, pos) =>
      Array.from({ length: t.heads }, (_, h) => applyRopeHalf(rmsNorm(r.slice(h * hd, (h + 1) * hd), qn, t.eps), angles[pos])),
    );
    const kh = k.map((r, pos) =>
      Array.from({ length: t.kvHeads }, (_, h) => applyRopeHalf(rmsNorm(r.slice(h * hd, (h + 1) * hd), kn, t.eps), angles[pos])),
    );
    const attn = x.map(() => new Float64Array(t.heads * hd));
    for (let h = 0; h < t.heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < L; i++) {
        const s = new Float64Array(i + 1); // causal: keys 0..i
        for (let j = 0; j <= i; j++) s[j] = dot(qh[i][h], kh[j][g]) * scale;
        softmaxInPlace(s);
        for (let j = 0; j <= i; j++) for (let c = 0; c < hd; c++) attn[i][h * hd + c] += s[j] * v[j][g * hd + c];
      }
    }
    x = x.map((r, i) => {
      const o = lin(sd, `${p}.self_attn.o_proj`, attn[i], false);
      return r.map((val, c) => val + o[c]);
    });
    x = x.map((r) => {
      const h2 = rmsNorm(r, get(sd, `${p}.post_attention_layernorm.weight`), t.eps);
      const gate = lin(sd, `${p}.mlp.gate_proj`, h2, false);
      const up = lin(sd, `${p}.mlp.up_proj`, h2, false);
      const m = lin(sd, `${p}.mlp.down_proj`, gate.map((gv, c) => silu(gv) * up[c]), false);
      return r.map((val, c) => val + m[c]);
    });
  }
  const nw = get(sd, `${tb}.norm.weight`);
  return x.map((r) => rmsNorm(r, nw, t.eps));
}

/** ids: one sequence (ending with EOS); the final-norm hidden state of the last token and both text heads. */
export function textForward(cfg: RfConfig, sd: StateDict, ids: number[]): { state: Float64Array; report: Float64Array; snippet: Float64Array } {
  if (ids.length === 0) throw new Error('textForward: empty sequence');
  const states = textHiddenStates(cfg, sd, ids);
  const state = states[states.length - 1];
  return {
    state,
    report: projectionHead(sd, `${P}projection_text`, state),
    snippet: projectionHead(sd, `${P}projection_text_copy`, state),
  };
}

// ------------------------------------------------------------------------------- tasks (4)

/**
 * Zero-shot disease score (BZS mean7): image normalised; each side's prompt embeddings
 * normalised, averaged, normalised again; score = sigmoid(cos_pos - cos_neg).
 */
export function zeroShotScore(img: Float64Array, posPrompts: Float64Array[], negPrompts: Float64Array[]): number {
  const i = l2normalize(img);
  const side = (ps: Float64Array[]) => l2normalize(meanRows(ps.map(l2normalize)));
  const cp = dot(i, side(posPrompts));
  const cn = dot(i, side(negPrompts));
  return 1 / (1 + Math.exp(-(cp - cn)));
}

/** Cosine per depth bin, softmax(cos/tau) over valid bins (0 elsewhere), argmax of the cosine over valid bins. */
export function localizationProbs(
  depthEmb: Float64Array[],
  snippet: Float64Array,
  valid: boolean[],
  tau: number,
): { cosine: Float64Array; probs: Float64Array; bin: number } {
  const s = l2normalize(snippet);
  const cosine = Float64Array.from(depthEmb, (e) => dot(l2normalize(e), s));
  const probs = cosine.map((c) => c / tau);
  softmaxInPlace(probs, (d) => valid[d]);
  let bin = -1;
  for (let d = 0; d < cosine.length; d++) if (valid[d] && (bin < 0 || cosine[d] > cosine[bin])) bin = d;
  return { cosine, probs, bin };
}
