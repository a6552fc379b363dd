// The bench's list of the model's linear layers (bench/suites/matmul.ts modelLinears) against
// the matmuls a real training step launches: the tiny preset's model runs its loss and
// backward on a batch whose texts are at their token caps, and the launched matmuls' labels
// must hold each listed layer's forward, input-gradient and weight-gradient product exactly
// `count` times, and no forward linear product the list lacks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { modelLinears } from '../../bench/suites/matmul.ts';
import { PRESETS } from '../../src/train/config.ts';
import { NUM_LABELS } from '../../src/data/labels.ts';
import { RadFinderModel, type Batch } from '../../src/model/model.ts';
import { textBatch } from '../../src/model/text.ts';
import { fromInts, tensor } from '../../src/ops/creation.ts';
import { backward } from '../../src/autograd.ts';
import { scopeAsync } from '../../src/tensor.ts';

const rowsOf = (dims: string) => dims.split('x').slice(0, -1).reduce((p, d) => p * Number(d), 1);
const lastOf = (dims: string) => Number(dims.split('x').at(-1));

test('modelLinears lists the linear layers of a training step (tiny preset, x1 and x2 widths)', async () => {
  const gpu = await testGpu();
  for (const k of [1, 2]) {
    const cfg = PRESETS.tiny();
    const m = cfg.model;
    // modelLinears(cfg, k) must describe the model built at k times the widths.
    m.vision.backbone.embedDim *= k;
    m.text.hiddenSize *= k;
    m.text.headDim *= k;
    m.text.intermediateSize *= k;
    m.head = { hidden: m.head.hidden * k, bottleneck: m.head.bottleneck * k, out: m.head.out * k };
    m.text.vocabSize = cfg.vocabSize;
    const expected = modelLinears(PRESETS.tiny(), k);
    assert.ok(expected.length > 20, `${expected.length} linear shapes listed`);

    const model = new RadFinderModel(gpu, m, 3);
    const labels = await scopeAsync(async () => {
      const B = cfg.batch;
      const [wx, wy, wz] = cfg.data.window;
      const [gx, gy, gz] = cfg.data.grid;
      const n = B * wx * gx * wy * gy * wz * gz;
      const texts = (rows: number, L: number, name: string) =>
        textBatch(gpu, Array.from({ length: rows }, (_, i) => Array.from({ length: L }, (_, j) => 1 + ((i * 7 + j * 3) % (cfg.vocabSize - 1)))), L, name);
      const bins = gz * (wz / cfg.data.patch[2]);
      const S = cfg.maxSnippets;
      const batch: Batch = {
        volume: tensor(gpu, Array.from({ length: n }, (_, i) => (i % 97) / 97), [B, 1, wx * gx, wy * gy, wz * gz]),
        report: texts(B, cfg.reportTokens, 'report'),
        reportValid: tensor(gpu, new Array(B).fill(1), [B]),
        labels: tensor(gpu, Array.from({ length: B * NUM_LABELS }, (_, i) => (i % 3) - 1), [B, NUM_LABELS]),
        prompts: texts(2 * NUM_LABELS, cfg.promptTokens, 'prompts'),
        posWeight: tensor(gpu, new Array(NUM_LABELS).fill(1), [NUM_LABELS]),
        snippets: {
          text: texts(S, cfg.snippetTokens, 'snippets'),
          case: fromInts(gpu, Array.from({ length: S }, (_, i) => i % B), [S]),
          target: fromInts(gpu, Array.from({ length: S }, (_, i) => i % bins), [S]),
          validBins: tensor(gpu, new Array(S * bins).fill(1), [S, bins]),
          targetMm: tensor(gpu, Array.from({ length: S }, (_, i) => 6 + 12 * (i % bins)), [S, 1]),
        },
      };
      // Every launch's label, recorded on the way through (a profile would cap the count).
      const seen: string[] = [];
      const launch = gpu.launch;
      gpu.launch = (ep, args) => (seen.push(args.label), launch.call(gpu, ep, args));
      try {
        const p = model.loss(batch);
        backward(p.total);
        await gpu.sync();
      } finally {
        gpu.launch = launch;
      }
      return seen.filter((l) => l.startsWith('matmul '));
    });
    model.dispose();

    // Labels: 'matmul [a]ᵀ?@[b]ᵀ?(+bias)?( epilogue)?' (src/launch/matmul.ts).
    const parsed = labels.map((l) => {
      const g = /^matmul \[([\dx]+)\](ᵀ?)@\[([\dx]+)\](ᵀ?)(\+bias)?( gelu| geluBackward| residual| accumulate)?$/.exec(l);
      assert.ok(g, `unexpected matmul label '${l}'`);
      return { a: g![1], tA: !!g![2], b: g![3], tB: !!g![4], bias: !!g![5] };
    });
    const count = (f: (p: (typeof parsed)[number]) => boolean) => parsed.filter(f).length;
    for (const l of expected) {
      const w = `${l.outF}x${l.inF}`;
      const fwd = count((p) => !p.tA && p.tB && p.b === w && p.bias === l.bias && rowsOf(p.a) === l.rows && lastOf(p.a) === l.inF);
      const dX = count((p) => !p.tA && !p.tB && p.b === w && rowsOf(p.a) === l.rows && lastOf(p.a) === l.outF);
      const dW = count((p) => p.tA && !p.tB && p.a === `${l.rows}x${l.outF}` && p.b === `${l.rows}x${l.inF}`);
      const what = `x${k} ${l.name} ${l.rows}x${l.inF}->${l.outF}`;
      assert.is(fwd, l.count, `${what}: forward products`);
      assert.is(dX, l.inputGrad === false ? 0 : l.count, `${what}: input-gradient products`);
      assert.is(dW, l.count, `${what}: weight-gradient products`);
    }
    // Every forward product with a 2D B operand is a listed layer, except two products of
    // embeddings, not layers: SigLIP's logits (images [B, out] @ reports [B, out]ᵀ) and the
    // prompt logits (disease embeddings [B, out] @ prompt differences [Q, out]ᵀ).
    const listed = new Set(expected.map((l) => `${l.rows}:${l.outF}x${l.inF}:${l.bias}`));
    const unlisted = parsed.filter((p) => !p.tA && p.tB && p.b.split('x').length === 2 && !listed.has(`${rowsOf(p.a)}:${p.b}:${p.bias}`));
    const out = m.head.out;
    assert.equal(unlisted.map((p) => `${p.a}@${p.b}ᵀ`).sort(), [`${cfg.batch}x${out}@${cfg.batch}x${out}ᵀ`, `${cfg.batch}x${out}@${NUM_LABELS}x${out}ᵀ`].sort());
  }
});

test.run();
