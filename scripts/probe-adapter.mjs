// Prints one line describing the WebGPU adapter dawn.node finds, or fails.
// Run in its own process by setup.mjs, because a broken driver can abort the process.
import { create } from 'webgpu';

const gpu = create([]); // held for the life of the process (dawn.node gotcha)
const timer = setTimeout(() => {
  console.log('no adapter: requestAdapter() did not answer in 60 s');
  process.exit(2);
}, 60_000);
const adapter = await gpu.requestAdapter();
clearTimeout(timer);
if (!adapter) {
  console.log('no adapter: requestAdapter() returned null (no Vulkan driver that Dawn accepts)');
  process.exit(1);
}
const i = adapter.info;
console.log(`adapter: ${i.vendor || '?'} ${i.architecture || ''} ${i.description || i.device || ''}`.replace(/\s+/g, ' ').trim());
globalThis.__keep = gpu;
process.exit(0);
