// Using the installed package from Node (ESM): the framework alone ('ct-vlm-webgpu/framework')
// for a matmul and its gradient, and the full library ('ct-vlm-webgpu') beside it. Both entries
// share one framework, so a tensor made by one is a Tensor of the other.
//
//   npm install ct-vlm-webgpu && node node-example.mjs
//
// Prints one JSON line: the inputs, loss = sum(tanh(A @ B)) and dloss/dA. test/package.test.ts
// runs this file in a folder where only the packed package is installed and checks the numbers
// against a float64 computation.
import { createDevice, parameter, tensor, matmul, tanh, sum, backward } from 'ct-vlm-webgpu/framework';
import { Tensor, LABELS } from 'ct-vlm-webgpu';

// Sizes that are not multiples of any tile; deterministic inputs, so the output is reproducible.
const [M, K, N] = [3, 5, 4];
const a = Array.from({ length: M * K }, (_, i) => Math.sin(i + 1));
const b = Array.from({ length: K * N }, (_, i) => Math.cos(0.7 * i) / 2);

const gpu = await createDevice(); // Node: dawn.node from the `webgpu` package
try {
  const A = parameter(gpu, a, [M, K], 'A'); // requires a gradient
  const B = tensor(gpu, b, [K, N], 'B');
  const loss = sum(tanh(matmul(A, B))); // one element
  backward(loss);
  console.log(
    JSON.stringify({
      M,
      K,
      N,
      a,
      b,
      loss: await loss.item(),
      gradA: Array.from(await A.grad.floats()),
      sharedTensorClass: A instanceof Tensor,
      labels: LABELS.length,
      adapter: gpu.describe(),
    }),
  );
} finally {
  gpu.destroy(); // dawn.node keeps the process alive until the device is destroyed
}
