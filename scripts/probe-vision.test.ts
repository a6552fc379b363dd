// A diagnostic, not a test: does the vision path alone (the small preset's window backbone +
// feature combiner + a linear head) learn the 18 labels with BCE and positive weights? Prints
// train and test macro AUROC every 100 steps (see README "Learning").
//
//   PROBE_DATA=runs/quickstart/data/manifest.jsonl [LR=2e-3] [STEPS=600] [AUG=1] \
//     node scripts/test-only.mjs scripts/probe-vision.test.ts
import { suite } from 'uvu';
import { testGpu } from '../test/helpers/gpu.ts';
import { CtDataset } from '../src/data/dataset.ts';
import { preset } from '../src/train/config.ts';
import { FeatureCombiner, WindowBackbone, encodeVision } from '../src/model/vision.ts';
import { Linear } from '../src/nn/layers.ts';
import { toDepthFastest } from '../src/model/inputs.ts';
import { backward, noGrad } from '../src/autograd.ts';
import { scope } from '../src/tensor.ts';
import { AdamW } from '../src/optim/index.ts';
import { bceWithLogits } from '../src/ops/crossentropy.ts';
import { tensor } from '../src/ops/creation.ts';
import { auroc, macroMean } from '../src/eval/metrics.ts';
import { Rng } from '../src/rng.ts';
const t = suite('probe');
const env = (k: string, d: number) => Number(process.env[k] ?? d);
t('vision probe', async () => {
  const gpu = await testGpu();
  const cfg = preset('small');
  const v = cfg.model.vision;
  const lr = env('LR', 2e-3), steps = env('STEPS', 600), B = 8;
  const man = process.env.PROBE_DATA ?? 'runs/quickstart/data/manifest.jsonl';
  const tr = await CtDataset.open(man, { split: 'train', config: cfg.data, cache: true });
  const te = await CtDataset.open(man, { split: 'test', config: cfg.data });
  const evalCases = async (ds: CtDataset, n: number) => Promise.all(Array.from({ length: Math.min(n, ds.size) }, (_, i) => ds.prepare(i, 'eval', 0)));
  const trEval = await evalCases(tr, 80), teEval = await evalCases(te, 80);
  const bb = new WindowBackbone(gpu, v, 0), cb = new FeatureCombiner(gpu, v, 1);
  const head = new Linear(gpu, 2 * v.backbone.embedDim, 18, { seed: 3, name: 'head' });
  const opt = new AdamW([...bb.parameters(), ...cb.parameters(), ...head.parameters()], { lr, weightDecay: 1e-4, clipNorm: 1, beta1: 0.9, beta2: 0.95 });
  const vol = (cs: { volume: Float32Array; shape: [number, number, number] }[]) => {
    const [Z, Y, X] = cs[0].shape;
    const out = new Float32Array(cs.length * X * Y * Z);
    cs.forEach((c, i) => toDepthFastest(c.volume, c.shape, out, i * X * Y * Z));
    return tensor(gpu, out, [cs.length, 1, X, Y, Z]);
  };
  const score = async (cs: Awaited<ReturnType<typeof evalCases>>) => {
    const all: number[][] = [];
    for (let i = 0; i < cs.length; i += 8) {
      const part = cs.slice(i, i + 8);
      const l = noGrad(() => scope(() => head.forward(encodeVision(bb, cb, vol(part), { depth: false }).pooled)));
      const f = await l.floats();
      l.dispose();
      part.forEach((_, k) => all.push(Array.from(f.subarray(k * 18, (k + 1) * 18))));
    }
    return macroMean(Array.from({ length: 18 }, (_, q) => auroc(all.map((r) => r[q]), cs.map((c) => c.labels[q]))));
  };
  const pw = tensor(gpu, tr.stats().posWeight, [18]).keep();
  const rng = new Rng(5);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const idx = Array.from({ length: B }, () => Math.floor(rng.next() * tr.size));
    const cs = await Promise.all(idx.map((i, j) => tr.prepare(i, process.env.AUG === '1' ? 'train' : 'eval', s * 100 + j)));
    const labels = new Float32Array(B * 18);
    cs.forEach((c, i) => labels.set(Array.from(c.labels), i * 18));
    opt.lr = s < 20 ? (lr * (s + 1)) / 20 : lr * 0.5 * (1 + Math.cos((Math.PI * (s - 20)) / (steps - 20)));
    const loss = scope(() => {
      const l = bceWithLogits(head.forward(encodeVision(bb, cb, vol(cs), { depth: false }).pooled), tensor(gpu, labels, [B, 18]), pw);
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    if ((s + 1) % 100 === 0) console.log(`step ${s + 1} loss ${(await loss.item()).toFixed(3)} train AUROC ${(await score(trEval)).toFixed(3)} test ${(await score(teEval)).toFixed(3)} (${((performance.now() - t0) / (s + 1)).toFixed(0)} ms/step)`);
    loss.dispose();
  }
});
t.run();
