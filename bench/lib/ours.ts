// Runners for our runtime: timestamp queries through gpu.startProfile()/endProfile(),
// wall time through gpu.sync().
import type { Gpu } from '../../src/gpu/runtime.ts';
import type { Tensor } from '../../src/tensor.ts';
import type { Runner } from './measure.ts';

/** Per-call GPU ms of `iters` calls of `call`, summing the dispatches of each call. */
export async function profileCalls(gpu: Gpu, call: () => void, iters: number): Promise<number[]> {
  await gpu.sync();
  // Two timestamps per dispatch; room for 32 dispatches per call before the runtime would
  // silently stop timing (checked below).
  const capacity = Math.min(4096, Math.max(256, 2 * 32 * iters));
  gpu.startProfile(capacity);
  for (let i = 0; i < iters; i++) call();
  const recs = await gpu.endProfile();
  if (!recs.length) throw new Error('the profile recorded no dispatch (is the op a copy, not a kernel?)');
  if (recs.length % iters !== 0 || 2 * recs.length >= capacity)
    throw new Error(`profile: ${recs.length} dispatch records for ${iters} calls (not a whole number per call, or query set full)`);
  const k = recs.length / iters;
  const out: number[] = [];
  for (let i = 0; i < iters; i++) {
    let ms = 0;
    for (let j = 0; j < k; j++) {
      const rec = recs[i * k + j];
      if (rec.kernel !== recs[j].kernel) throw new Error(`profile: call ${i} ran ${rec.kernel} where call 0 ran ${recs[j].kernel}`);
      ms += rec.ms;
    }
    out.push(ms);
  }
  return out;
}

/** A runner for an op that returns a fresh tensor (disposed after each call). */
export function opRunner(gpu: Gpu, op: () => Tensor): Runner {
  const call = () => op().dispose();
  return {
    run: call,
    sync: () => gpu.sync(),
    timestamps: gpu.canProfile ? (iters) => profileCalls(gpu, call, iters) : undefined,
  };
}

/** The dispatches (kernel names) one call makes, for the table's notes. */
export async function kernelsOf(gpu: Gpu, op: () => Tensor): Promise<string[]> {
  if (!gpu.canProfile) return [];
  await gpu.sync();
  gpu.startProfile(64);
  op().dispose();
  const recs = await gpu.endProfile();
  return recs.map((r) => r.kernel);
}

/** A runner for a call that returns several tensors (a backward rule's gradients). */
export function tensorsRunner(gpu: Gpu, call: () => (Tensor | null)[]): Runner {
  const run = () => {
    for (const t of call()) t?.dispose();
  };
  return { run, sync: () => gpu.sync(), timestamps: gpu.canProfile ? (iters) => profileCalls(gpu, run, iters) : undefined };
}
