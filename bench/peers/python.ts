// A Python peer run as a subprocess that answers one JSON object per line to commands sent
// one per line (bench/peers/radfinder_step.py), so that the bench can alternate its own
// samples with the peer's. The interpreter is $PYTHON or /usr/bin/python3 (Debian's, where
// `npm run setup` installs python3-torch).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const python = (): string => process.env.PYTHON || '/usr/bin/python3';

/** The repository root (the bench runs bundled from .build/bench or .build-only/...). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench', 'peers'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

// The matmul rate tells which BLAS torch got: Debian's python3-torch runs on whatever
// libblas.so.3 the system has, which is the reference BLAS (3.4 GFLOP/s at 1024^3 on the
// development VM, against 168 with OpenBLAS) unless an OpenBLAS is installed.
const PROBE = `import numpy, time, torch
torch.set_num_threads(1)
a = torch.randn(512, 512); b = torch.randn(512, 512); a @ b
t = time.perf_counter(); n = 0
while n < 3 or time.perf_counter() - t < 0.2: a @ b; n += 1
r = 2 * 512 ** 3 * n / (time.perf_counter() - t) / 1e9
print(torch.__version__, r, torch.cuda.get_device_name(0).replace(' ', '_') if torch.cuda.is_available() else '-')`;

/** torch's version, its 512^3 f32 matmul rate at 1 thread (GFLOP/s) and the name of its first
 * CUDA GPU (null without one), or why it cannot be imported (one line). */
export function probeTorch(): { ok: true; version: string; mmGflops: number; cuda: string | null } | { ok: false; reason: string } {
  const py = python();
  const r = spawnSync(py, ['-c', PROBE], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { ok: false, reason: `${py} cannot run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); set PYTHON to an interpreter with torch` };
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() ?? `exit ${r.status}`;
    return { ok: false, reason: `${py} cannot import torch (${last}); \`npm run setup\` as root installs Debian's python3-torch, or set PYTHON` };
  }
  const [version, rate, cuda] = r.stdout.trim().split(/\s+/);
  return { ok: true, version, mmGflops: Number(rate), cuda: cuda && cuda !== '-' ? cuda.replace(/_/g, ' ') : null };
}

export type Reply = Record<string, unknown>;

/** A running peer: send a command, await its one-line JSON reply. */
export class PythonPeer {
  private proc: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;
  private stderr = '';

  constructor(script: string, args: string[]) {
    this.proc = spawn(python(), [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
    this.proc.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
      this.waiting = null;
    });
    this.proc.on('error', () => {
      this.closed = true;
      this.waiting?.(null);
    });
  }

  /** The next reply; throws with the peer's message (or its stderr's last lines) when it fails or exits. */
  async next(): Promise<Reply> {
    const line = this.lines.shift() ?? (this.closed ? null : await new Promise<string | null>((res) => (this.waiting = res)));
    if (line === null) throw new Error(`the PyTorch peer exited: ${this.stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`);
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      throw new Error(`the PyTorch peer printed '${line.slice(0, 200)}' (expected JSON)`);
    }
    if (typeof reply.error === 'string') throw new Error(`the PyTorch peer failed: ${reply.error}`);
    return reply;
  }

  async ask(cmd: string): Promise<Reply> {
    if (this.closed) throw new Error('the PyTorch peer has exited');
    this.proc.stdin.write(`${cmd}\n`);
    return this.next();
  }

  close(): void {
    if (this.closed) return;
    this.proc.stdin.end('quit\n');
    // A peer stuck in a step must not outlive the bench.
    setTimeout(() => this.closed || this.proc.kill('SIGKILL'), 5000).unref();
  }
}
