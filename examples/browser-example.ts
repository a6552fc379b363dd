// The package from browser code (bundlers resolve the `browser` condition of its exports map:
// Vite, esbuild --platform=browser, webpack): the same framework and application API, without
// the Node-only file I/O. test/package.test.ts type-checks it with moduleResolution Bundler and
// customConditions ["browser"], the way such a bundler resolves the package.
import { createDevice, tensor, matmul, type Tensor } from 'ct-vlm-webgpu/framework';
import * as ctvlm from 'ct-vlm-webgpu';

/** A CT dropped on the page (a .nii or .nii.gz File) as a volume, and a small product on the GPU. */
export async function onDrop(file: File): Promise<number> {
  const volume = ctvlm.nifti.decodeNifti(new Uint8Array(await file.arrayBuffer()), file.name);
  const gpu = await createDevice(); // navigator.gpu
  const x: Tensor = tensor(gpu, [volume.shape[0], volume.shape[1]], [1, 2]);
  const y = matmul(x, x, { transB: true }); // [1, 1]
  const value = await y.item();
  gpu.destroy();
  return value;
}

// @ts-expect-error the browser build has no Node file I/O (`io` is in the Node entry only)
export const nodeOnly = ctvlm.io;
