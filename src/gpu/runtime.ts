// The device runtime: one `Gpu` per WebGPU device. It owns
//   - a buffer pool (size buckets, reuse, stats),
//   - a pipeline cache (kernels are expanded, compiled and laid out once),
//   - a command batcher (many dispatches per submit, one open compute pass),
//   - immutable uniform buffers cached by content (a training step reuses the same shapes,
//     so after the first step no uniform data is uploaded at all),
//   - readback, a timestamp-query profiler, and error reporting that turns validation,
//     out-of-memory and WGSL compile errors into exceptions naming the kernel and shapes.
import { GpuError } from '../errors.ts';
import { acquireDevice, releaseKeepAlive, type DeviceOptions, type OptionalFeature } from './device.ts';
import { expandWgsl } from './wgsl.ts';
import { quietly } from './polling.ts';

export type BindingKind = 'uniform' | 'read' | 'write';

export interface KernelSpec {
  /** File name for messages, e.g. 'matmul.wgsl'. */
  file: string;
  /** WGSL source (kernels/*.wgsl imported as text). */
  source: string;
  entry: string;
  /** Preprocessor flags (//#if NAME). */
  flags?: Record<string, boolean>;
  /** Template constants (//#unroll I NAME, {NAME}). */
  consts?: Record<string, number>;
  /** Pipeline-overridable constants (WGSL `override`). */
  overrides?: Record<string, number>;
  /** bindings[i] is the kind of @binding(i) of group 0 for this entry point; null where the
   * entry point does not use that binding number (kernel files share numbers across entries). */
  bindings: (BindingKind | null)[];
}

export interface Kernel {
  readonly spec: KernelSpec;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly name: string;
}

export interface DispatchArgs {
  /** Data for the entry point's 'uniform' binding. */
  uniforms?: ArrayBuffer | ArrayBufferView;
  /** Storage buffers for the entry point's 'read'/'write' bindings, in binding order. */
  buffers: GPUBuffer[];
  workgroups: [number, number?, number?];
  /** Names the op and its shapes in error messages and profiles, e.g. 'matmul [64x32]@[32x16]'. */
  label: string;
}

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

export interface ProfileRecord {
  label: string;
  kernel: string;
  ms: number;
}

const TENSOR_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/** Rounds a byte size up to its pool bucket: 4 buckets per power of two (at most 25% waste). */
export function bucketSize(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 256) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

export class Gpu {
  readonly device: GPUDevice;
  readonly features: Set<OptionalFeature>;
  readonly adapterInfo: { vendor: string; architecture: string; description: string; device: string };
  /** Subgroup size range (0 when the subgroups feature is off). */
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly limits: GPUSupportedLimits;
  /** Refuse allocations that would take live GPU memory above this many bytes. */
  memoryLimit: number;

  private keepAlive: unknown;
  private destroyed = false;
  private lostReason: string | null = null;

  // Buffer pool.
  private free = new Map<number, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  private pooled = new WeakSet<GPUBuffer>();
  private stats: PoolStats = { liveBytes: 0, pooledBytes: 0, allocations: 0, acquisitions: 0, peakLiveBytes: 0 };

  // Pipelines and uniforms.
  private kernels = new Map<string, Kernel>();
  private uniformCache = new Map<string, GPUBuffer>();
  private uniformEvicted: GPUBuffer[] = [];
  private static readonly UNIFORM_CACHE_MAX = 8192;

  // Command batching.
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batchId = 1;
  private batchLabels: string[] = [];
  private lastUse = new WeakMap<GPUBuffer, number>();
  /** Dispatches per submit before an automatic flush. */
  maxDispatchesPerSubmit = 2048;
  private dispatchCount = 0;
  private submits = 0;

  // Errors found asynchronously (error scopes, compile info, uncaptured), thrown at sync().
  private pendingChecks: Promise<void>[] = [];
  private errors: string[] = [];

  // Profiling.
  private profiling: { querySet: GPUQuerySet; capacity: number; used: number; labels: [string, string][]; results: Promise<ProfileRecord[]>[] } | null =
    null;

  private constructor(acq: Awaited<ReturnType<typeof acquireDevice>>) {
    this.device = acq.device;
    this.features = acq.features;
    this.adapterInfo = acq.adapterInfo;
    this.keepAlive = acq.keepAlive;
    this.limits = acq.device.limits;
    const sg = acq.features.has('subgroups');
    this.subgroupMinSize = sg ? acq.subgroupMinSize : 0;
    this.subgroupMaxSize = sg ? acq.subgroupMaxSize : 0;
    this.memoryLimit = Math.min(this.limits.maxBufferSize * 4, 16 * 2 ** 30);
    this.device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason}: ${info.message}`;
    });
    this.device.addEventListener('uncapturederror', (ev) => {
      this.errors.push((ev as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Creates the runtime on the best available adapter (dawn.node in Node, navigator.gpu in browsers). */
  static async create(opts: DeviceOptions = {}): Promise<Gpu> {
    return new Gpu(await acquireDevice(opts));
  }

  /** One line: adapter, driver and the optional features in use. */
  describe(): string {
    const i = this.adapterInfo;
    const name = [i.vendor, i.architecture, i.description || i.device].filter(Boolean).join(' ');
    const feats = [...this.features].join(', ') || 'none';
    const sg = this.subgroupMinSize
      ? `; subgroup size ${this.subgroupMinSize === this.subgroupMaxSize ? this.subgroupMinSize : `${this.subgroupMinSize}-${this.subgroupMaxSize}`}`
      : '';
    return `${name} [features: ${feats}${sg}]`;
  }

  get isLavapipe(): boolean {
    return /llvmpipe|lavapipe|swiftshader/i.test(this.adapterInfo.description + this.adapterInfo.device + this.adapterInfo.architecture);
  }

  private check(): void {
    if (this.destroyed) throw new GpuError('the GPU device was destroyed; create a new one with createDevice()');
    if (this.lostReason) throw new GpuError(`the GPU device was lost (${this.lostReason})`);
  }

  // ---------------------------------------------------------------- buffer pool

  /** A storage buffer of at least `bytes` bytes, reused from the pool when one is free. */
  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    this.check();
    const size = bucketSize(bytes);
    if (size > this.limits.maxStorageBufferBindingSize)
      throw new GpuError(
        `${what}: ${fmtBytes(bytes)} is more than this device can bind to a kernel (maxStorageBufferBindingSize ${fmtBytes(this.limits.maxStorageBufferBindingSize)})`,
      );
    this.stats.acquisitions++;
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
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
      this.stats.allocations++;
    }
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    return buf;
  }

  /** Returns a buffer to the pool. Later kernels may reuse it at once: queue order keeps
   * the reads already encoded ahead of any new writes. */
  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) throw new GpuError('release: buffer does not belong to this pool');
    // Released twice, the buffer would be handed to two owners at once.
    if (this.pooled.has(buf)) throw new GpuError(`release: buffer '${buf.label}' was already released`);
    this.stats.liveBytes -= size;
    if (this.destroyed) return;
    this.stats.pooledBytes += size;
    this.pooled.add(buf);
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
  }

  /** Destroys every pooled (free) buffer. */
  trim(): void {
    if (this.encoder) this.flush();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBytes = 0;
  }

  poolStats(): PoolStats {
    return { ...this.stats };
  }

  private placeholderBuffer: GPUBuffer | null = null;
  /** A small storage buffer to bind where a kernel variant ignores a binding (no bias, no mask). */
  get placeholder(): GPUBuffer {
    this.check();
    return (this.placeholderBuffer ??= this.device.createBuffer({ size: 16, usage: TENSOR_USAGE, label: 'unused binding' }));
  }

  /** Copies host data into a buffer. */
  upload(buf: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
    this.check();
    // queue.writeBuffer runs before commands still waiting in the open batch: if one of
    // them reads or writes this buffer, submit them first.
    if (this.encoder && this.lastUse.get(buf) === this.batchId) this.flush();
    this.device.queue.writeBuffer(buf, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
  }

  // ---------------------------------------------------------------- kernels

  /** Compiles (once) and returns the pipeline for a kernel spec. */
  kernel(spec: KernelSpec): Kernel {
    const key = `${spec.file}|${spec.entry}|${JSON.stringify(spec.flags ?? {})}|${JSON.stringify(spec.consts ?? {})}|${JSON.stringify(spec.overrides ?? {})}`;
    let k = this.kernels.get(key);
    if (k) return k;
    this.check();
    const expanded = expandWgsl(spec.source, spec.flags, spec.consts, spec.file);
    const name = `${spec.file}:${spec.entry}`;
    this.device.pushErrorScope('validation');
    try {
      k = { spec, name, ...this.createPipeline(spec, expanded, name, key) };
    } finally {
      this.pendingChecks.push(
        this.device.popErrorScope().then((e) => {
          // A compile error is already reported with its source line (createPipeline).
          if (e && !/parsing WGSL|ShaderModule/.test(e.message)) this.errors.push(`${name}: ${e.message.trim()}`);
        }),
      );
    }
    this.kernels.set(key, k);
    return k;
  }

  private createPipeline(spec: KernelSpec, expanded: ReturnType<typeof expandWgsl>, name: string, key: string): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    const module = this.device.createShaderModule({ code: expanded.code, label: name });
    // Compile errors come back asynchronously: report them as kernels/<file>:<line>, and
    // forget the pipeline, so that a later compile() tries again and reports again.
    this.pendingChecks.push(
      module.getCompilationInfo().then((info) => {
        for (const m of info.messages) {
          if (m.type !== 'error') continue;
          const line = expanded.lineMap[m.lineNum - 1] ?? m.lineNum;
          this.errors.push(`WGSL compile error in kernels/${spec.file}:${line}:${m.linePos}: ${m.message}`);
          this.kernels.delete(key);
        }
      }),
    );
    const layout = this.device.createBindGroupLayout({
      label: name,
      entries: spec.bindings.flatMap((kind, binding) =>
        kind
          ? [{ binding, visibility: 4 /* COMPUTE */, buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' } } as GPUBindGroupLayoutEntry]
          : [],
      ),
    });
    const pipeline = this.device.createComputePipeline({
      label: name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout], label: name }),
      compute: { module, entryPoint: spec.entry, constants: spec.overrides },
    });
    return { pipeline, layout };
  }

  /** Checks a kernel compiles; throws with kernels/<file>:<line> if not. */
  async compile(spec: KernelSpec): Promise<Kernel> {
    this.device.pushErrorScope('validation');
    let k: Kernel;
    try {
      k = this.kernel(spec);
    } finally {
      const err = await quietly(this.device.popErrorScope());
      if (err) this.errors.push(`${spec.file}:${spec.entry}: ${err.message}`);
    }
    await this.settle();
    return k;
  }

  private uniformBuffer(data: ArrayBuffer | ArrayBufferView): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const words = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + Math.ceil(bytes.byteLength / 4) * 4));
    const key = words.join(',');
    let buf = this.uniformCache.get(key);
    if (buf) {
      // Refresh its place in the LRU order.
      this.uniformCache.delete(key);
      this.uniformCache.set(key, buf);
      return buf;
    }
    const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
    buf = this.device.createBuffer({ size, usage: 0x40 /* UNIFORM */, mappedAtCreation: true, label: 'uniforms' });
    new Uint32Array(buf.getMappedRange()).set(words);
    buf.unmap();
    this.uniformCache.set(key, buf);
    if (this.uniformCache.size > Gpu.UNIFORM_CACHE_MAX) {
      const [oldKey, old] = this.uniformCache.entries().next().value as [string, GPUBuffer];
      this.uniformCache.delete(oldKey);
      this.uniformEvicted.push(old); // may still be used by the open batch: destroyed after submit
    }
    return buf;
  }

  // ---------------------------------------------------------------- batching

  private openPass(): GPUComputePassEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder();
    }
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private openEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  /** Records a dispatch into the open batch. */
  dispatch(kernel: Kernel, args: DispatchArgs): void {
    this.check();
    // A full query set is resolved by a flush, which makes room for more.
    if (this.profiling && this.profiling.used + 2 > this.profiling.capacity) this.flush();
    const [x, y = 1, z = 1] = args.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new GpuError(`${args.label}: ${x}x${y}x${z} workgroups exceed the device limit of ${maxWg} per dimension (${kernel.name})`);
    const entries: GPUBindGroupEntry[] = [];
    const slots = kernel.spec.bindings;
    const storageSlots = slots.filter((k) => k === 'read' || k === 'write').length;
    if (args.buffers.length !== storageSlots)
      throw new GpuError(`${args.label}: ${kernel.name} takes ${storageSlots} buffers, got ${args.buffers.length}`);
    let next = 0;
    for (let binding = 0; binding < slots.length; binding++) {
      const kind = slots[binding];
      if (!kind) continue;
      if (kind === 'uniform') {
        if (!args.uniforms) throw new GpuError(`${args.label}: ${kernel.name} needs uniforms`);
        entries.push({ binding, resource: { buffer: this.uniformBuffer(args.uniforms) } });
      } else {
        const buf = args.buffers[next++];
        entries.push({ binding, resource: { buffer: buf } });
        this.lastUse.set(buf, this.batchId);
      }
    }
    const prof = this.profiling;
    let pass: GPUComputePassEncoder;
    if (prof) {
      // Profiling: one pass per dispatch so each gets its own begin/end timestamps.
      const enc = this.openEncoder();
      pass = enc.beginComputePass({
        timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: prof.used, endOfPassWriteIndex: prof.used + 1 },
      });
      prof.used += 2;
      prof.labels.push([args.label, kernel.name]);
    } else pass = this.openPass();
    const group = this.device.createBindGroup({ layout: kernel.layout, entries, label: args.label });
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (prof && pass !== this.pass) pass.end();
    this.batchLabels.push(args.label);
    if (++this.dispatchCount >= this.maxDispatchesPerSubmit) this.flush();
  }

  /** Records a buffer-to-buffer copy into the open batch. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.check();
    if (bytes === 0) return;
    this.openEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.lastUse.set(src, this.batchId);
    this.lastUse.set(dst, this.batchId);
  }

  /** Records a clear (fill with zero bytes). */
  clear(buf: GPUBuffer, offset = 0, bytes?: number): void {
    this.check();
    this.openEncoder().clearBuffer(buf, offset, bytes);
    this.lastUse.set(buf, this.batchId);
  }

  /** Submits the open batch. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const prof = this.profiling;
    let resolved: GPUBuffer | null = null;
    let labels: [string, string][] = [];
    if (prof && prof.used > 0) {
      resolved = this.device.createBuffer({ size: prof.used * 8, usage: 0x200 /* QUERY_RESOLVE */ | 0x04 });
      this.encoder.resolveQuerySet(prof.querySet, 0, prof.used, resolved, 0);
      labels = prof.labels;
    }
    let staging: GPUBuffer | null = null;
    if (resolved) {
      staging = this.device.createBuffer({ size: resolved.size, usage: 0x01 /* MAP_READ */ | 0x08 });
      this.encoder.copyBufferToBuffer(resolved, 0, staging, 0, resolved.size);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    const labelsInBatch = this.batchLabels;
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.pendingChecks.push(
      Promise.all([oom, validation]).then(([o, v]) => {
        for (const e of [o, v]) {
          if (!e) continue;
          const ops = labelsInBatch.length > 6 ? [...labelsInBatch.slice(0, 3), '...', ...labelsInBatch.slice(-3)] : labelsInBatch;
          this.errors.push(`${e.message.trim()}\n  (in a batch of ${labelsInBatch.length} dispatches: ${ops.join('; ')})`);
        }
      }),
    );
    if (prof && staging && resolved) {
      const s = staging;
      const r = resolved;
      prof.results.push(
        s.mapAsync(1 /* READ */).then(() => {
          const t = new BigInt64Array(s.getMappedRange().slice(0));
          s.unmap();
          s.destroy();
          r.destroy();
          return labels.map(([label, kernel], i) => ({ label, kernel, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
        }),
      );
      prof.used = 0;
      prof.labels = [];
    }
    this.encoder = null;
    this.batchLabels = [];
    this.dispatchCount = 0;
    this.batchId++;
    for (const b of this.uniformEvicted) b.destroy();
    this.uniformEvicted = [];
  }

  /** Number of queue submits so far (to check batching). */
  get submitCount(): number {
    return this.submits;
  }

  /** Waits for all submitted work and throws the first error any of it raised. */
  async sync(): Promise<void> {
    this.flush();
    await quietly(this.device.queue.onSubmittedWorkDone());
    await this.settle();
  }

  private async settle(): Promise<void> {
    while (this.pendingChecks.length) {
      const checks = this.pendingChecks;
      this.pendingChecks = [];
      await quietly(Promise.all(checks));
    }
    this.check();
    if (this.errors.length) {
      const errs = this.errors;
      this.errors = [];
      throw new GpuError(errs.join('\n'));
    }
  }

  /** Reads `bytes` bytes of a buffer back to the host (flushes the open batch). */
  async read(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.check();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(size, 4), usage: 0x01 /* MAP_READ */ | 0x08, label: 'readback' });
    this.copy(buf, offset, staging, 0, size);
    this.flush();
    try {
      await quietly(staging.mapAsync(1 /* READ */));
    } catch (e) {
      staging.destroy();
      await this.settle();
      throw new GpuError(`readback failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.settle();
    return out;
  }

  // ---------------------------------------------------------------- profiling

  get canProfile(): boolean {
    return this.features.has('timestamp-query');
  }

  /** Starts recording per-dispatch GPU time (timestamp queries). */
  startProfile(capacity = 4096): void {
    if (!this.canProfile) throw new GpuError('profiling needs the timestamp-query feature, which this adapter lacks');
    this.flush();
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: capacity });
    this.profiling = { querySet, capacity, used: 0, labels: [], results: [] };
  }

  /** Stops recording and returns one record per dispatch since startProfile(). */
  async endProfile(): Promise<ProfileRecord[]> {
    const prof = this.profiling;
    if (!prof) throw new GpuError('endProfile() without startProfile()');
    this.flush();
    this.profiling = null;
    const results = (await quietly(Promise.all(prof.results))).flat();
    prof.querySet.destroy();
    await this.settle();
    return results;
  }

  // ---------------------------------------------------------------- lifetime

  /** Frees every buffer and the device. The runtime is unusable afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* destroying anyway */
    }
    this.destroyed = true;
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    for (const b of this.uniformCache.values()) b.destroy();
    this.uniformCache.clear();
    this.placeholderBuffer?.destroy();
    this.device.destroy();
    if (this.keepAlive) releaseKeepAlive(this.keepAlive);
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

/** Creates the runtime on the best adapter: dawn.node in Node, navigator.gpu in browsers. */
export const createDevice = (opts: DeviceOptions = {}): Promise<Gpu> => Gpu.create(opts);

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** Workgroup counts for `n` invocations of `wg` threads, folded into 2D past the per-dimension limit. */
export function grid1d(n: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
