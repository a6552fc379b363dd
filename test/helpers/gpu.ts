// One GPU device shared by every test file in the test process (test/run.mjs destroys it).
import { Gpu } from '../../src/gpu/runtime.ts';
import { defaultTuning } from '../../src/gpu/tuning.ts';

let shared: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  if (!shared) {
    shared = Gpu.create();
    (globalThis as { __ctvlmTestTeardown?: () => Promise<void> }).__ctvlmTestTeardown = async () => {
      (await shared!).destroy();
    };
  }
  return shared;
}

/**
 * Restores the shared device's kernel choices (gpu.tuning) to their defaults. Test files that
 * force variants register it with `t.after.each(resetTuning)`: uvu runs after.each hooks after
 * a failed test too, so a failing test cannot leave a variant forced for later files.
 */
export async function resetTuning(): Promise<void> {
  const gpu = await testGpu();
  Object.assign(gpu.tuning, defaultTuning());
}
