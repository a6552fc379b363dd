// Immutable uniform buffers cached by content: a training step launches the same shapes
// each time, so after the first step no parameter data is uploaded at all.
export class UniformCache {
  private cache = new Map<string, GPUBuffer>();
  private evicted: GPUBuffer[] = [];
  static readonly MAX = 8192;

  constructor(private readonly device: GPUDevice) {}

  /** The uniform buffer holding `words` (created once per distinct content). */
  get(words: Uint32Array): GPUBuffer {
    const key = words.join(',');
    let buf = this.cache.get(key);
    if (buf) {
      // Refresh its place in the LRU order.
      this.cache.delete(key);
      this.cache.set(key, buf);
      return buf;
    }
    const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
    buf = this.device.createBuffer({ size, usage: 0x40 /* UNIFORM */, mappedAtCreation: true, label: 'params' });
    new Uint32Array(buf.getMappedRange()).set(words);
    buf.unmap();
    this.cache.set(key, buf);
    if (this.cache.size > UniformCache.MAX) {
      const [oldKey, old] = this.cache.entries().next().value as [string, GPUBuffer];
      this.cache.delete(oldKey);
      this.evicted.push(old); // may still be used by the open batch: destroyed after submit
    }
    return buf;
  }

  /** Destroys evicted buffers once the batch that used them is submitted. */
  afterSubmit(): void {
    for (const b of this.evicted) b.destroy();
    this.evicted = [];
  }

  destroy(): void {
    for (const b of this.cache.values()) b.destroy();
    this.cache.clear();
    this.afterSubmit();
  }
}
