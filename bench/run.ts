// `npm run bench`: our kernels against tfjs-backend-webgpu on the same WebGPU device.
//
//   node .build/bench/run.js [--quick] [--only matmul,elementwise,reduce,softmax,layernorm]
//                            [--iters N] [--name NAME] [--no-peer] [--wall]
//
// Clocks: our ops are timed by timestamp queries (gpu.startProfile/endProfile, kernel time
// summed over the dispatches of one op call) when the device has them, and by wall time
// (a loop of calls, then gpu.sync(), divided by the calls) always. The peer is timed the
// same two ways (tf.time() kernelMs, and a loop then its queue's onSubmittedWorkDone), so
// each ratio compares equal clocks. Both sides run the same op on the same data, and their
// samples are taken in alternating rounds (the machine is shared and its load moves);
// every number is a median.
//
// Layout: lib/args.ts (options), lib/row.ts (a result row), lib/case.ts (one measured
// case and its check), lib/simple.ts (a bandwidth-bound case), lib/report.ts (table and
// targets), suites/ (one file per section, listed in suites/index.ts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Gpu } from '../src/gpu/runtime.ts';
import { parseOptions, UsageError } from './lib/args.ts';
import type { Ctx } from './lib/case.ts';
import type { Budget } from './lib/measure.ts';
import { loadPeer, type Peer } from './lib/peer.ts';
import { RATE_AND_CHECK_NOTES, render, targetLine, targets } from './lib/report.ts';
import { newRow, SECTIONS } from './lib/row.ts';
import { SUITES } from './suites/index.ts';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);

  const gpu = await Gpu.create(opts.wallOnly ? { disableFeatures: ['timestamp-query'] } : {});
  const device = gpu.describe();
  console.log(`device: ${device}`);
  const load0 = loadavg().map((x) => +x.toFixed(2));
  console.log(`node ${process.version}, ${started.toISOString()}${opts.quick ? ', --quick' : ''}; load average ${load0.join(' ')} on ${availableParallelism()} cores`);

  let peer: Peer | null = null;
  let peerMissing = 'peer disabled (--no-peer)';
  if (opts.peer) {
    progress('loading tfjs-backend-webgpu');
    const res = await loadPeer();
    if (res.ok) {
      peer = res.peer;
      console.log(`peer: ${peer.version} on ${peer.adapter} (own adapter and device, same process and driver; timestamp-query: ${peer.timestampQuery ? 'yes' : 'no'})`);
    } else {
      peerMissing = `tfjs unavailable: ${res.reason}`;
      console.log(`peer: none (${peerMissing})`);
    }
  }

  const budget: Budget = opts.quick
    ? { warmup: 2, tsSeconds: 0.3, wallSeconds: 0.15, rounds: 3, minIters: 3, maxIters: 8, fixedIters: opts.iters }
    : { warmup: 2, tsSeconds: 1.5, wallSeconds: 0.5, rounds: 3, minIters: 3, maxIters: 30, fixedIters: opts.iters };
  const ctx: Ctx = { gpu, peer, peerMissing, budget, quick: opts.quick, rows: [], progress };

  for (const s of SECTIONS) {
    if (!opts.only.has(s)) continue;
    try {
      await SUITES[s](ctx);
    } catch (e) {
      progress(`section ${s} failed: ${(e as Error).stack ?? e}`);
      const row = newRow({ section: s, op: s, shape: '', variant: '', metric: 'GB/s', work: 0 });
      row.error = (e as Error).message;
      ctx.rows.push(row);
    }
  }

  const ourClock = gpu.canProfile ? 'timestamp queries (kernel time, summed over the dispatches of one call)' : 'wall time (no timestamp-query on this device)';
  const peerClock = peer ? (peer.timestampQuery ? 'tf.time() kernelMs (timestamp queries)' : 'wall time') : 'n/a';
  console.log('');
  console.log(render(ctx.rows));
  console.log('');
  console.log(`clock: ours ${ourClock}; tfjs ${peerClock}. "ms"/"tfjs ms" use the row's clock; "wall ms"/"tfjs wall" = loop of calls + full sync, divided.`);
  console.log('ratio = ours time / tfjs time on the same clock (< 1: ours faster). Ours and tfjs are sampled in alternating rounds; matmul rows');
  console.log('after the first variant of a shape reuse the tfjs numbers taken beside it. Medians; the machine is shared, so numbers move run to run.');
  for (const line of RATE_AND_CHECK_NOTES) console.log(line);
  console.log('A row\'s "ms" (timestamps) can exceed its "wall ms": each is the median of its own samples, taken in separate loops.');
  if (!opts.only.has('roofline')) console.log('"of roof" is "-": the roofline section, which measures the roofs, did not run (add it to --only).');
  const tg = targets(ctx.rows);
  if (tg.length) {
    console.log('');
    console.log('targets:');
    for (const t of tg) console.log(targetLine(t));
  }
  const load1 = loadavg().map((x) => +x.toFixed(2));
  console.log(`load average: ${load0.join(' ')} at start, ${load1.join(' ')} at end (other work on the machine slows both sides).`);
  console.log('');
  console.log(`device: ${device}${peer ? ` | peer: ${peer.version} on ${peer.adapter}` : ` | ${peerMissing}`} | node ${process.version}`);

  const date = started.toISOString();
  const name = opts.name ?? `${gpu.isLavapipe ? 'lavapipe' : (gpu.adapterInfo.description || gpu.adapterInfo.vendor || 'gpu').toLowerCase().replace(/[^\w.-]+/g, '-')}-${date.slice(0, 19).replace(/[:T]/g, '-')}`;
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const report = {
    name,
    date,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    loadAverage: { start: load0, end: load1 },
    device,
    adapterInfo: gpu.adapterInfo,
    clocks: { ours: ourClock, peer: peerClock },
    peer: peer ? { name: peer.name, version: peer.version, adapter: peer.adapter, timestampQuery: peer.timestampQuery } : { missing: peerMissing },
    options: { quick: opts.quick, only: [...opts.only], iters: opts.iters ?? null, budget },
    targets: tg,
    rows: ctx.rows,
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`results: ${file} (${report.seconds} s)`);

  peer?.destroy();
  gpu.destroy();
  const wrong = ctx.rows.filter((r) => r.wrong);
  if (wrong.length) {
    console.error(`bench: ${wrong.length} row(s) gave wrong results (WRONG in the table):`);
    for (const r of wrong) console.error(`  ${r.op} ${r.shape} ${r.variant}: ${r.wrong}`);
  }
  return ctx.rows.some((r) => r.error || r.wrong) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`bench: ${e instanceof UsageError ? e.message : ((e as Error).stack ?? e)}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
