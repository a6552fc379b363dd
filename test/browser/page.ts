// Runs in Chromium (test/browser/kernels.test.ts drives it): the same kernels and runtime
// as in Node, on the browser's navigator.gpu. Returns raw results; the Node side compares
// them with the float64 references.
import { Gpu } from '../../src/gpu/runtime.ts';
import * as ops from '../../src/ops/index.ts';
import { AdamW } from '../../src/optim/index.ts';
import { MLP } from '../../src/nn/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { matmulVariantFor } from '../../src/ops/matmul.ts';

export interface BrowserChecks {
  device: string;
  matmulVariant: string;
  matmul: { M: number; K: number; N: number; a: number[]; b: number[]; c: number[] }[];
  softmax: { x: number[]; y: number[] };
  layerNorm: { x: number[]; y: number[] };
  grad: { x: number[]; g: number[] };
  lossFirst: number;
  lossLast: number;
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

async function runChecks(): Promise<BrowserChecks> {
  const gpu = await Gpu.create();
  try {
    const matmul = [];
    for (const [M, K, N] of [[5, 7, 3], [33, 64, 40], [64, 36, 64]]) {
      const a = seeded(M * K, M), b = seeded(K * N, N);
      const c = await ops.matmul(ops.tensor(gpu, a, [M, K]), ops.tensor(gpu, b, [K, N])).floats();
      matmul.push({ M, K, N, a: [...a], b: [...b], c: [...c] });
    }
    const sx = seeded(3 * 10, 3);
    const sy = await ops.softmax(ops.tensor(gpu, sx, [3, 10])).floats();
    const lx = seeded(4 * 8, 4);
    const ly = await ops.layerNorm(ops.tensor(gpu, lx, [4, 8]), ops.ones(gpu, [8]), ops.zeros(gpu, [8])).floats();
    // d/dx sum(tanh(x) * x) = tanh(x) + x (1 - tanh(x)^2)
    const gx = seeded(9, 9);
    const xt = ops.parameter(gpu, gx, [9], 'x');
    backward(ops.sum(ops.mul(ops.tanh(xt), xt)));
    const g = await xt.grad!.floats();
    // A tiny training run: the loss must fall.
    const xs = seeded(64 * 2, 11).map((v) => 2 * v);
    const ys = Float32Array.from({ length: 64 }, (_, i) => Math.sin(3 * xs[2 * i]) + xs[2 * i] * xs[2 * i + 1]);
    const X = ops.tensor(gpu, xs, [64, 2]).keep();
    const Y = ops.tensor(gpu, ys, [64, 1]).keep();
    const model = new MLP(gpu, [2, 32, 1], 'tanh', 1);
    const opt = new AdamW(model.parameters(), { lr: 0.02 });
    let first = 0, last = 0;
    for (let i = 0; i < 150; i++) {
      const loss = scope(() => {
        const l = ops.mean(ops.square(ops.sub(model.forward(X), Y)));
        backward(l);
        opt.step();
        opt.zeroGrad();
        return l;
      });
      if (i === 0) first = await loss.item();
      if (i === 149) last = await loss.item();
      loss.dispose();
    }
    return {
      device: gpu.describe(),
      matmulVariant: matmulVariantFor(gpu),
      matmul,
      softmax: { x: [...sx], y: [...sy] },
      layerNorm: { x: [...lx], y: [...ly] },
      grad: { x: [...gx], g: [...g] },
      lossFirst: first,
      lossLast: last,
    };
  } finally {
    gpu.destroy();
  }
}

(globalThis as unknown as { runChecks: typeof runChecks }).runChecks = runChecks;
document.title = 'ready';
