// Fused attention against a float64 softmax(q k^T / sqrt(D)) v: lengths that are not
// multiples of the 64-query workgroup, head dimensions 1 to 128 (multiples of 4 or not,
// one chunk or several), cross attention (Lq != Lk), key masks (including a row with every
// key masked), grouped-query attention (H = 4 / Hkv = 2, H = 6 / Hkv = 1) and causal
// masking (with and without a key mask), scores of +-1e4 (the saved softmax statistics);
// gradients of q, k and v by finite differences of the float64 reference, for every kernel
// variant (gpu.tuning.attention: subgroup where the device has subgroups, plain, and tiled,
// the workgroup-memory kernel for GPUs, which also gets its own tests below: tile
// boundaries, forced layouts, the variant choice).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { GRAD, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { ShapeError, ValueError } from '../../src/errors.ts';
import { backward } from '../../src/autograd.ts';
import { attentionVariantFor, attentionVariants, autoAttentionVariant, type AttentionVariant } from '../../src/launch/attention.ts';

async function variants(): Promise<AttentionVariant[]> {
  return attentionVariants(await testGpu());
}

const t = suite('attention');
t.after.each(resetTuning);
const TOL = { rtol: 1e-4, atol: 2e-5 };
/** x rounded to the nearest f16 (ties to even; subnormals below 2^-14, zero below 2^-25). */
function roundF16(x: number): number {
  const a = Math.abs(x);
  if (a === 0 || !Number.isFinite(a)) return x;
  const ulp = a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
  const r = a / ulp;
  const f = Math.floor(r);
  const n = r - f > 0.5 || (r - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * n * ulp;
}
// The f16 variant against float64 over f16-rounded keys and values, on a device whose f16
// conversions do not round to nearest (WGSL lets a conversion take either neighbour): a key
// one f16 ulp (2^-10 relative) from the reference's moves a score by about |q| |k| 2^-10
// scale per term, sqrt(D) of them at random signs (inputs of at most 2: ~4e-3 at D = 128), an
// output or gradient by about that times |v| or |dO|. assertClose allows atol times the
// largest entry plus rtol times the entry's own size. Far below the O(1) errors of a wrong
// tile, head or index; a device that rounds to nearest is held to the f32 tolerance instead.
const F16_TOL = { rtol: 5e-3, atol: 5e-3 };
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

t('forward: shapes, head dimensions, cross attention, masks (every kernel)', async () => {
  const gpu = await testGpu();
  for (const variant of await variants()) {
  gpu.tuning.attention.variant = variant;
  const cases: [number, number, number, number, number, boolean][] = [
    [1, 1, 1, 1, 4, false], [2, 3, 5, 7, 8, false], [1, 2, 70, 70, 32, false], [2, 2, 65, 33, 16, true], [1, 1, 3, 130, 64, true],
  ];
  for (const [B, H, Lq, Lk, D, masked] of cases) {
    const q = f32(randomValues(B * H * Lq * D, 1, -2, 2)), k = f32(randomValues(B * H * Lk * D, 2, -2, 2)), v = f32(randomValues(B * H * Lk * D, 3));
    const mask = masked ? Array.from({ length: B * Lk }, (_, i) => (i % 3 === 1 ? 0 : 1)) : undefined;
    const out = ops.attention(
      ops.tensor(gpu, Float32Array.from(q), [B, H, Lq, D]), ops.tensor(gpu, Float32Array.from(k), [B, H, Lk, D]), ops.tensor(gpu, Float32Array.from(v), [B, H, Lk, D]),
      { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined },
    );
    assertClose(await out.floats(), ref.attention(q, k, v, B, H, Lq, Lk, D, mask), TOL, `${variant} attention B${B} H${H} ${Lq}x${Lk}x${D}${masked ? ' masked' : ''}`);
  }
  }
  gpu.tuning.attention.variant = 'auto';
});

t('a query with every key masked gets zeros, not NaN', async () => {
  const gpu = await testGpu();
  const q = ops.tensor(gpu, Float32Array.from(randomValues(2 * 3 * 4, 1)), [2, 1, 3, 4]);
  const k = ops.tensor(gpu, Float32Array.from(randomValues(2 * 5 * 4, 2)), [2, 1, 5, 4]);
  const out = await ops.attention(q, k, k, { mask: ops.tensor(gpu, [0, 0, 0, 0, 0, 1, 1, 0, 1, 1], [2, 5]) }).floats();
  assert.ok(out.slice(0, 12).every((x) => x === 0), 'batch 0 (all masked) is zero');
  assert.ok(out.slice(12).every((x) => Number.isFinite(x) && x !== 0), 'batch 1 is finite');
});

t('causal + padding: a query with no key gets exactly zero output and zero gradient', async () => {
  const gpu = await testGpu();
  for (const variant of await variants()) {
    gpu.tuning.attention.variant = variant;
    // Batch 0: key 0 masked, so causal query 0 sees nothing; batch 1: every key masked.
    const [B, H, L, D] = [2, 2, 5, 6];
    const q = ops.tensor(gpu, Float32Array.from(randomValues(B * H * L * D, 21)), [B, H, L, D]);
    const k = ops.tensor(gpu, Float32Array.from(randomValues(B * L * D, 22)), [B, 1, L, D]);
    q.requiresGrad = true;
    const o = ops.attention(q, k, k, { mask: ops.tensor(gpu, [0, 1, 1, 1, 1, 0, 0, 0, 0, 0], [B, L]), causal: true });
    backward(o, ops.tensor(gpu, Float32Array.from(randomValues(B * H * L * D, 23)), [B, H, L, D]));
    const [out, dq] = [await o.floats(), await q.grad!.floats()];
    for (const [a, what] of [[out, 'output'], [dq, 'dq']] as const) {
      for (let h = 0; h < H; h++) {
        const row0 = a.slice(h * L * D, h * L * D + D);
        assert.ok(row0.every((x) => x === 0), `${variant}: ${what} of batch 0 head ${h} query 0 is zero`);
        // (Query 1 sees key 1 only: its softmax is constant, so its dq is zero too.)
        const from = what === 'dq' ? 2 : 1;
        assert.ok(a.slice(h * L * D + from * D, (h + 1) * L * D).every((x) => Number.isFinite(x) && x !== 0), `${variant}: ${what} of batch 0 head ${h} queries ${from}.. finite, nonzero`);
      }
      assert.ok(a.slice(H * L * D).every((x) => x === 0), `${variant}: ${what} of batch 1 (all keys masked) is zero`);
    }
  }
  gpu.tuning.attention.variant = 'auto';
});

t('backward: q, k and v by finite differences (masked and not, both kernels)', async () => {
  const gpu = await testGpu();
  for (const variant of await variants())
  for (const [B, H, Lq, Lk, D, masked] of [[1, 2, 3, 5, 4, false], [2, 1, 4, 3, 8, true], [1, 1, 3, 4, 40, false]] as [number, number, number, number, number, boolean][]) {
    gpu.tuning.attention.variant = variant;
    const mask = masked ? [1, 0, 1, 1, 1, 0] : undefined;
    await checkGradients({
      what: `${variant} attention ${Lq}x${Lk}x${D}${masked ? ' masked' : ''}`, gpu,
      inputs: [{ data: randomValues(B * H * Lq * D, 4), shape: [B, H, Lq, D] }, { data: randomValues(B * H * Lk * D, 5), shape: [B, H, Lk, D] }, { data: randomValues(B * H * Lk * D, 6), shape: [B, H, Lk, D] }],
      op: (q, k, v) => ops.attention(q, k, v, { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined }),
      reference: (q, k, v) => ref.attention(q, k, v, B, H, Lq, Lk, D, mask),
    });
  }
  gpu.tuning.attention.variant = 'auto';
});

// GQA, causal masking and any head width, against ref.attentionGqa (float64).
// [B, H, Hkv, Lq, Lk, D, mask, causal]; mask: 'thirds' masks keys 1, 4, 7, ... of every batch
// row, 'pad' masks key 0 of batch 0 (so with causal query 0 has no key) and every key of
// batch 1 (a padded row), or an explicit [B * Lk] array.
type Case = [number, number, number, number, number, number, 'thirds' | 'pad' | number[] | null, boolean];
function maskOf(c: Case): number[] | undefined {
  const [B, , , , Lk, , m] = c;
  if (!m) return undefined;
  if (m === 'thirds') return Array.from({ length: B * Lk }, (_, i) => (i % Lk) % 3 === 1 ? 0 : 1);
  if (m === 'pad') return Array.from({ length: B * Lk }, (_, i) => (i === 0 || i >= Lk ? 0 : 1));
  return m;
}
const name = (variant: string, [B, H, Hkv, Lq, Lk, D, m, causal]: Case) =>
  `${variant} attention B${B} H${H}/${Hkv} ${Lq}x${Lk}x${D}${m ? ` mask ${typeof m === 'string' ? m : 'custom'}` : ''}${causal ? ' causal' : ''}`;

// Forward tolerance: the default attention TOL above. Scores are dot products of D <= 128
// f32 terms of magnitude <= 4, then exp and a sum over Lk <= 130 keys: the f32 roundoff is
// ~1e-6 relative, two orders below 1e-4; an indexing error (wrong head, key or mask bound)
// changes outputs by O(1).
t('forward: grouped-query, causal, head widths 1 to 128, size 1 (every kernel)', async () => {
  const gpu = await testGpu();
  const cases: Case[] = [
    [2, 4, 2, 70, 70, 8, null, false], // GQA 4/2, lengths past one workgroup
    [1, 6, 1, 5, 9, 16, 'thirds', false], // GQA 6/1, masked, cross
    [1, 2, 2, 67, 67, 8, null, true], // causal, two query and key blocks
    [2, 2, 1, 33, 33, 8, 'pad', true], // causal + mask: a query with no key, a padded row
    [1, 1, 1, 70, 130, 8, null, true], // causal, Lq < Lk: queries are the last Lq positions
    [1, 1, 1, 130, 70, 8, 'thirds', true], // causal, Lq > Lk: the first 60 queries see nothing
    [1, 2, 2, 5, 7, 1, null, false], // D = 1
    [1, 1, 1, 9, 3, 6, 'thirds', false], // D = 6
    [1, 3, 3, 10, 10, 18, null, true], // D = 18
    [1, 4, 2, 13, 11, 36, null, false], // D = 36
    [1, 4, 2, 13, 70, 90, null, false], // D = 90 (padded to 92; the backward splits it over lanes)
    [1, 2, 1, 7, 66, 128, null, true], // D = 128
    [1, 1, 1, 1, 1, 1, null, false], // size 1
    [1, 1, 1, 1, 1, 1, null, true],
  ];
  for (const variant of await variants()) {
    gpu.tuning.attention.variant = variant;
    for (const c of cases) {
      const [B, H, Hkv, Lq, Lk, D, , causal] = c;
      const q = f32(randomValues(B * H * Lq * D, 1, -2, 2)), k = f32(randomValues(B * Hkv * Lk * D, 2, -2, 2)), v = f32(randomValues(B * Hkv * Lk * D, 3));
      const mask = maskOf(c);
      const out = ops.attention(
        ops.tensor(gpu, Float32Array.from(q), [B, H, Lq, D]), ops.tensor(gpu, Float32Array.from(k), [B, Hkv, Lk, D]), ops.tensor(gpu, Float32Array.from(v), [B, Hkv, Lk, D]),
        { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined, causal },
      );
      const got = await out.floats();
      assertClose(got, ref.attentionGqa(q, k, v, B, H, Hkv, Lq, Lk, D, { mask, causal }), TOL, name(variant, c));
      assert.ok(got.every(Number.isFinite), `${name(variant, c)}: finite`);
    }
    // A scale other than the default, on a grouped causal case (D = 12).
    const [B, H, Hkv, L, D] = [1, 4, 2, 9, 12];
    const q = f32(randomValues(B * H * L * D, 7)), k = f32(randomValues(B * Hkv * L * D, 8)), v = f32(randomValues(B * Hkv * L * D, 9));
    const out = ops.attention(ops.tensor(gpu, Float32Array.from(q), [B, H, L, D]), ops.tensor(gpu, Float32Array.from(k), [B, Hkv, L, D]), ops.tensor(gpu, Float32Array.from(v), [B, Hkv, L, D]), { causal: true, scale: 0.7 });
    assertClose(await out.floats(), ref.attentionGqa(q, k, v, B, H, Hkv, L, L, D, { causal: true, scale: 0.7 }), TOL, `${variant} attention scale 0.7`);
  }
  gpu.tuning.attention.variant = 'auto';
});

// Gradient tolerance: checkGradients' default (GRAD in test/helpers/check.ts, 1e-4 relative
// plus 1e-5 of the largest magnitude): the analytic f32 gradients sum at most a few hundred
// products (query heads of a group times keys or queries), ~1e-6 relative roundoff, far
// inside it; a wrong group sum or causal bound is off by O(1).
t('backward: grouped-query, causal, head widths 1 to 128 by finite differences (every kernel)', async () => {
  const gpu = await testGpu();
  const cases: Case[] = [
    [1, 4, 2, 3, 5, 4, null, false], // GQA 4/2: dk, dv sum over two query heads
    [1, 6, 1, 3, 4, 6, [1, 0, 1, 1], false], // GQA 6/1, masked, D = 6 (padded)
    [1, 2, 2, 5, 5, 4, null, true], // causal
    [2, 1, 1, 4, 4, 4, 'pad', true], // causal + mask: query 0 of batch 0 and batch 1 see no key
    [1, 1, 1, 3, 5, 4, null, true], // causal, Lq < Lk
    [1, 1, 1, 5, 3, 4, null, true], // causal, Lq > Lk
    [1, 2, 1, 65, 65, 4, null, true], // causal GQA over two query and key blocks
    [1, 1, 1, 3, 4, 1, null, false], // D = 1
    [1, 2, 1, 3, 4, 90, null, false], // D = 90, GQA
    [1, 1, 1, 2, 3, 128, null, true], // D = 128
    [1, 1, 1, 1, 1, 1, null, false], // size 1
  ];
  for (const variant of await variants()) {
    gpu.tuning.attention.variant = variant;
    for (const c of cases) {
      const [B, H, Hkv, Lq, Lk, D, , causal] = c;
      const mask = maskOf(c);
      await checkGradients({
        what: name(variant, c), gpu,
        inputs: [{ data: randomValues(B * H * Lq * D, 4), shape: [B, H, Lq, D] }, { data: randomValues(B * Hkv * Lk * D, 5), shape: [B, Hkv, Lk, D] }, { data: randomValues(B * Hkv * Lk * D, 6), shape: [B, Hkv, Lk, D] }],
        op: (q, k, v) => ops.attention(q, k, v, { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined, causal }),
        reference: (q, k, v) => ref.attentionGqa(q, k, v, B, H, Hkv, Lq, Lk, D, { mask, causal }),
      });
    }
  }
  gpu.tuning.attention.variant = 'auto';
});

// The automatic layout splits a query over 2 lanes in the backward of D = 90 and 128 and
// loops over chunks in the plain kernel there (both tested above); 4 and 8 lanes (D > 128)
// and chunk loops in the subgroup kernel (D > 512) are forced here at a small D (36 = 9
// vec4s, so every split leaves padding), over several workgroups (a workgroup holds 64 /
// parts queries), causal, grouped and masked.
t('forced layouts: queries split over 4 and 8 lanes, chunk loops (forward and backward)', async () => {
  const gpu = await testGpu();
  const layouts: ['subgroup' | 'plain', { parts?: number; chunk?: number }][] = [
    ['subgroup', { parts: 4 }], ['subgroup', { parts: 8, chunk: 1 }],
  ];
  for (const [variant, l] of layouts) {
    if (!(await variants()).includes(variant)) continue;
    if ((l.parts ?? 1) > (gpu.subgroupMinSize >= 8 ? 8 : 4)) continue; // lanes per query <= the row-sharing group
    gpu.tuning.attention.variant = variant;
    gpu.tuning.attention.layout = l;
    const what = `${variant} ${JSON.stringify(l)}`;
    try {
      const fc: Case = [2, 4, 2, 40, 40, 36, 'pad', true];
      const [B, H, Hkv, Lq, Lk, D, , causal] = fc;
      const q = f32(randomValues(B * H * Lq * D, 11, -2, 2)), k = f32(randomValues(B * Hkv * Lk * D, 12, -2, 2)), v = f32(randomValues(B * Hkv * Lk * D, 13));
      const mask = maskOf(fc);
      const out = ops.attention(
        ops.tensor(gpu, Float32Array.from(q), [B, H, Lq, D]), ops.tensor(gpu, Float32Array.from(k), [B, Hkv, Lk, D]), ops.tensor(gpu, Float32Array.from(v), [B, Hkv, Lk, D]),
        { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined, causal },
      );
      assertClose(await out.floats(), ref.attentionGqa(q, k, v, B, H, Hkv, Lq, Lk, D, { mask, causal }), TOL, `${what} ${name(variant, fc)}`);
      const gc: Case = [2, 2, 1, 18, 18, 36, 'pad', true];
      const [gB, gH, gHkv, gLq, gLk, gD] = gc;
      const gmask = maskOf(gc);
      await checkGradients({
        what: `${what} ${name(variant, gc)}`, gpu,
        inputs: [{ data: randomValues(gB * gH * gLq * gD, 14), shape: [gB, gH, gLq, gD] }, { data: randomValues(gB * gHkv * gLk * gD, 15), shape: [gB, gHkv, gLk, gD] }, { data: randomValues(gB * gHkv * gLk * gD, 16), shape: [gB, gHkv, gLk, gD] }],
        op: (q, k, v) => ops.attention(q, k, v, { mask: ops.tensor(gpu, gmask!, [gB, gLk]), causal: true }),
        reference: (q, k, v) => ref.attentionGqa(q, k, v, gB, gH, gHkv, gLq, gLk, gD, { mask: gmask, causal: true }),
      });
    } finally {
      gpu.tuning.attention.layout = null;
    }
  }
  gpu.tuning.attention.variant = 'auto';
  gpu.tuning.attention.layout = { parts: 3 };
  try {
    const x = ops.zeros(gpu, [1, 1, 2, 4]);
    assert.throws(() => ops.attention(x, x, x), (e: Error) => e instanceof ValueError && /gpu.tuning.attention.layout.parts = 3 is not 1, 2, 4 or 8/.test(e.message));
  } finally {
    gpu.tuning.attention.layout = null;
  }
});

// Rows per lane (gpu.tuning.attention.layout.rows; the automatic choice takes 1 to 4 in the
// subgroup kernel, see rowSpread in src/launch/attention.ts): each row's arithmetic is the
// same statements in the same order whatever the count, so the output and the three
// gradients must equal those of one row per lane bit for bit (and float64, via checkCase),
// on lengths that leave lanes past the end in every spread, causal (the subgroup's own key
// bound), Lq < Lk and Lq > Lk, masks, grouped-query heads, a query split over 2 lanes, size 1.
t('rows per lane 1 to 4: the same bits as one row per lane (subgroup and plain kernels)', async () => {
  const gpu = await testGpu();
  // Every pipeline is compiled anew (a minute or more of the file on a cold shader cache), so
  // all four counts only where the automatic choice takes them: the subgroup kernel.
  const cases: [Case, { parts?: number }, number[]][] = [
    [[2, 4, 2, 70, 70, 12, 'pad', true], {}, [1, 2, 3, 4]],
    [[1, 2, 1, 3, 130, 8, null, true], {}, [1, 2, 4]],
    [[1, 1, 1, 130, 37, 8, 'thirds', true], {}, [1, 3, 4]],
    [[1, 2, 2, 41, 41, 36, null, false], { parts: 2 }, [1, 3]],
    [[1, 1, 1, 1, 1, 4, null, false], {}, [1, 4]],
  ];
  for (const variant of (await variants()).filter((v) => v === 'subgroup' || v === 'plain')) {
    gpu.tuning.attention.variant = variant;
    for (const [c, l, counts] of variant === 'subgroup' ? cases : cases.slice(0, 1)) {
      if (l.parts && variant !== 'subgroup') continue;
      let one: Float64Array[] | null = null;
      for (const rows of variant === 'subgroup' ? counts : [1, 2]) {
        gpu.tuning.attention.layout = { ...l, rows };
        const what = `${name(variant, c)}${l.parts ? ` parts ${l.parts}` : ''} rows ${rows}`;
        const got = await checkCase(c, what, 60);
        if (!one) one = got;
        else
          got.forEach((x, i) => {
            const at = x.findIndex((y, j) => !Object.is(y, one![i][j]));
            assert.is(at, -1, `${what}: ${['the output', 'dq', 'dk', 'dv'][i]} differs from one row per lane at ${at}`);
          });
      }
    }
  }
  gpu.tuning.attention.layout = { rows: 5 };
  const x = ops.zeros(gpu, [1, 1, 2, 4]);
  assert.throws(() => ops.attention(x, x, x), (e: Error) => e instanceof ValueError && /gpu.tuning.attention.layout.rows = 5 is not 1, 2, 3 or 4/.test(e.message));
  x.dispose();
});

// Extreme scores (issue 9 item 7): scores of +-1e4 that differ by O(1) between keys, rows of
// 2 keys (equal scores: P = 1/2 exactly) and of 300. The forward saves per query the largest
// score m and log l (l = sum_j exp(score_j - m)) apart: their sum rounded to f32 loses log l
// against m (the ulp of 1e4 is 2^-10), which put every P of a query off by up to 5e-4
// relative in the backward (P = 0.499894 for two equal scores of 1e4) and the gradients
// with it. Every score is exact in f32 here: q = [+-1e4, eighths], k = [1, eighths], scale 1
// (the products and their sums need at most 20 bits), so the only f32 error left is the
// softmax's own (~1e-5 relative over 300 keys) and the default tolerances apply: forward
// TOL, gradients GRAD (1e-4 relative plus 1e-5 of the largest). They hold with a margin of
// 7x or more; the rounded m + log l exceeded GRAD 2x (2 keys) to 34x (300 keys). (Scores
// that are not exact in f32 carry their own rounding, ~ulp(1e4), in any f32 implementation,
// PyTorch's included.) The float64 gradients are central differences of ref.attentionGqa
// with steps of 1e-7 * max(1, |x|): a step moves a score by at most 1e-3 (truncation error
// ~1e-7 relative), and the float64 rounding of scores near 1e4 (~2e-12) adds ~1e-5 at most.
t('extreme scores (+-1e4): forward and gradients against float64, rows of 2 and 300 keys (every kernel)', async () => {
  const gpu = await testGpu();
  // [B, H, Hkv, Lq, Lk, D, causal, spread]: batch 0 scores near +1e4, batch 1 near -1e4;
  // spread: the largest |eighth| in q's small components (0: every score of a row equal).
  const cases: [number, number, number, number, number, number, boolean, number][] = [
    [2, 2, 1, 3, 2, 8, false, 0],
    [2, 2, 1, 4, 300, 8, true, 0.5],
  ];
  for (const [B, H, Hkv, Lq, Lk, D, causal, spread] of cases) {
    const eighths = (n: number, seed: number, most: number) => randomValues(n, seed, -most, most).map((x) => Math.round(x * 8) / 8);
    const q = eighths(B * H * Lq * D, 31, spread).map((x, i) => (i % D === 0 ? (Math.floor(i / (H * Lq * D)) === 0 ? 1e4 : -1e4) : x));
    const k = eighths(B * Hkv * Lk * D, 32, 0.5).map((x, i) => (i % D === 0 ? 1 : x));
    const v = f32(randomValues(B * Hkv * Lk * D, 33));
    const R = f32(randomValues(B * H * Lq * D, 34));
    const opts = { causal, scale: 1 };
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
      const out = ref.attentionGqa(qq, kk, vv, B, H, Hkv, Lq, Lk, D, opts);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * R[i];
      return s;
    };
    const h = 1e-7;
    const want = [ref.numericGrad((x) => loss(x, k, v), q, h), ref.numericGrad((x) => loss(q, x, v), k, h), ref.numericGrad((x) => loss(q, k, x), v, h)];
    const expected = ref.attentionGqa(q, k, v, B, H, Hkv, Lq, Lk, D, opts);
    for (const variant of await variants()) {
      gpu.tuning.attention.variant = variant;
      const what = `${variant} attention B${B} H${H}/${Hkv} ${Lq}x${Lk}x${D}${causal ? ' causal' : ''} scores +-1e4`;
      const inputs = [ops.tensor(gpu, Float32Array.from(q), [B, H, Lq, D]), ops.tensor(gpu, Float32Array.from(k), [B, Hkv, Lk, D]), ops.tensor(gpu, Float32Array.from(v), [B, Hkv, Lk, D])];
      for (const x of inputs) x.requiresGrad = true;
      const o = ops.attention(inputs[0], inputs[1], inputs[2], opts);
      assertClose(await o.floats(), expected, TOL, what);
      backward(o, ops.tensor(gpu, Float32Array.from(R), o.shape));
      for (let i = 0; i < 3; i++) assertClose(await inputs[i].grad!.floats(), want[i], GRAD, `${what}: gradient of ${'qkv'[i]}`);
      for (const x of [...inputs, o]) x.dispose();
    }
  }
  gpu.tuning.attention.variant = 'auto';
});

const attentionGrads = ref.attentionGqaGrads;

/** x [B, n1, n2, D] as [B, n2, n1, D] (swaps the head and length axes). */
function swap12(x: ArrayLike<number>, B: number, n1: number, n2: number, D: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++) for (let i = 0; i < n1; i++) for (let j = 0; j < n2; j++)
    for (let c = 0; c < D; c++) y[((b * n2 + j) * n1 + i) * D + c] = x[((b * n1 + i) * n2 + j) * D + c];
  return y;
}

// One case on the current gpu.tuning: the forward against ref.attentionGqa, the gradients
// against attentionGrads, with the tolerances stated at the tests. With layout 'blhd' the
// same data go in as [B, L, H, D] and the output and gradients come back in that layout;
// returns the output and gradients in [B, H, L, D] order (for comparisons across layouts).
async function checkCase(c: Case, what: string, seed = 40, layout: ops.AttentionLayout = 'bhld', f16: false | 'nearest' | 'either' = false): Promise<Float64Array[]> {
  const gpu = await testGpu();
  const [B, H, Hkv, Lq, Lk, D, , causal] = c;
  const mask = maskOf(c);
  const q = f32(randomValues(B * H * Lq * D, seed, -2, 2)), k = f32(randomValues(B * Hkv * Lk * D, seed + 1, -2, 2));
  const v = f32(randomValues(B * Hkv * Lk * D, seed + 2)), g = f32(randomValues(B * H * Lq * D, seed + 3));
  const blhd = layout === 'blhd';
  // Into and out of the tested layout (n: heads, L: length of the tensor).
  const put = (x: Float64Array, n: number, L: number) => (blhd ? swap12(x, B, n, L, D) : x);
  const get = (x: ArrayLike<number>, n: number, L: number) => (blhd ? swap12(x, B, L, n, D) : Float64Array.from(x));
  const shape = (n: number, L: number) => (blhd ? [B, L, n, D] : [B, n, L, D]);
  const inputs = [ops.tensor(gpu, Float32Array.from(put(q, H, Lq)), shape(H, Lq)), ops.tensor(gpu, Float32Array.from(put(k, Hkv, Lk)), shape(Hkv, Lk)), ops.tensor(gpu, Float32Array.from(put(v, Hkv, Lk)), shape(Hkv, Lk))];
  for (const x of inputs) x.requiresGrad = true;
  const o = ops.attention(inputs[0], inputs[1], inputs[2], { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined, causal, layout });
  assert.equal(o.shape, shape(H, Lq), `${what}: output shape`);
  const got = get(await o.floats(), H, Lq);
  // The f16 variant computes attention over keys and values rounded to f16: its reference
  // rounds them to nearest, which is what the device does ('nearest', probed by the test:
  // then the f32 tolerance) or may not do ('either': F16_TOL).
  const [kr, vr] = f16 ? [k.map(roundF16), v.map(roundF16)] : [k, v];
  const tol = f16 === 'either' ? F16_TOL : TOL;
  assertClose(got, ref.attentionGqa(q, kr, vr, B, H, Hkv, Lq, Lk, D, { mask, causal }), tol, what);
  assert.ok(got.every(Number.isFinite), `${what}: finite`);
  backward(o, ops.tensor(gpu, Float32Array.from(put(g, H, Lq)), o.shape));
  const want = attentionGrads(q, kr, vr, g, B, H, Hkv, Lq, Lk, D, { mask, causal });
  const grads: Float64Array[] = [];
  for (let i = 0; i < 3; i++) {
    const [n, L] = i === 0 ? [H, Lq] : [Hkv, Lk];
    grads.push(get(await inputs[i].grad!.floats(), n, L));
    assertClose(grads[i], want[i], tol, `${what}: gradient of ${'qkv'[i]}`);
  }
  for (const x of [...inputs, o]) x.dispose();
  return [got, ...grads];
}

t('the analytic float64 gradients agree with finite differences', () => {
  const c: Case = [2, 4, 2, 5, 6, 3, 'pad', true];
  const [B, H, Hkv, Lq, Lk, D] = c;
  const mask = maskOf(c);
  const q = randomValues(B * H * Lq * D, 51), k = randomValues(B * Hkv * Lk * D, 52), v = randomValues(B * Hkv * Lk * D, 53), g = randomValues(B * H * Lq * D, 54);
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => ref.attentionGqa(qq, kk, vv, B, H, Hkv, Lq, Lk, D, { mask, causal: true }).reduce((s, x, i) => s + x * g[i], 0);
  const want = [ref.numericGrad((x) => loss(x, k, v), q, 1e-6), ref.numericGrad((x) => loss(q, x, v), k, 1e-6), ref.numericGrad((x) => loss(q, k, x), v, 1e-6)];
  const got = attentionGrads(q, k, v, g, B, H, Hkv, Lq, Lk, D, { mask, causal: true });
  for (let i = 0; i < 3; i++) assertClose(got[i], want[i], { rtol: 1e-7, atol: 1e-8 }, `analytic gradient of ${'qkv'[i]}`);
});

// The tiled kernel at the models' head widths: 32 (one invocation per query, 64 queries per
// workgroup), 90 (23 vec4s over 4 invocations of 6 slices, one of them padding) and 128 (4
// invocations of 8 slices, 16 queries per workgroup), with 16-row key tiles on this device:
// lengths 1, 17, 33, 49, 65 and 70 end inside a tile and a workgroup. Tolerances: the
// forward's TOL above; the gradients against the analytic float64 gradients with the same
// TOL (they sum at most 70 keys or 2 x 65 queries of products of O(1) terms: f32 roundoff
// ~1e-6 relative, 100x inside; a wrong tile edge, chunk or group sum is off by O(1)).
t('tiled: head widths 32, 90, 128, lengths across tile edges and 1, GQA, causal, mask (forward and backward)', async () => {
  const gpu = await testGpu();
  gpu.tuning.attention.variant = 'tiled';
  try {
    const cases: Case[] = [
      [2, 4, 2, 65, 33, 32, 'pad', true], // two query blocks, three key tiles; no key for query 0 of batch 0, batch 1 padded
      [1, 2, 1, 1, 1, 32, null, false], // size 1
      [1, 1, 1, 1, 17, 32, 'thirds', false], // one query
      [1, 2, 2, 65, 70, 32, null, false],
      [1, 4, 2, 17, 33, 90, 'thirds', true],
      [2, 2, 2, 33, 17, 90, 'pad', false],
      [1, 2, 1, 17, 49, 128, null, true], // causal, Lq < Lk
      [1, 2, 2, 49, 17, 128, 'thirds', true], // causal, Lq > Lk: the first 32 queries see nothing
      [1, 2, 1, 65, 70, 128, null, false],
      [1, 1, 1, 1, 1, 128, null, true],
    ];
    for (const c of cases) await checkCase(c, name('tiled', c));
  } finally {
    gpu.tuning.attention.variant = 'auto';
  }
});

// 'tiled-f16' (keys and values in f16 tiles, shader-f16; lavapipe has it, SwiftShader not): the
// tiled cases' shapes at head widths 32, 90 (padding) and 128, GQA, causal, mask, one query,
// against float64 over the rounded keys and values (F16_TOL above); and its output must differ
// from the f32 tiled kernel's (the rounding is applied), by no more than the same bound.
t('tiled-f16: forward and backward against float64 over f16-rounded keys and values', async () => {
  const gpu = await testGpu();
  if (!gpu.features.has('shader-f16')) {
    console.log('  skip: no shader-f16 on this adapter');
    return;
  }
  try {
    // The device's rounding, probed: with one key the output is that key's value, rounded.
    gpu.tuning.attention.variant = 'tiled-f16';
    const D = 32;
    const v = f32(randomValues(D, 77, -2, 2));
    const q = ops.tensor(gpu, new Float32Array(D).fill(0.5), [1, 1, 1, D]), k = ops.tensor(gpu, new Float32Array(D).fill(0.25), [1, 1, 1, D]);
    const probe = await ops.attention(q, k, ops.tensor(gpu, Float32Array.from(v), [1, 1, 1, D])).floats();
    const rounding = probe.every((x, i) => x === roundF16(v[i])) ? 'nearest' : 'either';
    if (rounding === 'either') console.log('  this device does not round f16 conversions to nearest: tolerance F16_TOL');
    const cases: [Case, ops.AttentionLayout][] = [
      [[2, 4, 2, 65, 33, 32, 'pad', true], 'bhld'],
      [[1, 2, 1, 1, 1, 32, null, false], 'bhld'], // one key: the gradient of k is exactly 0
      [[1, 1, 1, 1, 17, 32, 'thirds', false], 'blhd'],
      [[1, 4, 2, 17, 33, 90, 'thirds', true], 'bhld'],
      [[1, 2, 2, 49, 17, 128, 'thirds', true], 'blhd'],
    ];
    for (const [c, layout] of cases) {
      gpu.tuning.attention.variant = 'tiled-f16';
      const half = await checkCase(c, name('tiled-f16', c), 40, layout, rounding);
      gpu.tuning.attention.variant = 'tiled';
      const full = await checkCase(c, name('tiled', c), 40, layout);
      // The rounding is applied (the gradient of v depends on the keys' rounding where there
      // are two keys or more: with one, every probability is 1).
      for (const [i, what] of [[0, 'output'], ...(c[4] > 1 ? [[3, 'gradient of v']] as const : [])] as const) {
        const diff = Math.max(...half[i].map((x, j) => Math.abs(x - full[i][j])));
        assert.ok(diff > 1e-6, `${name('tiled-f16', c)}: ${what} equals the f32 kernel's (max diff ${diff}): no rounding`);
      }
    }
  } finally {
    gpu.tuning.attention.variant = 'auto';
  }
});

t('tiled-f16 is refused, naming the feature, on a device without shader-f16', async () => {
  const gpu = await testGpu();
  const had = gpu.features.has('shader-f16');
  (gpu.features as Set<string>).delete('shader-f16');
  gpu.tuning.attention.variant = 'tiled-f16';
  try {
    const x = ops.tensor(gpu, new Float32Array(8), [1, 1, 2, 4]);
    assert.throws(() => ops.attention(x, x, x), /the tiled-f16 kernel needs the shader-f16 feature, which this device lacks/);
  } finally {
    if (had) (gpu.features as Set<string>).add('shader-f16');
    gpu.tuning.attention.variant = 'auto';
  }
});

// Layouts the automatic choice takes only for wide heads or small workgroup memory, forced
// at D = 36 (9 vec4s, 2 invocations per query of 5 slices): the head in 5 chunks of one
// slice each, 2 chunks of 3 (one slice of padding) with 4-row tiles and 4 queries per
// workgroup (8 invocations), 256 invocations with 8-row tiles, and the loops over a tile
// with a constant trip count (what GPUs run; lavapipe gets run-time counts). Same
// tolerances as above.
t('tiled: forced layouts (head chunks, tile and workgroup sizes, constant loops), forward and backward', async () => {
  const gpu = await testGpu();
  gpu.tuning.attention.variant = 'tiled';
  const layouts: NonNullable<typeof gpu.tuning.attention.tile>[] = [
    { chunks: 5 }, { chunks: 2, keys: 4, rows: 4 }, { rows: 128, keys: 8 }, { keys: 2, dynamicLoops: false },
  ];
  try {
    for (const l of layouts) {
      gpu.tuning.attention.tile = l;
      for (const c of [[2, 4, 2, 19, 19, 36, 'pad', true], [1, 2, 1, 7, 11, 36, 'thirds', false]] as Case[]) await checkCase(c, `${JSON.stringify(l)} ${name('tiled', c)}`);
    }
  } finally {
    gpu.tuning.attention.tile = null;
    gpu.tuning.attention.variant = 'auto';
  }
});

// Layout 'blhd' (q [B, Lq, H, D], k, v [B, Lk, Hkv, D], read and written in place) on every
// variant: grouped-query with causal and mask over lengths that end inside a workgroup and a
// key tile (33 queries, 70 keys), size 1, and a padded head (D = 6) with GQA 6/1. Forward and
// gradients against float64 with the tolerances of checkCase's callers above (TOL); then,
// since only the addresses change and not the order of any sum, bit for bit the default
// layout's results on the same data (a stride or head offset error is off by O(1)).
t('layout blhd: forward and gradients against float64 and bit-identical to bhld (every kernel)', async () => {
  const gpu = await testGpu();
  const cases: Case[] = [
    [2, 4, 2, 33, 70, 8, 'pad', true],
    [1, 1, 1, 1, 1, 4, null, false],
    [1, 6, 1, 5, 9, 6, 'thirds', false],
  ];
  try {
    for (const variant of await variants()) {
      gpu.tuning.attention.variant = variant;
      for (const c of cases) {
        const what = `${name(variant, c)} blhd`;
        const got = await checkCase(c, what, 60, 'blhd');
        const base = await checkCase(c, name(variant, c), 60);
        for (let i = 0; i < 4; i++) assert.ok(got[i].every((x, j) => x === base[i][j]), `${what}: ${['output', 'dq', 'dk', 'dv'][i]} bit-identical to bhld`);
      }
    }
  } finally {
    gpu.tuning.attention.variant = 'auto';
  }
  const x = ops.zeros(gpu, [1, 3, 2, 4]);
  assert.throws(() => ops.attention(x, ops.zeros(gpu, [1, 3, 4, 4]), x, { layout: 'blhd' }), (e: Error) => e instanceof ShapeError && /k and v must be \[1, Lk, Hkv, 4\]/.test(e.message));
  assert.throws(() => ops.attention(ops.zeros(gpu, [1, 3, 3, 4]), x, x, { layout: 'blhd' }), (e: Error) => e instanceof ShapeError && /3 query heads are not a multiple of 2/.test(e.message));
  assert.throws(() => ops.attention(x, x, x, { layout: 'lbhd' as ops.AttentionLayout }), (e: Error) => e instanceof ValueError && /layout must be 'bhld' or 'blhd'/.test(e.message));
});

t('variant choice: auto keeps the CPU drivers\' choice and takes tiled on GPUs; bad tunings name the field', async () => {
  const gpu = await testGpu();
  assert.is(autoAttentionVariant(true, 8), 'subgroup');
  assert.is(autoAttentionVariant(true, 4), 'subgroup');
  assert.is(autoAttentionVariant(true, 0), 'plain');
  assert.is(autoAttentionVariant(false, 32), 'tiled');
  assert.is(autoAttentionVariant(false, 0), 'tiled');
  assert.is(attentionVariantFor(gpu), autoAttentionVariant(gpu.isLavapipe, gpu.subgroupMinSize));
  assert.ok(attentionVariants(gpu).includes('tiled') && attentionVariants(gpu).includes('plain'));
  const x = ops.zeros(gpu, [1, 1, 2, 36]);
  const bad = (tune: () => void, re: RegExp) => {
    try {
      tune();
      assert.throws(() => ops.attention(x, x, x), (e: Error) => e instanceof ValueError && re.test(e.message));
    } finally {
      gpu.tuning.attention.variant = 'auto';
      gpu.tuning.attention.tile = null;
    }
  };
  bad(() => (gpu.tuning.attention.variant = 'fast' as AttentionVariant), /gpu.tuning.attention.variant = 'fast' is not auto, subgroup, plain, tiled or tiled-f16/);
  bad(() => ((gpu.tuning.attention.variant = 'tiled'), (gpu.tuning.attention.tile = { keys: 0 })), /gpu.tuning.attention.tile.keys = 0 is not a positive integer/);
  bad(() => ((gpu.tuning.attention.variant = 'tiled'), (gpu.tuning.attention.tile = { rows: 4096 })), /tile.rows = 4096 needs 8192 invocations per workgroup/);
  bad(() => ((gpu.tuning.attention.variant = 'tiled'), (gpu.tuning.attention.tile = { keys: 4096 })), /needs \d+ bytes of workgroup memory; this device allows \d+/);
});

t('rope: forward against float64 on 1 and 3 axes; backward by finite differences', async () => {
  const gpu = await testGpu();
  const [B, L, H, D] = [2, 6, 3, 12];
  const positions3 = Array.from({ length: L }, (_, l) => [l % 2, Math.floor(l / 2) % 3, l]);
  for (const positions of [Array.from({ length: L }, (_, l) => [l]), positions3]) {
    const tables = ops.ropeTables(gpu, positions, D, 100);
    const axes = positions[0].length;
    const split = Array.from({ length: axes }, (_, a) => 2 * (Math.floor(D / 2 / axes) + (a < (D / 2) % axes ? 1 : 0)));
    const angle = (l: number, i: number) => {
      let a = 0, start = 0;
      while (i >= start + split[a] / 2) start += split[a++] / 2;
      return positions[l][a] * 100 ** ((-2 * (i - start)) / split[a]);
    };
    const x = randomValues(B * L * H * D, 7);
    const y = await ops.rope(ops.tensor(gpu, Float32Array.from(x), [B, L, H, D]), tables).floats();
    assertClose(y, ref.rope(f32(x), B, L, H, D, angle), { rtol: 1e-5, atol: 1e-6 }, `rope ${axes} axes`);
    await checkGradients({
      what: `rope ${axes} axes`, gpu, inputs: [{ data: x, shape: [B, L, H, D] }],
      op: (a) => ops.rope(a, tables), reference: (a) => ref.rope(a, B, L, H, D, angle),
    });
  }
  assert.throws(() => ops.ropeTables(gpu, [[1]], 5), /head dimension 5 must be even/);
  const tables = ops.ropeTables(gpu, [[0], [1]], 4);
  assert.throws(() => ops.rope(ops.zeros(gpu, [1, 3, 1, 4]), tables), /does not match tables for 2 tokens/);
});

t('bad shapes name the op', async () => {
  const gpu = await testGpu();
  const q4 = ops.zeros(gpu, [1, 2, 3, 4]);
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof ShapeError && re.test(e.message));
  bad(() => ops.attention(q4, ops.zeros(gpu, [1, 2, 3, 8]), ops.zeros(gpu, [1, 2, 3, 8])), /^attention: q \[1x2x3x4\], k \[1x2x3x8\].*k and v must be \[1, Hkv, Lk, 4\]/);
  bad(() => ops.attention(q4, ops.zeros(gpu, [1, 2, 3, 4]), ops.zeros(gpu, [1, 2, 5, 4])), /k and v must be/);
  bad(() => ops.attention(ops.zeros(gpu, [1, 6, 3, 4]), ops.zeros(gpu, [1, 4, 3, 4]), ops.zeros(gpu, [1, 4, 3, 4])), /attention: q \[1x6x3x4\].*6 query heads are not a multiple of 4 key\/value heads/);
  bad(() => ops.attention(q4, q4, q4, { mask: ops.zeros(gpu, [1, 2]) }), /mask \[1x2\] must be \[1, 3\]/);
  bad(() => ops.attention(ops.zeros(gpu, [1, 1, 3]), q4, q4), /expected \[batch, heads, length, headDim\]/);
  const wide = ops.zeros(gpu, [1, 1, 1, 1028]);
  bad(() => ops.attention(wide, wide, wide), /head dimension 1028 is above the supported 1024/);
  assert.throws(() => ops.attention(q4, q4, q4, { scale: NaN }), (e: Error) => e instanceof ValueError && /scale must be a finite number/.test(e.message));
});

t.run();
