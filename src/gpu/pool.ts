// The buffer pool: storage buffers in size buckets, handed out and taken back without
// createBuffer/destroy on the hot path (a training step allocates the same sizes each time).
import { GpuError } from '../errors.ts';

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  liveBytes: number;
  /** Bytes in released buffers kept for reuse. */
  pooledBytes: number;
  /** createBuffer calls made by the pool so far. */
  allocations: number;
  /** Buffers handed out so far (allocations + reuses). */
  acquisitions: number;
  peakLiveBytes: number;
}

// UNIFORM too: a kernel may read a range of a tensor through a uniform binding (kernel.ts uniform()).
export const TENSOR_USAGE = 0x80 /* STORAGE */ | 0x40 /* UNIFORM */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/** Rounds a byte size up to its pool bucket: 4 buckets per power of two (at most 25% waste). */
export function bucketSize(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 256) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  /** Refuse allocations that would take live GPU memory above this many bytes. */
  memoryLimit: number;
  /** Free buffers per bucket with their creation serials, both in descending serial order. */
  private free = new Map<number, { bufs: GPUBuffer[]; serials: number[] }>();
  private sizes = new WeakMap<GPUBuffer, number>();
  /** Creation order: a bucket hands out its oldest free buffer first (see release()). */
  private serial = new WeakMap<GPUBuffer, number>();
  private nextSerial = 0;
  private pooled = new WeakSet<GPUBuffer>();
  private stats: PoolStats = { liveBytes: 0, pooledBytes: 0, allocations: 0, acquisitions: 0, peakLiveBytes: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBinding: number,
    memoryLimit: number,
    /** Called before the pool destroys free buffers (the open batch may still use them). */
    private readonly beforeTrim: () => void,
  ) {
    this.memoryLimit = memoryLimit;
  }

  acquire(bytes: number, what: string): GPUBuffer {
    const size = bucketSize(bytes);
    if (size > this.maxBinding)
      throw new GpuError(`${what}: ${fmtBytes(bytes)} is more than this device can bind to a kernel (maxStorageBufferBindingSize ${fmtBytes(this.maxBinding)})`);
    this.stats.acquisitions++;
    const list = this.free.get(size);
    let buf = list?.bufs.pop();
    if (buf) {
      list!.serials.pop();
      this.pooled.delete(buf);
      this.stats.pooledBytes -= size;
    } else {
      if (this.stats.liveBytes + this.stats.pooledBytes + size > this.memoryLimit) this.trim();
      if (this.stats.liveBytes + size > this.memoryLimit)
        throw new GpuError(
          `out of GPU memory: ${what} needs ${fmtBytes(bytes)} but ${fmtBytes(this.stats.liveBytes)} of the ${fmtBytes(this.memoryLimit)} limit are live (gpu.memoryLimit)`,
        );
      buf = this.device.createBuffer({ size, usage: TENSOR_USAGE, label: what });
      this.sizes.set(buf, size);
      this.serial.set(buf, this.nextSerial++);
      this.stats.allocations++;
    }
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    return buf;
  }

  /** Takes a buffer back; `keep` false (device gone) only updates the accounting. */
  release(buf: GPUBuffer, keep: boolean): void {
    const size = this.sizes.get(buf);
    if (size === undefined) throw new GpuError('release: buffer does not belong to this pool');
    // Released twice, the buffer would be handed to two owners at once.
    if (this.pooled.has(buf)) throw new GpuError(`release: buffer '${buf.label}' was already released`);
    this.stats.liveBytes -= size;
    if (!keep) return;
    this.stats.pooledBytes += size;
    this.pooled.add(buf);
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = { bufs: [], serials: [] }));
    // Kept in descending creation order, so acquire() pops the oldest. Last-in-first-out
    // would hand out a permutation of last step's buffers each step (the releases come in
    // another order than the acquisitions); oldest-first gives a repeated step the same
    // buffers at the same places, so its cached bind groups are found again (bindgroups.ts).
    // The place is found by bisection over the serials: a scope closing over a thousand
    // buffers of one bucket made a linear walk quadratic (18 us a release at 4000).
    const id = this.serial.get(buf)!;
    const ids = list.serials;
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ids[mid] > id) lo = mid + 1;
      else hi = mid;
    }
    list.bufs.splice(lo, 0, buf);
    ids.splice(lo, 0, id);
  }

  /** Destroys every free buffer. */
  trim(): void {
    this.beforeTrim();
    this.destroyFree();
  }

  destroyFree(): void {
    for (const list of this.free.values()) for (const b of list.bufs) b.destroy();
    this.free.clear();
    this.stats.pooledBytes = 0;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}
