// The device runtime: one `Gpu` per WebGPU device. It composes
//   - a buffer pool (pool.ts), a pipeline cache (pipelines.ts), cached uniform blocks
//     (uniforms.ts), cached bind groups (bindgroups.ts) and a timestamp profiler (profiler.ts),
//   - the command batcher (many dispatches per submit, one open compute pass),
//   - readback, and error reporting that turns validation, out-of-memory and WGSL compile
//     errors into exceptions naming the kernel and shapes.
// Kernels are launched through their declarations (kernel.ts): gpu.launch(entry, {...}).
import { GpuError } from '../errors.ts';
import { acquireDevice, releaseKeepAlive, type DeviceOptions, type OptionalFeature } from './device.ts';
import { quietly } from './polling.ts';
import { BufferPool, TENSOR_USAGE, type PoolStats } from './pool.ts';
import { PipelineCache, type Pipeline } from './pipelines.ts';
import { StagingArena } from './staging.ts';
import { UniformCache } from './uniforms.ts';
import { BindGroupCache } from './bindgroups.ts';
import { Profiler, type ProfileRecord } from './profiler.ts';
import { bindBuffers, type BufferRange, type EntryPoint, type LaunchArgs, type ParamDecls } from './kernel.ts';
import { defaultTuning, type Tuning } from './tuning.ts';

export type { PoolStats, ProfileRecord, Tuning };
export { bucketSize, fmtBytes } from './pool.ts';
interface DispatchArgs {
  /** Data for the entry point's parameter block (its 'params' binding). */
  uniforms?: ArrayBuffer | ArrayBufferView;
  /** Buffers (or ranges of them) for the entry point's other bindings, in binding order. */
  buffers: (GPUBuffer | BufferRange)[];
  workgroups: readonly [number, number?, number?];
  /** Names the op and its shapes in error messages and profiles, e.g. 'matmul [64x32]@[32x16]'. */
  label: string;
}

export class Gpu {
  readonly device: GPUDevice;
  readonly features: Set<OptionalFeature>;
  readonly adapterInfo: { vendor: string; architecture: string; description: string; device: string };
  /** Subgroup size range (0 when the subgroups feature is off). */
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly limits: GPUSupportedLimits;
  /** Threads a CPU driver runs workgroups on (see AcquiredDevice.hostThreads). */
  readonly hostThreads: number;
  /** The host CPU in Node (see AcquiredDevice.hostCpu). */
  readonly hostCpu: string;
  /** Kernel variant choices for this device (see tuning.ts). */
  readonly tuning: Tuning = defaultTuning();

  private keepAlive: unknown;
  private destroyed = false;
  private lostReason: string | null = null;

  private readonly pool: BufferPool;
  private readonly pipelines: PipelineCache;
  private readonly uniforms: UniformCache;
  private readonly staging: StagingArena;
  private readonly bindGroups: BindGroupCache;
  private profiler: Profiler | null = null;

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

  private constructor(acq: Awaited<ReturnType<typeof acquireDevice>>) {
    this.device = acq.device;
    this.features = acq.features;
    this.adapterInfo = acq.adapterInfo;
    this.keepAlive = acq.keepAlive;
    this.limits = acq.device.limits;
    this.hostThreads = acq.hostThreads;
    this.hostCpu = acq.hostCpu;
    const sg = acq.features.has('subgroups');
    this.subgroupMinSize = sg ? acq.subgroupMinSize : 0;
    this.subgroupMaxSize = sg ? acq.subgroupMaxSize : 0;
    this.bindGroups = new BindGroupCache(this.device);
    this.pool = new BufferPool(this.device, this.limits.maxStorageBufferBindingSize, Math.min(this.limits.maxBufferSize * 4, 16 * 2 ** 30), () => {
      if (this.encoder) this.flush();
      this.bindGroups.clear();
      this.staging.release();
    });
    this.pipelines = new PipelineCache(
      this.device,
      (p) => this.pendingChecks.push(p),
      (m) => this.errors.push(m),
    );
    this.uniforms = new UniformCache(this.device);
    this.staging = new StagingArena(this.device);
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

  /** One line: adapter, driver, the optional features in use and, on a CPU adapter in Node,
   * the host CPU (model, SIMD extension, threads), which sets every kernel's speed there. */
  describe(): string {
    const i = this.adapterInfo;
    const name = [i.vendor, i.architecture, i.description || i.device].filter(Boolean).join(' ');
    const feats = [...this.features].join(', ') || 'none';
    const sg = this.subgroupMinSize
      ? `; subgroup size ${this.subgroupMinSize === this.subgroupMaxSize ? this.subgroupMinSize : `${this.subgroupMinSize}-${this.subgroupMaxSize}`}`
      : '';
    const cpu = this.isLavapipe && this.hostCpu ? `; CPU ${this.hostCpu}, ${this.hostThreads} threads` : '';
    return `${name} [features: ${feats}${sg}${cpu}]`;
  }

  /** A CPU adapter (Mesa's lavapipe or SwiftShader): asked at launches, so computed once. */
  get isLavapipe(): boolean {
    if (this.cpuAdapter === undefined) {
      const i = this.adapterInfo;
      this.cpuAdapter = /llvmpipe|lavapipe|swiftshader/i.test(`${i.vendor} ${i.architecture} ${i.description} ${i.device}`);
    }
    return this.cpuAdapter;
  }
  private cpuAdapter: boolean | undefined;

  private check(): void {
    if (this.destroyed) throw new GpuError('the GPU device was destroyed; create a new one with createDevice()');
    if (this.lostReason) throw new GpuError(`the GPU device was lost (${this.lostReason})`);
  }

  // ---------------------------------------------------------------- memory

  /** Refuse allocations that would take live GPU memory above this many bytes. */
  get memoryLimit(): number {
    return this.pool.memoryLimit;
  }
  set memoryLimit(bytes: number) {
    this.pool.memoryLimit = bytes;
  }

  /** A storage buffer of at least `bytes` bytes, reused from the pool when one is free. */
  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    this.check();
    return this.pool.acquire(bytes, what);
  }

  /** Returns a buffer to the pool. Later kernels may reuse it at once: queue order keeps
   * the reads already encoded ahead of any new writes. */
  release(buf: GPUBuffer): void {
    this.pool.release(buf, !this.destroyed);
  }

  /** Destroys every pooled (free) buffer and the staging buffers (submitting the open batch first). */
  trim(): void {
    this.pool.trim();
  }

  /** The pool's counts, and the bytes held in staging buffers (staging.ts; not pooled). */
  poolStats(): PoolStats & { stagingBytes: number } {
    return { ...this.pool.snapshot(), stagingBytes: this.staging.bytes };
  }

  /** Bind groups created and reused so far, and how many are cached now (bindgroups.ts). */
  bindGroupStats(): { created: number; reused: number; cached: number } {
    return { created: this.bindGroups.misses, reused: this.bindGroups.hits, cached: this.bindGroups.size };
  }

  private readonly placeholderBuffers: GPUBuffer[] = [];
  /** A small storage buffer to bind where a kernel variant ignores a binding (no bias, no mask):
   * one per binding slot, so that an unused writable binding never aliases another unused one
   * (WebGPU refuses a buffer bound writable twice in one dispatch). */
  placeholder(slot: number): GPUBuffer {
    this.check();
    return (this.placeholderBuffers[slot] ??= this.device.createBuffer({ size: 16, usage: TENSOR_USAGE, label: `unused binding ${slot}` }));
  }

  /**
   * Copies host data into `buf` at `offsetBytes` (bytes; it and data.byteLength multiples of 4,
   * as WebGPU's writeBuffer requires). Ordered as if it ran where it is called: commands already
   * in the open batch see the old contents, later ones the new. A buffer the open batch has
   * used takes the data through a staging region and a copy in the batch; past the batch's
   * staging budget the batch is submitted first.
   */
  upload(buf: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
    this.check();
    // queue.writeBuffer runs before commands still waiting in the open batch: if one of
    // them reads or writes this buffer, the data goes through a staging region and a copy
    // recorded in the batch, in order (staging.ts), rather than submitting the batch first
    // (unless the batch has staged its budget already).
    // (writeBuffer and copies both take sizes and offsets that are multiples of 4.)
    if (this.encoder && this.lastUse.get(buf) === this.batchId) {
      if (!this.staging.fits(data.byteLength)) this.flush();
      else {
        const r = this.staging.take(data.byteLength);
        this.device.queue.writeBuffer(r.buffer, r.offset, data.buffer, data.byteOffset, data.byteLength);
        this.copy(r.buffer, r.offset, buf, offsetBytes, data.byteLength);
        return;
      }
    }
    this.device.queue.writeBuffer(buf, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
  }

  // ---------------------------------------------------------------- kernels

  /**
   * Launches a declared kernel's entry point (kernel.ts): parameters and buffers by name,
   * checked against the declaration; flags, constants and overrides pick the variant.
   * @throws GpuError naming the kernel and the parameter or buffer at fault.
   */
  launch<P extends ParamDecls, Bn extends string>(ep: EntryPoint<P, Bn>, args: LaunchArgs<P, Bn>): void {
    const k = this.pipeline(ep, args);
    const buffers = bindBuffers(ep as EntryPoint, args.buffers as Record<string, GPUBuffer | BufferRange | null>, (slot) => this.placeholder(slot), args.label);
    const uniforms = ep.pack(args.params) ?? undefined;
    this.dispatch(k, { uniforms, buffers, workgroups: args.workgroups, label: args.label });
  }

  private pipeline(ep: EntryPoint, variant: Pick<LaunchArgs<ParamDecls, string>, 'flags' | 'consts' | 'overrides'>): Pipeline {
    this.check();
    return this.pipelines.get({
      file: ep.file,
      source: ep.source,
      prelude: ep.prelude,
      preludeLocations: ep.preludeLocations,
      sourceLocations: ep.sourceLocations,
      uniformArrays: ep.uniformArrays,
      declId: ep.declId,
      entry: ep.entry,
      flags: variant.flags,
      consts: variant.consts,
      overrides: variant.overrides,
      bindings: ep.bindings,
    });
  }

  /**
   * Compiles an entry point's variant now and waits for the result (a launch compiles on
   * first use and reports errors at the next sync).
   * @throws GpuError with kernels/<file>:<line> for a WGSL error.
   */
  async compile(ep: EntryPoint, variant: Pick<LaunchArgs<ParamDecls, string>, 'flags' | 'consts' | 'overrides'> = {}): Promise<void> {
    this.device.pushErrorScope('validation');
    try {
      this.pipeline(ep, variant);
    } finally {
      const err = await quietly(this.device.popErrorScope());
      if (err) this.errors.push(`${ep.name}: ${err.message}`);
    }
    await this.settle();
  }

  // ---------------------------------------------------------------- batching

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

  private openPass(): GPUComputePassEncoder {
    if (!this.pass) {
      const enc = this.openEncoder();
      this.pass = enc.beginComputePass();
    }
    return this.pass;
  }

  /** Records a dispatch of a compiled pipeline into the open batch (buffers in binding order). */
  private dispatch(kernel: Pipeline, args: DispatchArgs): void {
    this.check();
    // A full query set is resolved by a flush, which makes room for more.
    if (this.profiler?.full) this.flush();
    const [x, y = 1, z = 1] = args.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new GpuError(`${args.label}: ${x}x${y}x${z} workgroups exceed the device limit of ${maxWg} per dimension (${kernel.name})`);
    const slots = kernel.spec.bindings;
    if (args.buffers.length !== kernel.bufferSlots)
      throw new GpuError(`${args.label}: ${kernel.name} takes ${kernel.bufferSlots} buffers, got ${args.buffers.length}`);
    const bindings: number[] = [];
    const bound: (GPUBuffer | BufferRange)[] = [];
    let next = 0;
    for (let binding = 0; binding < slots.length; binding++) {
      const kind = slots[binding];
      if (!kind) continue;
      bindings.push(binding);
      if (kind === 'params') {
        if (!args.uniforms) throw new GpuError(`${args.label}: ${kernel.name} needs uniforms`);
        bound.push(this.uniforms.get(toWords(args.uniforms)));
        continue;
      }
      const buf = args.buffers[next++];
      if ('buffer' in buf) this.checkRange(kernel, binding, kind === 'uniform', buf, args.label);
      else if (kind === 'uniform' && buf.size > this.limits.maxUniformBufferBindingSize)
        throw new GpuError(`${args.label}: ${kernel.name} binds a ${buf.size}-byte buffer as uniform @binding(${binding}); this device allows ${this.limits.maxUniformBufferBindingSize} (bind a range)`);
      const need = kernel.uniformBytes[binding];
      if (need !== undefined && buf.size < need)
        throw new GpuError(`${args.label}: ${kernel.name} binds ${buf.size} bytes at uniform @binding(${binding}), whose array needs ${need}`);
      bound.push(buf);
      this.lastUse.set('buffer' in buf ? buf.buffer : buf, this.batchId);
    }
    // Profiling: one pass per dispatch so each gets its own begin/end timestamps.
    const pass = this.profiler ? this.profiler.beginPass(this.openEncoder(), args.label, kernel.name) : this.openPass();
    const group = this.bindGroups.get(kernel.layout, bindings, bound, args.label);
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (pass !== this.pass) pass.end();
    this.batchLabels.push(args.label);
    if (++this.dispatchCount >= this.maxDispatchesPerSubmit) this.flush();
  }

  /** A range bound at `binding`: inside its buffer, aligned, and within the uniform size limit. */
  private checkRange(kernel: Pipeline, binding: number, uniform: boolean, r: BufferRange, label: string): void {
    const align = uniform ? this.limits.minUniformBufferOffsetAlignment : this.limits.minStorageBufferOffsetAlignment;
    const where = `${label}: ${kernel.name} @binding(${binding}) bytes ${r.offset}..${r.offset + r.size}`;
    if (!Number.isInteger(r.offset) || !Number.isInteger(r.size) || r.offset < 0 || r.size <= 0 || r.offset + r.size > r.buffer.size)
      throw new GpuError(`${where} are not inside its ${r.buffer.size}-byte buffer`);
    if (r.offset % align) throw new GpuError(`${where}: the offset is not a multiple of ${align} bytes, this device's alignment`);
    if (uniform && r.size > this.limits.maxUniformBufferBindingSize)
      throw new GpuError(`${where}: ${r.size} bytes is more than one uniform binding holds here (${this.limits.maxUniformBufferBindingSize})`);
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
    const afterSubmit = this.profiler?.resolve(this.encoder) ?? null;
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    afterSubmit?.();
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
    this.encoder = null;
    this.batchLabels = [];
    this.dispatchCount = 0;
    this.batchId++;
    this.uniforms.afterSubmit();
    this.staging.afterSubmit();
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
    this.profiler = new Profiler(this.device, capacity);
  }

  /** Stops recording and returns one record per dispatch since startProfile(). */
  async endProfile(): Promise<ProfileRecord[]> {
    const prof = this.profiler;
    if (!prof) throw new GpuError('endProfile() without startProfile()');
    this.flush();
    this.profiler = null;
    const results = await quietly(prof.collect());
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
    this.bindGroups.clear();
    this.pool.destroyFree();
    this.uniforms.destroy();
    this.staging.release();
    for (const b of this.placeholderBuffers) b?.destroy();
    this.device.destroy();
    if (this.keepAlive) releaseKeepAlive(this.keepAlive);
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

function toWords(data: ArrayBuffer | ArrayBufferView): Uint32Array {
  if (data instanceof Uint32Array) return data;
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + Math.ceil(bytes.byteLength / 4) * 4));
}

/** Creates the runtime on the best adapter: dawn.node in Node, navigator.gpu in browsers. */
export const createDevice = (opts: DeviceOptions = {}): Promise<Gpu> => Gpu.create(opts);

/** Workgroup counts for `n` invocations of `wg` threads, folded into 2D past the per-dimension limit. */
export function grid1d(n: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
