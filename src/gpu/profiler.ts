// Per-dispatch GPU time from timestamp queries: while profiling, each dispatch gets its own
// compute pass with begin/end timestamps; a flush resolves the query set into a buffer
// that is read back after the submit.
export interface ProfileRecord {
  label: string;
  kernel: string;
  ms: number;
}

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private used = 0;
  private labels: [string, string][] = [];
  private results: Promise<ProfileRecord[]>[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: capacity });
  }

  /** True when the query set has no room for another dispatch (flush first). */
  get full(): boolean {
    return this.used + 2 > this.capacity;
  }

  /** A compute pass of its own for one dispatch, timed. The caller ends it. */
  beginPass(encoder: GPUCommandEncoder, label: string, kernel: string): GPUComputePassEncoder {
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: this.used, endOfPassWriteIndex: this.used + 1 },
    });
    this.used += 2;
    this.labels.push([label, kernel]);
    return pass;
  }

  /** Encodes the resolve of this batch's queries; the returned function, called after the
   * submit, starts their readback. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    if (this.used === 0) return null;
    const resolved = this.device.createBuffer({ size: this.used * 8, usage: 0x200 /* QUERY_RESOLVE */ | 0x04 });
    encoder.resolveQuerySet(this.querySet, 0, this.used, resolved, 0);
    const staging = this.device.createBuffer({ size: resolved.size, usage: 0x01 /* MAP_READ */ | 0x08 });
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, resolved.size);
    const labels = this.labels;
    this.used = 0;
    this.labels = [];
    return () => {
      this.results.push(
        staging.mapAsync(1 /* READ */).then(() => {
          const t = new BigInt64Array(staging.getMappedRange().slice(0));
          staging.unmap();
          staging.destroy();
          resolved.destroy();
          return labels.map(([label, kernel], i) => ({ label, kernel, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
        }),
      );
    };
  }

  /** Every record since the profiler started (after the last flush's submit). */
  async collect(): Promise<ProfileRecord[]> {
    const all = (await Promise.all(this.results)).flat();
    this.querySet.destroy();
    return all;
  }
}
