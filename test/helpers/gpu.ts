// One GPU device shared by every test file in the test process (test/run.mjs destroys it).
import { Gpu } from '../../src/gpu/runtime.ts';

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
