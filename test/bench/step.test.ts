// The bench's `step` section without its timings: the scaled presets, and the PyTorch peer
// (bench/peers/radfinder_step.py) against our training step on the tiny preset, from the same
// weights and batch: the first loss, its gradient norm and the loss after one AdamW step must
// agree (tolerances in bench/peers/radfinder-step.ts). Skips the peer's tests, saying so,
// where torch does not import.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { testGpu } from '../helpers/gpu.ts';
import { perRoundRatios, scaledConfig, stepFlops } from '../../bench/suites/step.ts';
import { hostBatch, StepSides, LOSS_TOL, AFTER_TOL } from '../../bench/peers/radfinder-step.ts';
import { probeTorch, PythonPeer, repoRoot } from '../../bench/peers/python.ts';

const t = suite('bench step');
const torch = probeTorch();
if (!torch.ok) console.log(`  (skipping the PyTorch peer's tests: ${torch.reason})`);

t('scaled presets: widths times k, depths and heads kept, RoPE head widths divisible by 6', () => {
  const base = scaledConfig(1);
  for (const k of [1, 2, 4]) {
    const c = scaledConfig(k).model;
    assert.is(c.vision.backbone.embedDim, base.model.vision.backbone.embedDim * k);
    assert.is(c.vision.backbone.depth, base.model.vision.backbone.depth);
    assert.is(c.vision.combiner.heads, base.model.vision.combiner.heads);
    assert.is((c.vision.backbone.embedDim / c.vision.backbone.heads) % 6, 0);
    assert.is(c.text.hiddenSize, base.model.text.hiddenSize * k);
    assert.is(c.text.numHiddenLayers, base.model.text.numHiddenLayers);
    assert.is(c.text.vocabSize, base.vocabSize);
    assert.is(c.head.out, base.model.head.out * k);
  }
  // Matmul work grows about as the square of the width.
  const f = [1, 2, 4].map((k) => stepFlops(scaledConfig(k), hostBatch(scaledConfig(k), 1)));
  assert.ok(f[1] / f[0] > 3 && f[1] / f[0] < 4.1 && f[2] / f[1] > 3.5 && f[2] / f[1] < 4.1, `flops ${f}`);
});

t('per-round ratios: our median over the better thread count median, round by round', () => {
  // Round 0: 10 / min(5, 8) = 2; round 1: 20 / min(10, 8) = 2.5 (the better thread count changes).
  assert.equal(perRoundRatios([10, 11, 9, 20, 20, 20], [[5, 5, 5, 10, 10, 10], [8, 8, 8, 8, 8, 8]], 2), [2, 2.5]);
  assert.equal(perRoundRatios([10, 20], [[5, 10], []], 2), [2, 2], 'a thread count without samples is left out');
  assert.equal(perRoundRatios([10, 20], [], 2), [], 'no peer: no ratios');
});

t('host batch: shapes of the preset, one text row at each limit, targets among valid bins', () => {
  const cfg = scaledConfig(1, 'tiny');
  const h = hostBatch(cfg, 5);
  assert.equal(h.tensors.volume.shape, [cfg.batch, 1, 32, 32, 16]);
  assert.equal(h.tensors['report.ids'].shape, [cfg.batch, cfg.reportTokens]);
  assert.is(Math.max(...h.lengths.snippets), cfg.snippetTokens);
  const S = cfg.maxSnippets;
  const D = h.tensors['snippet.validBins'].shape[1];
  for (let s = 0; s < S; s++) assert.is(h.tensors['snippet.validBins'].data[s * D + h.tensors['snippet.target'].data[s]], 1);
});

t('our side alone: two steps give finite losses and a gradient norm', async () => {
  const gpu = await testGpu();
  const cfg = scaledConfig(1, 'tiny');
  const sides = await StepSides.open(gpu, cfg, hostBatch(cfg, 7), { peer: false, threads: 1 });
  try {
    const c = await sides.check();
    assert.not.ok('agree' in c);
    for (const v of Object.values(c.ours)) assert.ok(Number.isFinite(v), `${JSON.stringify(c.ours)}`);
    assert.ok((await sides.ourStep()) > 0);
  } finally {
    sides.close();
  }
});

t('PyTorch peer: same parameter count; step-1 loss, gradient norm and step-2 loss agree (tiny, 1x and 2x widths)', async () => {
  if (!torch.ok) return;
  const gpu = await testGpu();
  for (const k of [1, 2]) {
    const cfg = scaledConfig(k, 'tiny');
    const sides = await StepSides.open(gpu, cfg, hostBatch(cfg, 11 + k), { peer: true, threads: 1 });
    try {
      assert.is(sides.peerParams, sides.params);
      const c = await sides.check();
      assert.ok('agree' in c);
      if (!('agree' in c)) return;
      assert.ok(Math.abs(c.ours.loss1 - c.peer.loss1) <= LOSS_TOL * Math.abs(c.peer.loss1), c.text);
      assert.ok(Math.abs(c.ours.gradNorm1 - c.peer.gradNorm1) <= AFTER_TOL * c.peer.gradNorm1, c.text);
      assert.ok(Math.abs(c.ours.loss2 - c.peer.loss2) <= AFTER_TOL * Math.abs(c.peer.loss2), c.text);
      assert.ok(c.agree, c.text);
      // The step changed the loss (the update happened on both sides).
      assert.ok(Math.abs(c.peer.loss2 - c.peer.loss1) > 1e-2 * Math.abs(c.peer.loss1), c.text);
      const ms = await sides.peerSteps(1, 2);
      assert.is(ms.length, 2);
    } finally {
      sides.close();
    }
  }
});

t('PyTorch peer: a folder without the files fails with one line naming the problem', async () => {
  if (!torch.ok) return;
  const peer = new PythonPeer(join(repoRoot(), 'bench', 'peers', 'radfinder_step.py'), [join(tmpdir(), 'ctvlm-no-such-folder'), '--threads', '1']);
  try {
    await peer.next();
    assert.unreachable('expected an error');
  } catch (e) {
    assert.match((e as Error).message, /the PyTorch peer failed: FileNotFoundError: .*peer\.json/);
  } finally {
    peer.close();
  }
});

t.run();
