// The base of the optimizers: parameters updated in place on the GPU (kernels/optim.wgsl,
// launched through src/launch/optim.ts), decoupled weight decay, parameter groups and
// optional gradient-norm clipping computed on the device (nothing is read back during a step).
import { ValueError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { Tensor } from '../tensor.ts';
import { CLIP_FIELDS, CLIP_STATE_BYTES, HYPER_BYTES, adamwUpdate3, canUpdateThree, clipScale, optimizerUpdate, packHyper, unpackClipState, type ClipState, type Hyper } from '../launch/optim.ts';
import { checkFinite } from '../launch/util.ts';

export interface OptimizerOptions {
  lr: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this value (0 or undefined: no clipping). */
  clipNorm?: number;
  /**
   * Parameter groups (PyTorch's param_groups): per parameter, a multiple of the learning rate
   * and its own weight decay (e.g. none for scalars, biases and norms). Default: lr x 1 and
   * weightDecay for every parameter.
   */
  group?: (p: Tensor, index: number) => ParamGroup;
}

export interface ParamGroup {
  /** The parameter's learning rate is lr x lrScale (default 1). */
  lrScale?: number;
  /** Default: the optimizer's weightDecay. */
  weightDecay?: number;
}

export abstract class Optimizer {
  readonly gpu: Gpu;
  stepCount = 0;
  lr: number;
  private disposed = false;
  protected readonly state: { m: GPUBuffer; v: GPUBuffer | null }[];
  /** One hyperparameter buffer per distinct group, and each parameter's group. */
  private hyper: GPUBuffer[];
  private groups: { lrScale: number; weightDecay: number }[];
  private groupOf: number[];
  /** The clipping state (ClipState), written on the device by clipScale. */
  private clipState: GPUBuffer;
  private sq: GPUBuffer;

  constructor(
    readonly params: Tensor[],
    protected readonly opts: OptimizerOptions,
    withSecondMoment: boolean,
  ) {
    if (params.length === 0) throw new ValueError('optimizer: no parameters given');
    this.gpu = params[0].gpu;
    this.lr = opts.lr;
    checkFinite('optimizer', 'lr', opts.lr);
    this.state = params.map((p) => {
      if (!p.requiresGrad) throw new ValueError(`optimizer: '${p.name}' does not require a gradient`);
      const m = this.gpu.acquire(p.size * 4, `${p.name} optimizer state`);
      this.gpu.clear(m, 0, p.size * 4);
      let v: GPUBuffer | null = null;
      if (withSecondMoment) {
        v = this.gpu.acquire(p.size * 4, `${p.name} optimizer state`);
        this.gpu.clear(v, 0, p.size * 4);
      }
      return { m, v };
    });
    this.groups = [];
    this.groupOf = params.map((p, i) => {
      const g = opts.group?.(p, i) ?? {};
      const lrScale = g.lrScale ?? 1;
      const weightDecay = g.weightDecay ?? opts.weightDecay ?? 0;
      checkFinite('optimizer', `lrScale of '${p.name}'`, lrScale);
      checkFinite('optimizer', `weightDecay of '${p.name}'`, weightDecay);
      let k = this.groups.findIndex((x) => x.lrScale === lrScale && x.weightDecay === weightDecay);
      if (k < 0) k = this.groups.push({ lrScale, weightDecay }) - 1;
      return k;
    });
    this.hyper = this.groups.map((_, k) => this.gpu.acquire(HYPER_BYTES, `optimizer hyperparameters ${k}`));
    this.clipState = this.gpu.acquire(CLIP_STATE_BYTES, 'gradient clipping state');
    const start: ClipState = { scale: 1, norm: 0, skip: 0, skipped: 0 };
    this.gpu.upload(this.clipState, Float32Array.from(CLIP_FIELDS, (f) => start[f]));
    this.sq = this.gpu.acquire(params.length * 4, 'gradient norms');
  }

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** This step's values (lr before the group's scale; weightDecay is the group's). */
  protected abstract hyperparameters(): Hyper;
  protected abstract entry: 'sgd' | 'adamw';

  /** One update from the current gradients (parameters without a gradient are left alone). */
  step(): void {
    if (this.disposed) throw new ValueError('optimizer: step() after dispose()');
    checkFinite('optimizer', 'lr', this.lr);
    this.stepCount++;
    const gpu = this.gpu;
    if (this.opts.clipNorm && this.opts.clipNorm > 0)
      clipScale(gpu, this.params.map((p) => p.grad), this.sq, this.opts.clipNorm, this.clipState);
    const h = this.hyperparameters();
    this.groups.forEach((g, k) => gpu.upload(this.hyper[k], packHyper({ ...h, lr: h.lr * g.lrScale, weightDecay: g.weightDecay })));
    // AdamW takes three parameters of a group per dispatch where the device allows it (the
    // small preset: 132 dispatches -> 44); the rest go one by one.
    const ready = this.params.map((_, i) => i).filter((i) => this.params[i].grad);
    const single: number[] = [];
    if (this.entry === 'adamw' && canUpdateThree(gpu))
      this.groups.forEach((_, k) => {
        const mine = ready.filter((i) => this.groupOf[i] === k);
        for (let j = 0; j < mine.length; j += 3) {
          const ix = mine.slice(j, j + 3);
          const ps = ix.map((i) => this.params[i]);
          // A short last chunk, or one tensor twice (adamw3 needs three distinct buffers).
          if (ix.length < 3 || new Set(ps.map((p) => p.buffer)).size < 3) single.push(...ix);
          else adamwUpdate3(gpu, ps as [Tensor, Tensor, Tensor], ps.map((p) => p.grad!) as [Tensor, Tensor, Tensor], ix.map((i) => this.state[i]), this.hyper[k], this.clipState);
        }
      });
    else single.push(...ready);
    for (const i of single)
      optimizerUpdate(this.entry, this.params[i], this.params[i].grad!, { ...this.state[i], hyper: this.hyper[this.groupOf[i]], state: this.clipState });
  }

  /** The optimizer state (moments per parameter, by the parameter's index) for a checkpoint. */
  async stateDict(): Promise<{ step: number; moments: Float32Array[][] }> {
    const moments: Float32Array[][] = [];
    for (let i = 0; i < this.params.length; i++) {
      const { m, v } = this.state[i];
      const bytes = this.params[i].size * 4;
      const row = [new Float32Array(await this.gpu.read(m, bytes))];
      if (v) row.push(new Float32Array(await this.gpu.read(v, bytes)));
      moments.push(row);
    }
    return { step: this.stepCount, moments };
  }

  /** Restores what stateDict() returned (same parameters in the same order). */
  loadStateDict(d: { step: number; moments: Float32Array[][] }): void {
    if (d.moments.length !== this.params.length) throw new ValueError(`optimizer: the saved state has ${d.moments.length} parameters, this optimizer ${this.params.length}`);
    d.moments.forEach((row, i) => {
      const p = this.params[i];
      const { m, v } = this.state[i];
      if (row.length !== (v ? 2 : 1) || row.some((a) => a.length !== p.size))
        throw new ValueError(`optimizer: saved state for '${p.name}' does not fit [${p.shape.join('x')}]`);
      this.gpu.upload(m, row[0]);
      if (v) this.gpu.upload(v, row[1]);
    });
    this.stepCount = d.step;
  }

  /** The global gradient norm before clipping at the last step (reads back; for logging). */
  async lastGradNorm(): Promise<number> {
    if (!this.opts.clipNorm) throw new ValueError('lastGradNorm: only known when clipNorm is set');
    return unpackClipState(await this.gpu.read(this.clipState, CLIP_STATE_BYTES)).norm;
  }

  /** Steps skipped because a gradient was not finite (checked with clipNorm set; reads back). */
  async skippedSteps(): Promise<number> {
    if (!this.opts.clipNorm) return 0;
    return unpackClipState(await this.gpu.read(this.clipState, CLIP_STATE_BYTES)).skipped;
  }

  /** Frees the optimizer state. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const { m, v } of this.state) {
      this.gpu.release(m);
      if (v) this.gpu.release(v);
    }
    for (const h of this.hyper) this.gpu.release(h);
    this.gpu.release(this.clipState);
    this.gpu.release(this.sq);
  }
}
