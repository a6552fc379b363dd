// The SigLIP (pairwise sigmoid) contrastive loss (kernels/siglip.wgsl).
import source from '../../kernels/siglip.wgsl';
import { noGrad, record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { Uniforms, checkInputs } from '../launch/util.ts';
import { concat, slice } from './layout.ts';
import { div, full, maximum } from './elementwise.ts';
import { sum } from './reduce.ts';
import { matmul } from './matmul.ts';

/**
 * Per-row SigLIP terms of a similarity matrix S [B, B] (S_ij = <img_i, txt_j>):
 * rows_i = sum_j v_i v_j softplus(-z_ij (exp(t) S_ij + b)), z = +1 on the diagonal, -1 off it.
 * t and b are one-element tensors (learned); valid [B] (1/0) masks out empty reports.
 */
export function siglipRows(S: Tensor, t: Tensor, b: Tensor, valid?: Tensor): Tensor {
  const gpu = checkInputs('siglipRows', valid ? [S, t, b, valid] : [S, t, b]);
  if (S.rank !== 2 || S.shape[0] !== S.shape[1]) throw new ShapeError(`siglipRows: similarities ${fmtShape(S.shape)} must be a square [B, B]`);
  if (t.size !== 1 || b.size !== 1) throw new ShapeError(`siglipRows: t ${fmtShape(t.shape)} and b ${fmtShape(b.shape)} must be single values`);
  const B = S.shape[0];
  if (valid && (valid.rank !== 1 || valid.shape[0] !== B)) throw new ShapeError(`siglipRows: valid ${fmtShape(valid.shape)} must be [${B}]`);
  if (valid?.requiresGrad) throw new ShapeError('siglipRows: the valid mask takes no gradient');
  // t and b side by side for the kernel (no gradient needed through this copy: the rule below
  // returns t's and b's gradients directly).
  const tb = noGrad(() => concat([t.view([1]), b.view([1])], 0));
  const uniforms = new Uniforms().u32(B, 0, 0, 0).bytes();
  const flags = { VALID: !!valid };
  const rows = new Tensor(gpu, [B], 'f32', undefined, 'siglip.rows');
  rows.own(tb);
  const k = gpu.kernel({ file: 'siglip.wgsl', source, entry: 'siglip_rows', flags, bindings: ['uniform', 'read', 'read', 'read', 'write'] });
  gpu.dispatch(k, { uniforms, buffers: [S.buffer, tb.buffer, valid ? valid.buffer : gpu.placeholder, rows.buffer], workgroups: [Math.ceil(B / 64)], label: `siglip ${fmtShape(S.shape)}` });
  return record(rows, 'siglipRows', [S, t, b], (g) => {
    const dS = new Tensor(gpu, [B, B], 'f32', undefined, 'grad.siglip.S');
    const part = new Tensor(gpu, [B, 2], 'f32', undefined, 'siglip.part');
    const kb = gpu.kernel({ file: 'siglip.wgsl', source, entry: 'siglip_backward', flags, bindings: ['uniform', 'read', 'read', 'read', null, 'read', 'write', 'write'] });
    gpu.dispatch(kb, {
      uniforms,
      buffers: [S.buffer, tb.buffer, valid ? valid.buffer : gpu.placeholder, g.buffer, dS.buffer, part.buffer],
      workgroups: [Math.ceil(B / 64)],
      label: `siglip.backward ${fmtShape(S.shape)}`,
    });
    const both = sum(part, 0);
    const dt = slice(both, 0, 0, 1).view(t.shape);
    const db = slice(both, 0, 1, 2).view(b.shape);
    part.dispose();
    both.dispose();
    return [dS, dt, db];
  });
}

/**
 * The SigLIP loss of a batch: -(1/B') sum_i sum_j log sigmoid(z_ij (exp(t) <img_i, txt_j> + b)),
 * B' the number of valid pairs' rows (reports that are not empty). img and txt are [B, E]
 * (L2-normalised by the caller).
 */
export function siglipLoss(img: Tensor, txt: Tensor, t: Tensor, b: Tensor, valid?: Tensor): Tensor {
  if (img.rank !== 2 || txt.rank !== 2 || img.shape[0] !== txt.shape[0] || img.shape[1] !== txt.shape[1])
    throw new ShapeError(`siglipLoss: image ${fmtShape(img.shape)} and text ${fmtShape(txt.shape)} embeddings must both be [B, E]`);
  const S = matmul(img, txt, { transB: true });
  const rows = siglipRows(S, t, b, valid);
  // A batch whose reports are all empty has no pairs: its loss is 0 (and its gradient 0), not 0/0.
  const count = noGrad(() => (valid ? maximum(sum(valid), full(img.gpu, [1], 1)) : full(img.gpu, [1], img.shape[0], 'B')));
  return div(sum(rows), count);
}
