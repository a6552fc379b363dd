// The Qwen3 decoder as RadFinder's text backbone uses it (transformers Qwen3Model without an
// LM head; RADFINDER-MODEL.md section 3): per layer
//   h <- h + o_proj(attn(input_layernorm(h)));  h <- h + down_proj(silu(gate_proj(x)) * up_proj(x)), x = post_attention_layernorm(h)
// with grouped-query causal attention, per-head RMSNorm of q and k before RoPE (rotate-half,
// theta 1e6), RMSNorm eps 1e-6, a final norm; the text's embedding is the final-norm state of
// its last token (the EOS the tokenizer appends). Parameter names follow transformers.
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ShapeError, ValueError } from '../errors.ts';
import { Module, initNormal } from '../nn/module.ts';
import { Linear, RMSNorm } from '../nn/layers.ts';
import { linearResidual } from '../ops/matmul.ts';
import { siluGate } from '../ops/glu.ts';
import { reshape } from '../ops/layout.ts';
import { attention } from '../ops/attention.ts';
import { rope, rope1dAngles, ropeTablesFromAngles, type RopeTables } from '../ops/rope.ts';
import { embedding } from '../ops/embedding.ts';
import { fromInts, hostInts, tensor } from '../ops/creation.ts';

/** The Qwen3 shape (transformers Qwen3Config field names, camel-cased). */
export interface Qwen3Config {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  eosTokenId: number;
}

/** Qwen3-Embedding-0.6B, RadFinder's text backbone (RADFINDER-MODEL.md section 3). */
export const QWEN3_EMBEDDING_0_6B: Qwen3Config = {
  hiddenSize: 1024,
  numHiddenLayers: 28,
  numAttentionHeads: 16,
  numKeyValueHeads: 8,
  headDim: 128,
  intermediateSize: 3072,
  vocabSize: 151669,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  eosTokenId: 151643,
};

export class Qwen3Attention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly q_norm: RMSNorm;
  readonly k_norm: RMSNorm;
  constructor(gpu: Gpu, readonly cfg: Qwen3Config, seed: number, name: string) {
    super();
    const { hiddenSize: H, numAttentionHeads: nh, numKeyValueHeads: nkv, headDim: hd } = cfg;
    this.q_proj = new Linear(gpu, H, nh * hd, { bias: false, seed, name: `${name}.q_proj` });
    this.k_proj = new Linear(gpu, H, nkv * hd, { bias: false, seed, name: `${name}.k_proj` });
    this.v_proj = new Linear(gpu, H, nkv * hd, { bias: false, seed, name: `${name}.v_proj` });
    this.o_proj = new Linear(gpu, nh * hd, H, { bias: false, seed, name: `${name}.o_proj`, std: Math.sqrt(1 / (nh * hd)) / 2 });
    this.q_norm = new RMSNorm(gpu, hd, cfg.rmsNormEps, `${name}.q_norm`);
    this.k_norm = new RMSNorm(gpu, hd, cfg.rmsNormEps, `${name}.k_norm`);
  }
  /** x [B, L, hidden], mask [B, L] (1 = token) -> [B, L, hidden]; plus `residual` when given,
   * added in o_proj's store (ops/matmul.ts linearResidual, the same bits as a separate add). */
  forward(x: Tensor, mask: Tensor, tables: RopeTables, residual?: Tensor): Tensor {
    const [B, L] = x.shape;
    const { numAttentionHeads: nh, numKeyValueHeads: nkv, headDim: hd } = this.cfg;
    // Heads stay in the projections' [B, L, heads, hd] layout: the attention kernels read and
    // write them in place ('blhd'; the same bits as the permuted 'bhld' layout, without the
    // four copies forward and four backward).
    const q = rope(this.q_norm.forward(reshape(this.q_proj.forward(x), [B, L, nh, hd])), tables);
    const k = rope(this.k_norm.forward(reshape(this.k_proj.forward(x), [B, L, nkv, hd])), tables);
    const v = reshape(this.v_proj.forward(x), [B, L, nkv, hd]);
    const o = attention(q, k, v, { mask, causal: true, layout: 'blhd' });
    const flat = reshape(o, [B, L, nh * hd]);
    return residual ? linearResidual(flat, this.o_proj, { residual }) : this.o_proj.forward(flat);
  }
}

export class Qwen3MLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(gpu: Gpu, cfg: Qwen3Config, seed: number, name: string) {
    super();
    const { hiddenSize: H, intermediateSize: I } = cfg;
    this.gate_proj = new Linear(gpu, H, I, { bias: false, seed, name: `${name}.gate_proj` });
    this.up_proj = new Linear(gpu, H, I, { bias: false, seed, name: `${name}.up_proj` });
    this.down_proj = new Linear(gpu, I, H, { bias: false, seed, name: `${name}.down_proj`, std: Math.sqrt(1 / I) / 2 });
  }
  /** x [..., hidden] -> [..., hidden]; plus `residual` when given, added in down_proj's store. */
  forward(x: Tensor, residual?: Tensor): Tensor {
    const g = siluGate(this.gate_proj.forward(x), this.up_proj.forward(x));
    return residual ? linearResidual(g, this.down_proj, { residual }) : this.down_proj.forward(g);
  }
}

export class Qwen3DecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: Qwen3Attention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: Qwen3MLP;
  constructor(gpu: Gpu, cfg: Qwen3Config, seed: number, name: string) {
    super();
    this.input_layernorm = new RMSNorm(gpu, cfg.hiddenSize, cfg.rmsNormEps, `${name}.input_layernorm`);
    this.self_attn = new Qwen3Attention(gpu, cfg, seed, `${name}.self_attn`);
    this.post_attention_layernorm = new RMSNorm(gpu, cfg.hiddenSize, cfg.rmsNormEps, `${name}.post_attention_layernorm`);
    this.mlp = new Qwen3MLP(gpu, cfg, seed, `${name}.mlp`);
  }
  forward(h: Tensor, mask: Tensor, tables: RopeTables): Tensor {
    const a = this.self_attn.forward(this.input_layernorm.forward(h), mask, tables, h);
    return this.mlp.forward(this.post_attention_layernorm.forward(a), a);
  }
}

/**
 * The token embedding table. Tables larger than one storage binding (Qwen3's 151,669 x 1024 is
 * 621 MB in f32; lavapipe binds at most 128 MiB) stay on the host, frozen, and the rows a
 * batch needs are gathered there and uploaded (RadFinder trains only LoRA adapters of the text
 * model, never the embeddings).
 */
export class TokenEmbedding extends Module {
  readonly weight: Tensor | null;
  /** The host table when it does not fit a binding. */
  host: Float32Array | null = null;
  constructor(gpu: Gpu, readonly vocab: number, readonly dim: number, seed: number, name: string, readonly onHost = false) {
    super();
    if (onHost) {
      this.weight = null;
      this.host = new Float32Array(vocab * dim);
    } else this.weight = initNormal(gpu, [vocab, dim], 0.02, seed, `${name}.weight`);
  }
  /** ids [B, L] i32 (made with fromInts, so their host copy is known) -> [B, L, dim]. */
  forward(ids: Tensor): Tensor {
    if (this.weight) return embedding(this.weight, ids);
    const host = hostInts(ids);
    if (!host) throw new ValueError('TokenEmbedding: ids must be made with fromInts (the host table gathers on the CPU)');
    const out = new Float32Array(host.length * this.dim);
    host.forEach((id, i) => {
      if (!(id >= 0 && id < this.vocab)) throw new ValueError(`embedding: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocab})`);
      out.set(this.host!.subarray(id * this.dim, (id + 1) * this.dim), i * this.dim);
    });
    return tensor(ids.gpu, out, [...ids.shape, this.dim], 'embed_tokens');
  }
}

export class Qwen3Model extends Module {
  readonly embed_tokens: TokenEmbedding;
  readonly layers: Qwen3DecoderLayer[];
  readonly norm: RMSNorm;
  private tables = new Map<number, RopeTables>();
  constructor(
    readonly gpu: Gpu,
    readonly cfg: Qwen3Config,
    seed = 0,
  ) {
    super();
    const tableBytes = cfg.vocabSize * cfg.hiddenSize * 4;
    this.embed_tokens = new TokenEmbedding(gpu, cfg.vocabSize, cfg.hiddenSize, seed, 'embed_tokens', tableBytes > gpu.limits.maxStorageBufferBindingSize);
    this.layers = Array.from({ length: cfg.numHiddenLayers }, (_, i) => new Qwen3DecoderLayer(gpu, cfg, seed + i, `layers.${i}`));
    this.norm = new RMSNorm(gpu, cfg.hiddenSize, cfg.rmsNormEps, 'norm');
  }

  override dispose(): void {
    super.dispose();
    for (const t of this.tables.values()) {
      t.cos.dispose();
      t.sin.dispose();
    }
    this.tables.clear();
  }

  private rope(L: number): RopeTables {
    let t = this.tables.get(L);
    if (!t) this.tables.set(L, (t = ropeTablesFromAngles(this.gpu, rope1dAngles(L, this.cfg.headDim, this.cfg.ropeTheta), this.cfg.headDim, 'half')));
    return t;
  }

  /**
   * ids [B, L] i32 right-padded, mask [B, L] f32 (1 = token), lengths: tokens per row (the
   * last one, the EOS, is pooled). Returns the final-norm hidden state of each row's last
   * token, [B, hidden] (transformers' last_token_pool on right padding).
   */
  forward(ids: Tensor, mask: Tensor, lengths: readonly number[]): Tensor {
    const [B, L] = ids.shape;
    if (lengths.length !== B || lengths.some((n) => !(n >= 1 && n <= L))) throw new ShapeError(`Qwen3Model: lengths [${lengths}] must be 1..${L} for ${B} rows`);
    let h = this.embed_tokens.forward(ids);
    const tables = this.rope(L);
    for (const layer of this.layers) h = layer.forward(h, mask, tables);
    h = this.norm.forward(h);
    // Rows of h as an embedding table: the last token of row b is row b * L + lengths[b] - 1.
    const last = fromInts(this.gpu, lengths.map((n, b) => b * L + n - 1), [B], 'last token');
    return embedding(reshape(h, [B * L, this.cfg.hiddenSize]), last);
  }
}
