// The page's end of the worker protocol (web/protocol.ts): typed requests, answers as promises,
// progress as callbacks.
import type { Op, Ops, Progress, Reply, Request } from './protocol.ts';

export class ModelClient {
  private next = 1;
  private readonly pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void; progress?: (p: Progress) => void }>();
  /** Requests sent and not answered yet. */
  busy = 0;
  onBusy: (busy: number, progress: Progress | null) => void = () => {};

  constructor(private readonly worker: Worker) {
    worker.onmessage = (ev: MessageEvent<Reply>) => {
      const r = ev.data;
      const p = this.pending.get(r.id);
      if (!p) return;
      if ('progress' in r) {
        p.progress?.(r.progress);
        this.onBusy(this.busy, r.progress);
        return;
      }
      this.pending.delete(r.id);
      this.busy--;
      this.onBusy(this.busy, null);
      if (r.ok) p.ok(r.value);
      else p.fail(new Error(r.error));
    };
    worker.onerror = (ev) => {
      // A worker that cannot start (a script error) fails everything waiting on it.
      const e = new Error(`the model worker failed: ${ev.message || 'unknown error'}`);
      for (const p of this.pending.values()) p.fail(e);
      this.busy -= this.pending.size;
      this.pending.clear();
      this.onBusy(this.busy, null);
    };
  }

  call<K extends Op>(op: K, arg: Ops[K][0], progress?: (p: Progress) => void, transfer: Transferable[] = []): Promise<Ops[K][1]> {
    const id = this.next++;
    this.busy++;
    this.onBusy(this.busy, null);
    return new Promise((ok, fail) => {
      this.pending.set(id, { ok: ok as (v: unknown) => void, fail, progress });
      this.worker.postMessage({ id, op, arg } satisfies Request<K>, transfer);
    });
  }
}
