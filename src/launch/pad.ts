// Launches of kernels/pad.wgsl (no autograd): rows of D floats padded with zeros to a
// multiple of 4 (vec4 rows), and back. Attention runs heads of other widths on such copies.
import source from '../../kernels/pad.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';

export const padKernel = defineKernel({
  file: 'pad.wgsl',
  source,
  // n: vec4 slots of the padded side; D: floats per unpadded row.
  params: { n: 'u32', D: 'u32' },
  buffers: { X: read(), Y4: write('vec4f'), X4: read('vec4f'), Y: write() },
  entries: { pad_rows: ['X', 'Y4'], unpad_rows: ['X4', 'Y'] },
});

function launchPad(x: Tensor, D: number, unpad: boolean, name: string): Tensor {
  const op = unpad ? 'unpadRows' : 'padRows';
  const gpu = checkInputs(op, [x]);
  if (!Number.isInteger(D) || D < 1) throw new ShapeError(`${op}: row width ${D} is not a positive integer`);
  const HD4 = Math.ceil(D / 4);
  const width = x.shape[x.rank - 1];
  if (width !== (unpad ? 4 * HD4 : D)) throw new ShapeError(`${op}: rows of ${fmtShape(x.shape)} are not ${unpad ? 4 * HD4 : D} wide`);
  const rows = x.size / width;
  const y = new Tensor(gpu, [...x.shape.slice(0, -1), unpad ? D : 4 * HD4], 'f32', undefined, name);
  const slots = rows * HD4;
  const args = { consts: { HD4 }, params: { n: slots, D }, workgroups: grid1d(slots, 64), label: `${op} ${rows}x${D} (${name})` };
  if (unpad) gpu.launch(padKernel.unpad_rows, { ...args, buffers: { X4: x.buffer, Y: y.buffer } });
  else gpu.launch(padKernel.pad_rows, { ...args, buffers: { X: x.buffer, Y4: y.buffer } });
  return y;
}

/** x [..., D] to [..., 4 * ceil(D / 4)], the tail of each row zero: a new tensor. */
export const padRows = (x: Tensor, name = `${x.name}.pad`): Tensor => launchPad(x, x.shape[x.rank - 1], false, name);

/** x [..., 4 * ceil(D / 4)] (rows padded by padRows) back to [..., D]: a new tensor. */
export const unpadRows = (x: Tensor, D: number, name = `${x.name}.unpad`): Tensor => launchPad(x, D, true, name);
