// Bind groups cached by (layout, buffers). A training step binds the same pooled buffers in
// the same order every step, and creating a bind group is the largest host cost of a
// dispatch on dawn.node: 1,700 dispatches took 20 ms of createBindGroup per encode against
// 0.1 ms with the groups reused (lavapipe, 2-core VM, 2026-12-02).
//
// A group is found by the identities of its buffers, and neither the pool nor the uniform
// cache hands out a buffer again once it has destroyed it, so a group holding a destroyed
// buffer is never reused (it waits for its turn to be dropped). The pool's trim clears the
// cache anyway, so that the groups' handles go with the memory they point to.
import type { BufferRange } from './kernel.ts';

export class BindGroupCache {
  private ids = new WeakMap<object, number>();
  private nextId = 1;
  private groups = new Map<string, GPUBindGroup>();
  /** Groups kept at most; the oldest go first (a step's working set is ~1,700). */
  static readonly MAX = 16384;
  hits = 0;
  misses = 0;

  constructor(private readonly device: GPUDevice) {}

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.nextId++));
    return id;
  }

  /**
   * The bind group of `layout` with `buffers[i]` at binding `bindings[i]` (a whole buffer or a range).
   * @param label names the first dispatch that made it, for validation messages.
   */
  get(layout: GPUBindGroupLayout, bindings: readonly number[], buffers: readonly (GPUBuffer | BufferRange)[], label: string): GPUBindGroup {
    let key = String(this.id(layout));
    for (const b of buffers) key += 'buffer' in b ? `,${this.id(b.buffer)}@${b.offset}+${b.size}` : ',' + this.id(b);
    let group = this.groups.get(key);
    if (group) {
      this.hits++;
      return group;
    }
    this.misses++;
    group = this.device.createBindGroup({
      layout,
      entries: buffers.map((b, i) => ({ binding: bindings[i], resource: 'buffer' in b ? { buffer: b.buffer, offset: b.offset, size: b.size } : { buffer: b } })),
      label,
    });
    this.groups.set(key, group);
    if (this.groups.size > BindGroupCache.MAX) this.groups.delete(this.groups.keys().next().value as string);
    return group;
  }

  /** Forgets every group (the pool calls it when it trims). */
  clear(): void {
    this.groups.clear();
  }

  get size(): number {
    return this.groups.size;
  }
}
