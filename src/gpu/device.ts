// Acquiring a WebGPU device in Node (dawn.node, npm package `webgpu`) or in a browser
// (navigator.gpu), asking for the adapter's full limits and the optional features that
// the kernels can use.
import { GpuError } from '../errors.ts';

export const OPTIONAL_FEATURES = ['timestamp-query', 'shader-f16', 'subgroups'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

export interface DeviceOptions {
  /** A GPU object to use instead of the platform's (navigator.gpu, or dawn.node in Node). */
  gpu?: GPU;
  /** Node only: flags for dawn.node's create() after DEFAULT_DAWN_FLAGS, e.g. ['backend=vulkan']. */
  dawnFlags?: string[];
  /** Leave these optional features off even when the adapter has them (for testing fallbacks). */
  disableFeatures?: OptionalFeature[];
  powerPreference?: GPUPowerPreference;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; description: string; device: string };
  features: Set<OptionalFeature>;
  /** Subgroup size range reported by the adapter, when subgroups are on. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  isNode: boolean;
  /**
   * Threads a CPU driver spreads workgroups over: lavapipe's LP_NUM_THREADS when set, else the
   * host's cores (Node: os.availableParallelism(); browsers: navigator.hardwareConcurrency).
   */
  hostThreads: number;
  /**
   * Node: the host CPU's model and widest SIMD extension, e.g. 'AMD EPYC, AVX2' ('' when
   * unknown, and in browsers). On a CPU adapter every kernel's speed is the CPU's: lavapipe
   * runs 8 lanes a subgroup on AVX2 and on AVX-512 alike, but the same step measured 3.7x
   * slower on an AVX2 EPYC than on an AVX-512 one (README "Measured").
   */
  hostCpu: string;
  /** Node: the object returned by dawn.node's create(); it must stay referenced while the device lives. */
  keepAlive: unknown;
}

// dawn.node crashes at random when the GPU object from create() is garbage collected
// while its adapter or device lives (see ../shared/ENVIRONMENT.md). Every one ever made is
// held here until its device is destroyed.
const held = new Set<unknown>();
export function releaseKeepAlive(obj: unknown): void {
  held.delete(obj);
}

const LIMITS_TO_REQUEST = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindingsPerBindGroup',
] as const;

/**
 * dawn.node's flags, before any the caller adds. Dawn quantizes timestamp-query results to
 * 65.536 us by default (its `timestamp_quantization` toggle, a browser's defence against timing
 * attacks): every profiled dispatch then read 0, 65.5 or 131 us, on lavapipe as on an H200,
 * where most of the training step's dispatches take 5-50 us. A benchmark and a profiler need
 * the real clock; a page in a browser keeps its browser's quantization.
 */
export const DEFAULT_DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];

// What to do about a missing adapter depends on where the code runs: Node needs a Vulkan
// driver, a browser needs WebGPU enabled.
const NO_ADAPTER_NODE =
  "no WebGPU adapter: Node needs a Vulkan driver; run `npm run setup` (on a machine without a GPU it installs Mesa's lavapipe software driver)";
const NO_ADAPTER_BROWSER = 'no WebGPU adapter: this browser does not offer WebGPU (Chrome or Edge 113+ with WebGPU on; on Linux, Chromium with --enable-unsafe-webgpu)';

export async function acquireDevice(opts: DeviceOptions = {}): Promise<AcquiredDevice> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  // Node is Node even when a library (tfjs, say) has put a navigator.gpu on globalThis:
  // the device then comes from dawn.node, with its create() result held.
  const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';
  let gpu: GPU;
  let keepAlive: unknown = null;
  if (opts.gpu) gpu = opts.gpu;
  else if (!isNode) {
    if (!nav?.gpu) throw new GpuError(NO_ADAPTER_BROWSER);
    gpu = nav.gpu;
  } else {
    // Mesa prints a warning on every start without it.
    if (!process.env.XDG_RUNTIME_DIR) {
      const { tmpdir } = await import('node:os');
      process.env.XDG_RUNTIME_DIR = tmpdir();
    }
    let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
    try {
      dawn = (await import('webgpu')) as unknown as typeof dawn;
    } catch (e) {
      throw new GpuError(`cannot load the npm package 'webgpu' (dawn.node): ${(e as Error).message}. Run \`npm run setup\`.`);
    }
    // Constants such as GPUBufferUsage are globals in browsers; dawn.node exports them.
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    gpu = dawn.create([...DEFAULT_DAWN_FLAGS, ...(opts.dawnFlags ?? [])]);
    keepAlive = gpu;
    held.add(gpu);
  }

  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    if (keepAlive) held.delete(keepAlive);
    throw new GpuError(opts.gpu ? 'no WebGPU adapter: requestAdapter() of the given GPU object returned none' : isNode ? NO_ADAPTER_NODE : NO_ADAPTER_BROWSER);
  }
  const features = new Set<OptionalFeature>();
  for (const f of OPTIONAL_FEATURES) if (adapter.features.has(f) && !opts.disableFeatures?.includes(f)) features.add(f);
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS_TO_REQUEST) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: [...features] as GPUFeatureName[], requiredLimits });
  } catch (e) {
    throw new GpuError(`requestDevice failed: ${(e as Error).message}`);
  }
  let hostCpu = '';
  let hostThreads = (nav as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 0;
  if (isNode) {
    const os = await import('node:os');
    hostThreads = Number(process.env.LP_NUM_THREADS) || (os.availableParallelism?.() ?? os.cpus().length);
    hostCpu = await describeHostCpu(os.cpus()[0]?.model ?? '');
  }
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const sg = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  return {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description ?? '',
      device: info.device ?? '',
    },
    features,
    subgroupMinSize: sg.subgroupMinSize ?? 0,
    subgroupMaxSize: sg.subgroupMaxSize ?? 0,
    isNode,
    hostThreads: Math.max(1, hostThreads || 2),
    hostCpu,
    keepAlive,
  };
}

/** The CPU model (whitespace collapsed), its x86 family and model numbers, and its widest x86
 * vector extension, from Linux's /proc/cpuinfo (AVX-512 = avx512f), e.g. 'AMD EPYC (family 26,
 * model 2), AVX-512'; the model name alone elsewhere. A VM often names only 'AMD EPYC', and the
 * family tells the generations apart (AMD 25: Zen 3/4, 26: Zen 5), which differ here: PyTorch's
 * step ran 2.3x faster on a family-26 EPYC than on an earlier AVX-512 one, ours 1.5x. Never throws. */
export async function describeHostCpu(model: string): Promise<string> {
  let name = model.replace(/\s+/g, ' ').trim();
  let isa = '';
  try {
    const fs = await import('node:fs/promises');
    const info = await fs.readFile('/proc/cpuinfo', 'utf8');
    const flags = new Set(/^flags\s*:(.*)$/m.exec(info)?.[1]?.trim().split(/\s+/) ?? []);
    isa = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : flags.has('avx') ? 'AVX' : flags.has('sse4_2') ? 'SSE4.2' : '';
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(info)?.[1];
    const number = /^model\s*:\s*(\d+)$/m.exec(info)?.[1];
    if (family && number) name = `${name} (family ${family}, model ${number})`.trim();
  } catch {
    // not Linux, or /proc unreadable: the model is all there is
  }
  return [name, isa].filter(Boolean).join(', ');
}
