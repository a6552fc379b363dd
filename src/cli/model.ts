import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu, fmtBytes } from '../gpu/runtime.ts';
import { modelPreset, MODEL_PRESETS } from '../train/config.ts';
import { checkpointKeys, countValues } from '../model/keys.ts';
import { RadFinderModel } from '../model/model.ts';
import { checkpointParameterCount, stateEntries } from '../model/weights.ts';
import { withoutInit } from '../nn/module.ts';
import { noGrad } from '../autograd.ts';
import { scopeAsync } from '../tensor.ts';
import { tensor } from '../ops/creation.ts';
import { textBatch } from '../model/text.ts';

const usage = `usage: ctvlm model [--preset paper|small|tiny] [--forward] [--random]

Prints a preset's parameter count from its checkpoint key table (RADFINDER-MODEL.md section
5) and, with --forward, builds the model on this device and runs the forward of one window
and one sentence, checking that the built model holds exactly the table's values.

options:
  --preset NAME   ${Object.keys(MODEL_PRESETS).join(', ')} (default paper: the released sizes)
  --forward       build the model and run one window and one sentence through it
  --random        the training initialisation (slow for paper: 1 B normal values drawn on
                  the CPU); default: a fast deterministic pattern of small values, which
                  exercises the same kernels`;

export const command: Command = {
  name: 'model',
  summary: 'a preset\'s parameter count; build it and run a forward',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { preset: { type: 'string' }, forward: { type: 'boolean' }, random: { type: 'boolean' } } });
    const name = a.preset ?? 'paper';
    const cfg = modelPreset(name);
    // A trained run's vocabulary is its tokenizer's (train sets it), so its count differs by the embedding rows.
    const vocabNote = name !== 'paper' && cfg.text.vocabSize === 0 ? `; at a vocabulary of 2000, the tokenizer's target: a trained run has its own tokenizer's size` : '';
    if (vocabNote) cfg.text.vocabSize = 2000;
    const keys = checkpointKeys(cfg);
    const total = countValues(keys);
    console.log(`${name}: ${keys.length} checkpoint tensors (LoRA's excluded), ${total.toLocaleString('en')} values (${fmtBytes(total * 4)} in f32)${vocabNote}`);
    if (!a.forward) return 0;
    if (a.random && name === 'paper') console.log('drawing 1 B random values on the CPU (about a minute)...');
    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      let t0 = performance.now();
      const model = a.random ? new RadFinderModel(gpu, cfg) : withoutInit(() => new RadFinderModel(gpu, cfg));
      if (!a.random)
        // A multiplicative hash of the index, +-0.05 (weight norm needs a non-zero v).
        for (const e of stateEntries(model).filter((x) => !x.key.endsWith('rope.periods') && !x.key.endsWith('hist_centres'))) {
          const n = e.shape.reduce((x, y) => x * y, 1);
          const d = new Float32Array(n);
          for (let i = 0; i < n; i++) d[i] = (((Math.imul(i + 1, 2654435761) >>> 0) / 4294967296) - 0.5) * 0.1;
          e.set(d);
        }
      const built = checkpointParameterCount(model);
      console.log(`built in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${built.toLocaleString('en')} values${built === total ? ' (= the key table)' : ` (the key table says ${total}: MISMATCH)`}; device memory ${fmtBytes(gpu.poolStats().liveBytes)}`);
      if (built !== total) throw new UsageError('the built model and its key table disagree');
      const [w0, w1, w2] = cfg.vision.window;
      t0 = performance.now();
      const img = await scopeAsync(async () => {
        const crop = tensor(gpu, new Float32Array(w0 * w1 * w2).map((_, i) => (i % 97) / 97), [1, 1, w0, w1, w2]);
        const e = noGrad(() => model.encodeImage(crop));
        return { image: await e.image.floats(), depth: e.depth.shape };
      });
      console.log(`one ${w0}x${w1}x${w2} window: ${((performance.now() - t0) / 1000).toFixed(1)} s; image embedding [${img.image.length}], per-depth [${img.depth.join(', ')}], finite: ${img.image.every(Number.isFinite)}`);
      t0 = performance.now();
      const eos = cfg.text.eosTokenId;
      const ids = [...Array.from({ length: 15 }, (_, i) => (i * 7919) % Math.min(cfg.text.vocabSize, 100000)), eos];
      const txt = await scopeAsync(async () => {
        const e = noGrad(() => model.encodeText(textBatch(gpu, [ids], 64)));
        return e.floats();
      });
      console.log(`one sentence of ${ids.length} tokens: ${((performance.now() - t0) / 1000).toFixed(1)} s; report embedding [${txt.length}], finite: ${txt.every(Number.isFinite)}`);
      model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
