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
  /** Bytes of one staging buffer; larger uploads get a buffer of their own for one batch. */
  static readonly CHUNK = 4 << 20;
  /** Bytes of staging a batch may take (regions as rounded, chunk tails skipped, buffers of
   * their own); past it the caller submits instead, so that a loop of large uploads into one
   * busy buffer cannot grow the staging memory without bound. */
  static readonly MAX_PER_BATCH = 64 << 20;
  /** Regions start on 256-byte boundaries (copies need multiples of 4). */
  static readonly ALIGN = 256;
  private chunks: GPUBuffer[] = [];
  /** Larger than a chunk: made for one batch, destroyed after its submit. */
  private oversized: GPUBuffer[] = [];
  private chunk = 0;
  private offset = 0;
  private used = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Bytes `take(bytes)` would add to this batch's budget. */
  private cost(bytes: number): number {
    if (bytes > StagingArena.CHUNK) return bytes;
    const size = Math.ceil(bytes / StagingArena.ALIGN) * StagingArena.ALIGN;
    return this.offset + size > StagingArena.CHUNK ? StagingArena.CHUNK - this.offset + size : size;
  }

  /** Whether `bytes` more fit this batch's staging budget. */
  fits(bytes: number): boolean {
    return this.used + this.cost(bytes) <= StagingArena.MAX_PER_BATCH;
  }

  /** A region of `bytes` (a multiple of 4) not handed out since the last submit. */
  take(bytes: number): StagingRegion {
    this.used += this.cost(bytes);
    if (bytes > StagingArena.CHUNK) {
      const buffer = this.device.createBuffer({ size: bytes, usage: COPY_SRC | COPY_DST, label: 'staging (oversized)' });
      this.oversized.push(buffer);
      return { buffer, offset: 0 };
    }
    const size = Math.ceil(bytes / StagingArena.ALIGN) * StagingArena.ALIGN;
    if (this.offset + size > StagingArena.CHUNK) {
      this.chunk++;
      this.offset = 0;
    }
    const buffer = (this.chunks[this.chunk] ??= this.device.createBuffer({ size: StagingArena.CHUNK, usage: COPY_SRC | COPY_DST, label: `staging ${this.chunk}` }));
    const region = { buffer, offset: this.offset };
    this.offset += size;
    return region;
  }

  /** Bytes held in staging buffers now (kept between batches until release()). */
  get bytes(): number {
    return this.chunks.length * StagingArena.CHUNK + this.oversized.reduce((s, b) => s + b.size, 0);
  }

  /** After a submit: every region may be handed out again. */
  afterSubmit(): void {
    this.used = 0;
    this.chunk = 0;
    this.offset = 0;
    for (const b of this.oversized) b.destroy();
    this.oversized = [];
  }

  /** After a submit (no copy from staging left unsubmitted): destroys every staging buffer;
   * later uploads make new ones. */
  release(): void {
    this.afterSubmit();
    for (const b of this.chunks) b.destroy();
    this.chunks = [];
  }
}
