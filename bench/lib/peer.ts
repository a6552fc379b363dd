// The peer: @tensorflow/tfjs-core + @tensorflow/tfjs-backend-webgpu in this process, on
// dawn.node. tfjs asks navigator.gpu for its own adapter and device: dawn gives a second
// adapter on the same physical device (lavapipe here) as our runtime's, so both run on the
// same driver, hardware and process. Nothing here may throw past loadPeer(): when tfjs is
// missing or fails, the bench prints our numbers and says why the peer is absent.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Runner } from './measure.ts';
import { DEFAULT_DAWN_FLAGS } from '../../src/gpu/device.ts';

/** The slice of the tfjs API the bench uses (typed here so the project's typecheck does
 * not pull in tfjs's own declarations and their older @webgpu/types). */
export interface TfTensor {
  readonly shape: number[];
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
  dispose(): void;
}
export interface Tf {
  version_core: string;
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  backend(): unknown;
  tensor(values: Float32Array | Int32Array, shape: number[], dtype?: 'float32' | 'int32'): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  exp(x: TfTensor): TfTensor;
  sum(x: TfTensor, axis?: number): TfTensor;
  softmax(x: TfTensor, dim?: number): TfTensor;
  mul(a: TfTensor, b: TfTensor): TfTensor;
  scalar(v: number): TfTensor;
  transpose(x: TfTensor, perm?: number[]): TfTensor;
  unsortedSegmentSum(x: TfTensor, segmentIds: TfTensor, numSegments: number): TfTensor;
  tidy<T>(f: () => T): T;
  time(f: () => void): Promise<{ kernelMs: number | { error: string }; wallMs: number; getExtraProfileInfo?: () => string }>;
  env(): { get(flag: string): unknown; set(flag: string, value: unknown): void };
}
interface WebGpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  supportTimestampQuery: boolean;
}

export interface Peer {
  tf: Tf;
  name: string;
  version: string;
  /** The adapter tfjs was given, as the adapter describes itself. */
  adapter: string;
  timestampQuery: boolean;
  /** Runner for a tfjs op (its output is disposed per call); after its timestamps ran,
   * `programs` lists the programs of the last call with their ms (tf.time's profile info). */
  runner(op: () => TfTensor): Runner & { programs: string };
  /** Validation/OOM errors tfjs's device raised since the last call (tfjs does not check). */
  takeErrors(): string[];
  destroy(): void;
}

export type PeerResult = { ok: true; peer: Peer } | { ok: false; reason: string };

// Keeps dawn.node's GPU object alive for the life of the process (see ENVIRONMENT.md).
const held: unknown[] = [];

function packageVersion(name: string): string {
  try {
    const req = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

// Non-literal specifiers: esbuild leaves these imports to Node at run time, and tsc does
// not resolve tfjs's declarations.
const TFJS_CORE: string = '@tensorflow/tfjs-core';
const TFJS_WEBGPU: string = '@tensorflow/tfjs-backend-webgpu';

export async function loadPeer(): Promise<PeerResult> {
  let stage = 'loading webgpu (dawn.node)';
  try {
    const dawn = (await import('webgpu')) as unknown as { create(flags: string[]): GPU; globals: Record<string, unknown> };
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    // The same Dawn flags as ours: without them the peer's timestamps are quantized to 65.536 us.
    const gpu = dawn.create(DEFAULT_DAWN_FLAGS);
    held.push(gpu);
    let adapterInfo: GPUAdapterInfo | null = null;
    // Records which adapter tfjs is handed; everything else is dawn's own object.
    const navGpu = {
      requestAdapter: async (o?: GPURequestAdapterOptions) => {
        const a = await gpu.requestAdapter(o);
        adapterInfo = a?.info ?? null;
        return a;
      },
      getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
      wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    };
    held.push(navGpu);
    // tfjs-backend-webgpu registers itself at import only if navigator.gpu exists.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: navGpu }, configurable: true, writable: true });

    stage = `importing ${TFJS_CORE}`;
    const tf = (await import(TFJS_CORE)) as unknown as Tf;
    stage = `importing ${TFJS_WEBGPU}`;
    await import(TFJS_WEBGPU);
    stage = "tf.setBackend('webgpu')";
    // tfjs logs and returns false when the backend fails to initialise.
    const ok = await tf.setBackend('webgpu');
    await tf.ready();
    if (!ok || tf.getBackend() !== 'webgpu') return { ok: false, reason: `tf.setBackend('webgpu') failed (backend is '${tf.getBackend()}')` };
    const backend = tf.backend() as WebGpuBackend;
    if (!backend.device || typeof backend.submitQueue !== 'function' || typeof backend.endComputePassEncoder !== 'function')
      return { ok: false, reason: 'the tfjs webgpu backend does not expose device/submitQueue/endComputePassEncoder (tfjs version changed?)' };
    const errors: string[] = [];
    backend.device.addEventListener('uncapturederror', (ev) => errors.push((ev as GPUUncapturedErrorEvent).error.message));
    const info = adapterInfo as GPUAdapterInfo | null;
    const adapter = info ? [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ') : 'unknown adapter';
    // Submits what tfjs has batched (its own flush sequence, as in its readback path), then
    // waits for the queue.
    const sync = async () => {
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      await backend.device.queue.onSubmittedWorkDone();
    };
    return {
      ok: true,
      peer: {
        tf,
        name: 'tfjs-backend-webgpu',
        version: `tfjs-core ${packageVersion(TFJS_CORE)}, tfjs-backend-webgpu ${packageVersion(TFJS_WEBGPU)}`,
        adapter,
        timestampQuery: backend.supportTimestampQuery,
        runner(op) {
          const call = () => op().dispose();
          const r: Runner & { programs: string } = {
            programs: '',
            run: call,
            sync,
            timestamps: backend.supportTimestampQuery
              ? async (iters) => {
                  await sync();
                  const out: number[] = [];
                  for (let i = 0; i < iters; i++) {
                    const t = await tf.time(call);
                    if (typeof t.kernelMs !== 'number') throw new Error(`tf.time: ${t.kernelMs.error}`);
                    out.push(t.kernelMs);
                    r.programs = t.getExtraProfileInfo?.() ?? '';
                  }
                  return out;
                }
              : undefined,
          };
          return r;
        },
        takeErrors: () => errors.splice(0),
        destroy: () => {
          try {
            backend.device.destroy();
          } catch {
            /* exiting anyway */
          }
        },
      },
    };
  } catch (e) {
    return { ok: false, reason: `${stage}: ${(e as Error).message ?? e}` };
  }
}
