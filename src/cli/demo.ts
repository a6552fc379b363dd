// `ctvlm demo`: a first end-to-end check of the GPU stack on this machine. It trains a
// small MLP on a synthetic regression entirely on the WebGPU device (forward, backward
// and AdamW in one submit per step; only the logged loss is read back) and prints the
// loss falling, the step time and the pool's memory.
import { numberOption, parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu, fmtBytes } from '../gpu/runtime.ts';
import * as ops from '../ops/index.ts';
import { AdamW } from '../optim/index.ts';
import { MLP } from '../nn/index.ts';
import { backward } from '../autograd.ts';
import { scope } from '../tensor.ts';
import { Rng } from '../ops/creation.ts';

const usage = `usage: ctvlm demo [--steps N] [--hidden H] [--batch B] [--seed S]

Trains a 3-H-H-1 GELU MLP to fit y = sin(3a) + b*c on the GPU and prints the loss.

options:
  --steps N    training steps (default 400)
  --hidden H   hidden width (default 64)
  --batch B    samples (default 512)
  --seed S     seed for data and weights (default 0)`;

const positive = (n: number, name: string) => {
  if (n <= 0) throw new UsageError(`--${name} must be positive`);
  return n;
};

export const command: Command = {
  name: 'demo',
  summary: 'train a small network on the GPU and print its loss falling',
  usage,
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: { steps: { type: 'string' }, hidden: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' } },
    });
    const steps = positive(numberOption(values.steps, 'steps', true) ?? 400, 'steps');
    const hidden = positive(numberOption(values.hidden, 'hidden', true) ?? 64, 'hidden');
    const n = positive(numberOption(values.batch, 'batch', true) ?? 512, 'batch');
    const seed = Number(values.seed ?? 0);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);

    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      const rng = new Rng(seed);
      const x = new Float32Array(n * 3);
      const y = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const [a, b, c] = [rng.next() * 2 - 1, rng.next() * 2 - 1, rng.next() * 2 - 1];
        x.set([a, b, c], i * 3);
        y[i] = Math.sin(3 * a) + b * c;
      }
      const X = ops.tensor(gpu, x, [n, 3], 'x').keep();
      const Y = ops.tensor(gpu, y, [n, 1], 'y').keep();
      const model = new MLP(gpu, [3, hidden, hidden, 1], 'gelu', seed);
      const opt = new AdamW(model.parameters(), { lr: 1e-2, clipNorm: 5 });
      console.log(`model: MLP 3-${hidden}-${hidden}-1, ${model.parameterCount()} parameters; ${n} samples; AdamW lr 1e-2`);
      const logEvery = Math.max(1, Math.floor(steps / 10));
      let first = NaN;
      let last = NaN;
      const t0 = performance.now();
      let tPrev = t0;
      let stepPrev = 0;
      for (let step = 1; step <= steps; step++) {
        const loss = scope(() => {
          const l = ops.mean(ops.square(ops.sub(model.forward(X), Y)));
          backward(l);
          opt.step();
          opt.zeroGrad();
          return l;
        });
        if (step === 1 || step % logEvery === 0 || step === steps) {
          last = await loss.item();
          if (step === 1) first = last;
          const now = performance.now();
          const ms = (now - tPrev) / (step - stepPrev);
          tPrev = now;
          stepPrev = step;
          console.log(`step ${String(step).padStart(5)}  loss ${last.toFixed(6)}  ${ms.toFixed(1)} ms/step${step === 1 ? ' (compiling kernels)' : ''}  live GPU memory ${fmtBytes(gpu.poolStats().liveBytes)}`);
        }
        loss.dispose();
      }
      console.log(`loss fell ${(first / last).toFixed(0)}x (${first.toFixed(4)} -> ${last.toFixed(6)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      model.dispose();
      opt.dispose();
      return first / last >= 10 ? 0 : 1;
    } finally {
      gpu.destroy();
    }
  },
};
