// The package's type declarations from a TypeScript program for Node (module NodeNext): a few
// SGD steps of a linear fit with the framework, and a CT file read with the Node entry.
// test/package.test.ts type-checks it (tsc -p tsconfig.node.json) against the installed types;
// every `@ts-expect-error` below must be an error, so the declarations are not `any`.
import { createDevice, Linear, SGD, tensor, sub, square, mean, backward, scope, type Gpu, type Tensor } from 'ct-vlm-webgpu/framework';
import { io, LABELS, type volume } from 'ct-vlm-webgpu';

/** Fits y = x W + b to the rows of `x` [n, d] and `y` [n, 1]; returns the loss per step. */
export async function fitLinear(gpu: Gpu, x: number[], y: number[], n: number, d: number, steps = 10): Promise<number[]> {
  const model = new Linear(gpu, d, 1, { seed: 1 });
  const opt = new SGD(model.parameters(), { lr: 0.1 });
  const X: Tensor = tensor(gpu, x, [n, d]);
  const Y: Tensor = tensor(gpu, y, [n, 1]);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = scope(() => {
      const l = mean(square(sub(model.forward(X), Y)));
      backward(l);
      return l;
    });
    opt.step();
    opt.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
  }
  return losses;
}

/** The CT's grid size and voxel size (mm) from a .nii / .nii.gz file or a DICOM folder. */
export async function describeCt(path: string): Promise<string> {
  const v: volume.Volume = await io.readVolumeFile(path);
  return `${v.shape.join('x')} voxels of ${v.spacing.map((s) => s.toFixed(2)).join('x')} mm; ${LABELS.length} labels`;
}

export async function main(): Promise<void> {
  const gpu = await createDevice();
  try {
    console.log(await fitLinear(gpu, [0, 1, 2, 3], [1, 3, 5, 7], 4, 1));
  } finally {
    gpu.destroy();
  }
}

// @ts-expect-error tensor() wants the device first: the declarations carry the signatures
tensor([1, 2, 3], [3]);
// @ts-expect-error shapes are arrays of numbers
export const bad = (gpu: Gpu) => tensor(gpu, [1], '1');
