// RadFinder's projection head (radfinder siglip_head.py SigLIPProjectionHead; RADFINDER-MODEL.md
// 2.5): layers.0 Linear(in -> hidden) -> GELU -> layers.2 Linear(hidden -> hidden) -> GELU ->
// layers.4 Linear(hidden -> bottleneck) -> last_layer, a weight-normalised Linear(bottleneck ->
// out) without bias. No normalisation inside: the tasks L2-normalise.
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Module, initConstant, initNormal, registerBuffer } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { gelu } from '../ops/elementwise.ts';
import { matmul } from '../ops/matmul.ts';
import { weightNorm } from '../ops/weightnorm.ts';

/**
 * torch.nn.utils.parametrizations.weight_norm(Linear(in, out, bias=False), dim=0):
 * W[o, :] = g[o] v[o, :] / |v[o, :]|. Saved as parametrizations.weight.original0 (g, [out, 1])
 * and original1 (v, [out, in]).
 */
export class WeightNormLinear extends Module {
  readonly g: Tensor;
  readonly v: Tensor;
  constructor(gpu: Gpu, readonly inFeatures: number, readonly outFeatures: number, seed: number, name: string) {
    super();
    // RadFinder fills g with 1 and freezes it (DINO-style head); it is still read from files.
    this.g = registerBuffer(initConstant(gpu, [outFeatures, 1], 1, `${name}.g`));
    this.v = initNormal(gpu, [outFeatures, inFeatures], Math.sqrt(1 / inFeatures), seed, `${name}.v`);
  }
  override namedParameters(prefix = ''): [string, Tensor][] {
    const p = prefix ? `${prefix}.` : '';
    return [[`${p}parametrizations.weight.original1`, this.v]];
  }
  override namedBuffers(prefix = ''): [string, Tensor][] {
    const p = prefix ? `${prefix}.` : '';
    return [[`${p}parametrizations.weight.original0`, this.g]];
  }
  override dispose(): void {
    this.g.dispose();
    this.v.dispose();
  }
  /** x: [..., in] -> [..., out]. */
  forward(x: Tensor): Tensor {
    return matmul(x, weightNorm(this.g, this.v), { transB: true });
  }
}

export interface HeadSizes {
  in: number;
  hidden: number;
  bottleneck: number;
  out: number;
}

export class ProjectionHead extends Module {
  readonly layers: (Linear | null)[];
  readonly last_layer: WeightNormLinear;
  constructor(gpu: Gpu, s: HeadSizes, seed: number, name: string) {
    super();
    // Indices 1 and 3 are the GELUs of the PyTorch Sequential: no parameters.
    this.layers = [
      new Linear(gpu, s.in, s.hidden, { seed, name: `${name}.layers.0` }),
      null,
      new Linear(gpu, s.hidden, s.hidden, { seed, name: `${name}.layers.2` }),
      null,
      new Linear(gpu, s.hidden, s.bottleneck, { seed, name: `${name}.layers.4` }),
    ];
    this.last_layer = new WeightNormLinear(gpu, s.bottleneck, s.out, seed, `${name}.last_layer`);
  }
  /** x: [..., in] -> [..., out], unnormalised. */
  forward(x: Tensor): Tensor {
    const [l0, , l2, , l4] = this.layers as Linear[];
    return this.last_layer.forward(l4.forward(gelu(l2.forward(gelu(l0.forward(x))))));
  }
}
