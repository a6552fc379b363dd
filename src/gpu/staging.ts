// Host data for a buffer the open batch already uses. queue.writeBuffer runs before every
// command still waiting in the batch, so writing such a buffer directly would have to submit
// the batch first (a submit in the middle of a training step). Instead the data goes to a
// staging region and the batch copies it into place, in order with its other commands.
// Regions are handed out once per batch and reused after its submit: a writeBuffer issued
// later runs after the submitted copies that read the region (queue order).
const COPY_SRC = 0x04;
const COPY_DST = 0x08;

export interface StagingRegion {
  buffer: GPUBuffer;
  offset: number;
}

export class StagingArena {
  static readonly CHUNK = 4 << 20;
  /** Staged bytes a batch may hold; past it the caller submits instead (a loop of large
   * uploads into one busy buffer must not grow host-visible copies without bound). */
  static readonly MAX_PER_BATCH = 64 << 20;
  private staged = 0;
  private chunks: GPUBuffer[] = [];
  /** Larger than a chunk: made for one batch, destroyed after its submit. */
  private oversized: GPUBuffer[] = [];
  private chunk = 0;
  private offset = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Whether `bytes` more fit this batch's staging budget. */
  fits(bytes: number): boolean {
    return this.staged + bytes <= StagingArena.MAX_PER_BATCH;
  }

  /** A region of `bytes` (a multiple of 4, as copies need) not handed out since the last submit. */
  take(bytes: number): StagingRegion {
    this.staged += bytes;
    if (bytes > StagingArena.CHUNK) {
      const buffer = this.device.createBuffer({ size: bytes, usage: COPY_SRC | COPY_DST, label: 'staging (oversized)' });
      this.oversized.push(buffer);
      return { buffer, offset: 0 };
    }
    if (this.offset + bytes > StagingArena.CHUNK) {
      this.chunk++;
      this.offset = 0;
    }
    const buffer = (this.chunks[this.chunk] ??= this.device.createBuffer({ size: StagingArena.CHUNK, usage: COPY_SRC | COPY_DST, label: `staging ${this.chunk}` }));
    const region = { buffer, offset: this.offset };
    // Copy offsets must be multiples of 4; 256 keeps regions apart on cache lines too.
    this.offset += Math.ceil(bytes / 256) * 256;
    return region;
  }

  /** After a submit: every region may be handed out again. */
  afterSubmit(): void {
    this.staged = 0;
    this.chunk = 0;
    this.offset = 0;
    for (const b of this.oversized) b.destroy();
    this.oversized = [];
  }

  destroy(): void {
    this.afterSubmit();
    for (const b of this.chunks) b.destroy();
    this.chunks = [];
  }
}
