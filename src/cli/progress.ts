// A small progress bar for long CLI jobs (dataset generation, training). On a TTY it redraws
// one line (at most ~10 times a second); otherwise (CI logs, pipes) it prints a plain line
// at most every `logEverySeconds` and one at the end, so logs stay short.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw (default process.stderr, so stdout stays clean for data). */
  stream?: ProgressStream;
  /** Force TTY / plain mode (default: stream.isTTY). */
  tty?: boolean;
  /** Plain mode: seconds between log lines (default 10). */
  logEverySeconds?: number;
  /** Print nothing at all. */
  quiet?: boolean;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export class Progress {
  private done = 0;
  private readonly t0: number;
  private lastDraw = -Infinity;
  private lastLog: number;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private finished = false;
  private info = '';

  constructor(
    readonly total: number,
    readonly label: string,
    private readonly opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? (globalThis as { process?: { stderr: ProgressStream } }).process?.stderr ?? { write: () => {} };
    this.tty = opts.tty ?? !!this.stream.isTTY;
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
    this.lastLog = this.t0;
  }

  /** Advances by `n` (default 1); `info` is shown after the counts (e.g. a loss or an id). */
  tick(n = 1, info?: string): void {
    this.update(this.done + n, info);
  }

  /** Sets the absolute count. */
  update(done: number, info?: string): void {
    this.done = Math.min(done, this.total);
    if (info !== undefined) this.info = info;
    if (this.opts.quiet || this.finished) return;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw < 100 && this.done < this.total) return;
      this.lastDraw = t;
      this.stream.write(`\r${this.line(t, true)}\x1b[K`);
    } else if (t - this.lastLog >= (this.opts.logEverySeconds ?? 10) * 1000 && this.done < this.total) {
      this.lastLog = t;
      this.stream.write(`${this.line(t, false)}\n`);
    }
  }

  /** Ends the bar with a final line (`summary` replaces the counts' info). */
  finish(summary?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.opts.quiet) return;
    const t = this.now();
    if (summary !== undefined) this.info = summary;
    this.stream.write(this.tty ? `\r${this.line(t, false)}\x1b[K\n` : `${this.line(t, false)}\n`);
  }

  /** The text of the bar (exported for tests). */
  line(t: number, bar: boolean): string {
    const el = (t - this.t0) / 1000;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const rate = el > 0 ? this.done / el : 0;
    const eta = rate > 0 && this.done < this.total ? ` eta ${fmtTime((this.total - this.done) / rate)}` : '';
    const counts = `${this.done}/${this.total} ${(frac * 100).toFixed(0).padStart(3)}% ${fmtTime(el)}${eta}`;
    const info = this.info ? ` ${this.info}` : '';
    if (!bar) return `${this.label} ${counts}${info}`;
    const cols = this.stream.columns ?? 80;
    const room = Math.max(10, Math.min(30, cols - this.label.length - counts.length - info.length - 6));
    const filled = Math.round(frac * room);
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(room - filled)}] ${counts}${info}`.slice(0, cols - 1);
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
