// The checkpoint key table of a configuration (RADFINDER-MODEL.md section 5), computed without
// building the model: what `ctvlm weights inspect` checks files against, and how the `paper`
// preset's parameter count is known without allocating 4 GB. A test checks it against the
// keys the modules themselves produce.
import type { RadFinderConfig } from './config.ts';

export interface KeyShape {
  key: string;
  shape: number[];
}

export function checkpointKeys(cfg: RadFinderConfig): KeyShape[] {
  const out: KeyShape[] = [];
  const add = (key: string, shape: number[]) => out.push({ key: `model.${key}`, shape });
  const v = cfg.vision;
  const E = v.backbone.embedDim;
  const block = (p: string, mlpRatio: number) => {
    const hidden = Math.round(E * mlpRatio);
    for (const n of ['norm1', 'norm2']) add(`${p}.${n}.weight`, [E]), add(`${p}.${n}.bias`, [E]);
    add(`${p}.attn.q.weight`, [E, E]), add(`${p}.attn.q.bias`, [E]);
    add(`${p}.attn.kv.weight`, [2 * E, E]), add(`${p}.attn.kv.bias`, [2 * E]);
    add(`${p}.attn.proj.weight`, [E, E]), add(`${p}.attn.proj.bias`, [E]);
    add(`${p}.ls1.gamma`, [E]), add(`${p}.ls2.gamma`, [E]);
    add(`${p}.mlp.fc1.weight`, [hidden, E]), add(`${p}.mlp.fc1.bias`, [hidden]);
    add(`${p}.mlp.fc2.weight`, [E, hidden]), add(`${p}.mlp.fc2.bias`, [E]);
  };
  add('backbone_image.patch_embed.proj.weight', [E, 1, ...v.patch]);
  add('backbone_image.patch_embed.proj.bias', [E]);
  if (v.patchHistogram) {
    const K = v.patchHistogram.length;
    add('backbone_image.patch_embed.hist_centres', [K]);
    add('backbone_image.patch_embed.hist_proj.weight', [E, K]);
    add('backbone_image.patch_embed.hist_proj.bias', [E]);
  }
  add('backbone_image.cls_token', [1, 1, E]);
  add('backbone_image.rope.periods', [E / v.backbone.heads / 6]);
  for (let i = 0; i < v.backbone.depth; i++) block(`backbone_image.blocks.${i}`, v.backbone.mlpRatio);
  add('backbone_image.norm.weight', [E]), add('backbone_image.norm.bias', [E]);
  add('feature_comb_image.patch_proj.weight', [E, 2 * E]), add('feature_comb_image.patch_proj.bias', [E]);
  add('feature_comb_image.axis_patch_proj.weight', [E, E]), add('feature_comb_image.axis_patch_proj.bias', [E]);
  add('feature_comb_image.cls_token', [1, 1, E]);
  add('feature_comb_image.rope.periods', [E / v.combiner.heads / 6]);
  for (let i = 0; i < v.combiner.depth; i++) block(`feature_comb_image.blocks.${i}`, v.combiner.mlpRatio);
  add('feature_comb_image.norm.weight', [E]), add('feature_comb_image.norm.bias', [E]);
  if (v.featureNorm === 'batch')
    for (const n of ['image_feature_norm', 'depth_feature_norm']) add(`${n}.running_mean`, [2 * E]), add(`${n}.running_var`, [2 * E]);
  const { hidden, bottleneck, out: dim } = cfg.head;
  const t = cfg.text;
  for (const [name, inDim] of [['projection_image', 2 * E], ['projection_image_copy', 2 * E], ['projection_text', t.hiddenSize], ['projection_text_copy', t.hiddenSize]] as const) {
    add(`${name}.layers.0.weight`, [hidden, inDim]), add(`${name}.layers.0.bias`, [hidden]);
    add(`${name}.layers.2.weight`, [hidden, hidden]), add(`${name}.layers.2.bias`, [hidden]);
    add(`${name}.layers.4.weight`, [bottleneck, hidden]), add(`${name}.layers.4.bias`, [bottleneck]);
    add(`${name}.last_layer.parametrizations.weight.original0`, [dim, 1]);
    add(`${name}.last_layer.parametrizations.weight.original1`, [dim, bottleneck]);
  }
  const H = t.hiddenSize, q = t.numAttentionHeads * t.headDim, kv = t.numKeyValueHeads * t.headDim;
  add('backbone_text.embed_tokens.weight', [t.vocabSize, H]);
  for (let i = 0; i < t.numHiddenLayers; i++) {
    const p = `backbone_text.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [q, H]);
    add(`${p}.self_attn.k_proj.weight`, [kv, H]);
    add(`${p}.self_attn.v_proj.weight`, [kv, H]);
    add(`${p}.self_attn.o_proj.weight`, [H, q]);
    add(`${p}.self_attn.q_norm.weight`, [t.headDim]), add(`${p}.self_attn.k_norm.weight`, [t.headDim]);
    add(`${p}.mlp.gate_proj.weight`, [t.intermediateSize, H]), add(`${p}.mlp.up_proj.weight`, [t.intermediateSize, H]);
    add(`${p}.mlp.down_proj.weight`, [H, t.intermediateSize]);
    add(`${p}.input_layernorm.weight`, [H]), add(`${p}.post_attention_layernorm.weight`, [H]);
  }
  add('backbone_text.norm.weight', [H]);
  add('criterion.t', []), add('criterion.b', []);
  return out;
}

/** Values in a key table. */
export function countValues(keys: readonly KeyShape[]): number {
  return keys.reduce((s, k) => s + k.shape.reduce((a, b) => a * b, 1), 0);
}
