// The SigLIP (pairwise sigmoid) contrastive loss: the kernel's declaration (kernels/siglip.wgsl),
// its launches and the differentiable ops siglipRows and siglipLoss.
import source from '../../kernels/siglip.wgsl';
import { record } from '../autograd.ts';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { Tensor, fmtShape, scope } from '../tensor.ts';
import * as launch from '../launch/index.ts';
import { maskedCount } from '../launch/crossentropy.ts';
import { checkInputs } from '../launch/util.ts';
import { div } from '../ops/elementwise.ts';
import { sum } from '../ops/reduce.ts';
import { matmul } from '../ops/matmul.ts';

export const siglipKernel = defineKernel({
  file: 'siglip.wgsl',
  source,
  params: { B: 'u32', N: 'u32' },
  // TB = [t, b]; MASK [N] is read only with the VALID flag (a placeholder otherwise);
  // PART [B, 2] holds each row's shares of dt and db.
  buffers: { S: read(), TB: read(), MASK: read('f32', { optional: true }), ROWS: write(), G: read(), DS: write(), PART: write() },
  entries: {
    siglip_rows: ['S', 'TB', 'MASK', 'ROWS'],
    siglip_backward: ['S', 'TB', 'MASK', 'G', 'DS', 'PART'],
  },
});

function checkSiglip(op: string, S: Tensor, tb: Tensor, valid?: Tensor): { B: number; N: number } {
  checkInputs(op, valid ? [S, tb, valid] : [S, tb]);
  if (S.rank !== 2 || S.shape[1] < S.shape[0])
    throw new ShapeError(`${op}: similarities ${fmtShape(S.shape)} must be [B, N] with N >= B (B images, their B reports first, then other texts)`);
  if (tb.size !== 2) throw new ShapeError(`${op}: [t, b] ${fmtShape(tb.shape)} must hold two values`);
  const [B, N] = S.shape;
  if (valid && (valid.rank !== 1 || valid.shape[0] !== N)) throw new ShapeError(`${op}: valid ${fmtShape(valid.shape)} must be [${N}], one per text`);
  return { B, N };
}

/** Per-row SigLIP terms [B] of similarities S [B, N] with tb = [t, b] and an optional mask
 * valid [N] (1/0) (see siglipRows). No autograd.
 * @throws ShapeError when S is not [B, N] with N >= B, tb does not hold two values or valid is not [N]. */
export function siglipRowsForward(S: Tensor, tb: Tensor, valid?: Tensor): Tensor {
  const { B, N } = checkSiglip('siglipRows', S, tb, valid);
  const rows = new Tensor(S.gpu, [B], 'f32', undefined, 'siglip.rows');
  S.gpu.launch(siglipKernel.siglip_rows, {
    flags: { VALID: !!valid },
    params: { B, N },
    buffers: { S: S.buffer, TB: tb.buffer, MASK: valid?.buffer ?? null, ROWS: rows.buffer },
    workgroups: [Math.ceil(B / 64)],
    label: `siglip ${fmtShape(S.shape)}`,
  });
  return rows;
}

/** The gradients of siglipRowsForward given the rows' gradient g [B]: dS [B, N] and
 * dtb [2] = (dt, db). No autograd.
 * @throws ShapeError as siglipRowsForward, and when g is not [B]. */
export function siglipRowsBackward(S: Tensor, tb: Tensor, g: Tensor, valid?: Tensor): { dS: Tensor; dtb: Tensor } {
  const { B, N } = checkSiglip('siglipRows.backward', S, tb, valid);
  checkInputs('siglipRows.backward', [S, g]);
  if (g.size !== B) throw new ShapeError(`siglipRows.backward: gradient ${fmtShape(g.shape)} must be [${B}]`);
  return scope(() => {
    const dS = new Tensor(S.gpu, [B, N], 'f32', undefined, 'grad.siglip.S');
    const part = new Tensor(S.gpu, [B, 2], 'f32', undefined, 'siglip.part');
    S.gpu.launch(siglipKernel.siglip_backward, {
      flags: { VALID: !!valid },
      params: { B, N },
      buffers: { S: S.buffer, TB: tb.buffer, MASK: valid?.buffer ?? null, G: g.buffer, DS: dS.buffer, PART: part.buffer },
      workgroups: [Math.ceil(B / 64)],
      label: `siglip.backward ${fmtShape(S.shape)}`,
    });
    return { dS, dtb: launch.sum(part, 0) };
  });
}

/**
 * Per-row SigLIP terms of a similarity matrix S [B, N], N >= B (S_ij = <img_i, txt_j>; text i
 * is image i's report, texts B .. N-1 other reports, negatives for every image):
 * rows_i = sum_j v_i v_j softplus(-z_ij (exp(t) S_ij + b)), z = +1 where i == j, -1 elsewhere.
 * t and b are one-element tensors (learned); valid [N] (1/0) masks out empty reports (a
 * masked row or column is 0, and so is its gradient). Returns [B].
 * @throws ShapeError when S is not [B, N] with N >= B, t or b is not one value, or valid is
 * not [N]; ValueError when valid requires a gradient.
 */
export function siglipRows(S: Tensor, t: Tensor, b: Tensor, valid?: Tensor): Tensor {
  checkInputs('siglipRows', [S, t, b]);
  if (t.size !== 1 || b.size !== 1) throw new ShapeError(`siglipRows: t ${fmtShape(t.shape)} and b ${fmtShape(b.shape)} must be single values`);
  if (valid?.requiresGrad) throw new ValueError('siglipRows: the valid mask takes no gradient');
  // t and b side by side for the kernel (no gradient through this copy: the rule below
  // returns t's and b's gradients directly).
  const tb = scope(() => launch.concat([t.view([1]), b.view([1])], 0));
  const rows = siglipRowsForward(S, tb, valid);
  rows.own(tb);
  return record(rows, 'siglipRows', [S, t, b], (g) => {
    const { dS, dtb } = siglipRowsBackward(S, tb, g, valid);
    return [dS, launch.slice(dtb, 0, 0, 1).view(t.shape), launch.slice(dtb, 0, 1, 2).view(b.shape)];
  });
}

/**
 * The SigLIP loss of a batch: -(1/B') sum_i sum_j log sigmoid(z_ij (exp(t) <img_i, txt_j> + b)),
 * B' the number of valid rows (images whose report is not empty; B without a mask). img is
 * [B, E] and txt [N, E], N >= B (L2-normalised by the caller): the first B texts are the
 * images' reports, any more are reports of other cases, negatives for every image (a larger
 * contrastive batch on the text side; RadFinder's effective batch of 4096 comes from embedding
 * caching instead). t, b one value each; valid [N] (1/0). Returns [1].
 * A batch whose reports are all empty is a mean over nothing: loss 0 and zero gradients
 * (the framework's one policy for masked means, launch.maskedCount), not 0/0.
 * @throws ShapeError when img is not [B, E] and txt [N, E] with N >= B, or valid is not [N]
 * (and as siglipRows).
 */
export function siglipLoss(img: Tensor, txt: Tensor, t: Tensor, b: Tensor, valid?: Tensor): Tensor {
  if (img.rank !== 2 || txt.rank !== 2 || txt.shape[0] < img.shape[0] || img.shape[1] !== txt.shape[1])
    throw new ShapeError(`siglipLoss: image ${fmtShape(img.shape)} and text ${fmtShape(txt.shape)} embeddings must be [B, E] and [N, E] with N >= B`);
  // Checked before the matmul too, so that a bad mask leaves no similarity matrix behind.
  if (valid && (valid.rank !== 1 || valid.shape[0] !== txt.shape[0])) throw new ShapeError(`siglipLoss: valid ${fmtShape(valid.shape)} must be [${txt.shape[0]}], one per text`);
  const B = img.shape[0];
  const S = matmul(img, txt, { transB: true });
  const rows = siglipRows(S, t, b, valid);
  const count = valid ? scope(() => maskedCount(valid.shape[0] === B ? valid : launch.slice(valid, 0, 0, B))) : launch.full(img.gpu, [1], B, 'B');
  return div(sum(rows), count);
}
