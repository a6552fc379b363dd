// The kernel playground (dist/web/playground.html, served by `ctvlm web` at /playground.html):
// the bench's kernel sections (bench/suites) on the page's own WebGPU adapter, with the table
// `npm run bench` prints (bench/lib/report.ts render()), its targets and rates against the
// adapter's measured roof, and the same JSON report as bench/results/*.json to download.
//
// Not here: 'data' (host code reading files) and 'step' (a PyTorch peer in a child process)
// need Node; the tfjs peer is not loaded (its bundle would more than double the page), so
// every row's peer columns say so.
//
// Page parameters, for scripted use (test/browser/playground.test.ts):
//   ?sections=roofline,elementwise  (default: all kernel sections)  &full=1 (full sizes)
//   &iters=N (exactly N samples per case, as --iters)  &run=1 (start on load)
import { Gpu } from '../src/gpu/runtime.ts';
import type { Ctx, Suite } from '../bench/lib/case.ts';
import type { Budget } from '../bench/lib/measure.ts';
import { RATE_AND_CHECK_NOTES, render, targetLine, targets, type Target } from '../bench/lib/report.ts';
import { newRow, SECTIONS, type Row, type Section } from '../bench/lib/row.ts';
// The kernel sections only: bench/suites/index.ts also pulls in 'data' and 'step', which import Node.
import { KERNEL_SUITES as SUITES_TABLE } from '../bench/suites/kernels.ts';

const KERNEL_SUITES: Partial<Record<Section, Suite>> = SUITES_TABLE;

const NODE_ONLY: Partial<Record<Section, string>> = {
  data: 'reads and resamples files on the host (Node)',
  step: 'compares with a PyTorch peer in a child process (Node)',
};

const PEER_MISSING = 'no peer in the playground (tfjs is not loaded in the page)';

/** The bench's budgets (bench/run.ts): --quick and full. */
function budgetOf(quick: boolean, iters: number | undefined): Budget {
  return quick
    ? { warmup: 2, tsSeconds: 0.3, wallSeconds: 0.15, rounds: 3, minIters: 3, maxIters: 8, fixedIters: iters }
    : { warmup: 2, tsSeconds: 1.5, wallSeconds: 0.5, rounds: 3, minIters: 3, maxIters: 30, fixedIters: iters };
}

/** What the page exposes as window.playground() for scripted use. */
export interface PlaygroundState {
  running: boolean;
  done: boolean;
  error: string | null;
  adapter: string;
  rows: number;
  table: string;
  /** The JSON report (the same shape as bench/results/*.json), once a run finished. */
  report: string | null;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const state: PlaygroundState = { running: false, done: false, error: null, adapter: '', rows: 0, table: '', report: null };
(window as unknown as { playground: () => PlaygroundState }).playground = () => ({ ...state });

const boxes = new Map<Section, HTMLInputElement>();
function buildControls(): void {
  const wanted = params.get('sections')?.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = wanted?.filter((s) => !(s in KERNEL_SUITES));
  if (bad?.length) say(`sections: ${bad.join(', ')} not runnable here (kernel sections: ${Object.keys(KERNEL_SUITES).join(', ')})`, true);
  for (const s of SECTIONS) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    if (KERNEL_SUITES[s]) {
      box.checked = wanted ? wanted.includes(s) : true;
      boxes.set(s, box);
    } else {
      box.disabled = true;
      label.className = 'off';
      label.title = NODE_ONLY[s] ?? '';
    }
    label.append(box, ` ${s}`);
    $('sections').append(label);
  }
  $('skipped').textContent = `Not in the playground: ${Object.entries(NODE_ONLY).map(([s, why]) => `${s} (${why})`).join('; ')}: run them with \`npm run bench\`. ${PEER_MISSING}: the tfjs columns are empty.`;
  $<HTMLInputElement>('full').checked = params.get('full') === '1';
}

function say(msg: string, error = false): void {
  const el = $('status');
  el.textContent = msg;
  el.className = error ? 'error' : '';
}

const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));

/** Runs the checked sections and renders the table; the JSON report is kept for download. */
async function runBench(): Promise<void> {
  const sections = [...boxes].filter(([, b]) => b.checked).map(([s]) => s);
  if (!sections.length) return say('no section checked', true);
  const quick = !$<HTMLInputElement>('full').checked;
  const itersParam = params.get('iters');
  const iters = itersParam ? Number(itersParam) : undefined;
  if (iters !== undefined && !(Number.isInteger(iters) && iters > 0)) return say(`iters: ${itersParam} is not a positive integer`, true);
  Object.assign(state, { running: true, done: false, error: null, report: null });
  ($('run') as HTMLButtonElement).disabled = true;
  ($('download') as HTMLButtonElement).disabled = true;
  $('table').textContent = '';
  $('notes').textContent = '';
  const log = $('log');
  log.textContent = '';
  const started = new Date();
  const t0 = performance.now();
  let gpu: Gpu | null = null;
  try {
    if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu): use Chrome or Edge 113+');
    gpu = await Gpu.create();
    const device = gpu.describe();
    state.adapter = device;
    $('adapter').textContent = `adapter: ${device}`;
    const progress = (msg: string) => {
      const line = `[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}`;
      log.textContent += line + '\n';
      log.scrollTop = log.scrollHeight;
      say(msg);
    };
    const budget = budgetOf(quick, iters);
    const ctx: Ctx = { gpu, peer: null, peerMissing: PEER_MISSING, budget, quick, rows: [], progress };
    for (const s of sections) {
      // A frame between sections; within one, every measurement awaits the GPU, which lets
      // the page repaint the progress lines.
      await nextFrame();
      progress(`section ${s}`);
      try {
        await KERNEL_SUITES[s]!(ctx);
      } catch (e) {
        progress(`section ${s} failed: ${(e as Error).message}`);
        const row = newRow({ section: s, op: s, shape: '', variant: '', metric: 'GB/s', work: 0 });
        row.error = (e as Error).message;
        ctx.rows.push(row);
      }
      state.rows = ctx.rows.length;
      $('table').textContent = render(ctx.rows);
    }
    const table = render(ctx.rows);
    const tg = targets(ctx.rows);
    const ourClock = gpu.canProfile ? 'timestamp queries (kernel time, summed over the dispatches of one call)' : 'wall time (no timestamp-query on this device)';
    $('table').textContent = table;
    $('notes').textContent = notes(ourClock, tg);
    state.table = table;
    const date = started.toISOString();
    const i = gpu.adapterInfo;
    const name = `playground-${(i.description || i.vendor || 'gpu').toLowerCase().replace(/[^\w.-]+/g, '-')}-${date.slice(0, 16).replace(/[:T]/g, '-')}`;
    // The fields of bench/run.ts's report; those a page cannot know are null (node, load
    // average), and `browser` says where it ran.
    const report = {
      name,
      date,
      node: null,
      browser: navigator.userAgent,
      platform: navigator.platform,
      cores: navigator.hardwareConcurrency ?? null,
      loadAverage: null,
      device,
      adapterInfo: { vendor: i.vendor, architecture: i.architecture, description: i.description, device: i.device },
      clocks: { ours: ourClock, peer: 'n/a' },
      peer: { missing: PEER_MISSING },
      options: { quick, only: sections, iters: iters ?? null, budget },
      targets: tg,
      rows: ctx.rows,
      seconds: +((performance.now() - t0) / 1000).toFixed(1),
    };
    state.report = JSON.stringify(report, null, 2) + '\n';
    ($('download') as HTMLButtonElement).disabled = false;
    const failed = ctx.rows.filter((r: Row) => r.error).length;
    say(`done: ${ctx.rows.length} rows in ${report.seconds} s${failed ? `, ${failed} failed` : ''}`, failed > 0);
  } catch (e) {
    state.error = (e as Error).message;
    say(`the run failed: ${state.error}`, true);
  } finally {
    gpu?.destroy();
    state.running = false;
    state.done = true;
    ($('run') as HTMLButtonElement).disabled = false;
  }
}

/** The explanation lines and targets printed under the table by bench/run.ts. */
function notes(ourClock: string, tg: Target[]): string {
  const lines = [
    `clock: ${ourClock}. "ms" uses the row's clock; "wall ms" = loop of calls + full sync, divided.`,
    ...RATE_AND_CHECK_NOTES,
    '"of roof" = rate / the best roofline row of its metric (GFLOP/s: FMA peak, GB/s: copy; the load-rate rows: their best), measured in this run (check the roofline section).',
    'Medians; other work on the machine (other tabs too) slows the kernels, so numbers move run to run.',
  ];
  if (tg.length) {
    lines.push('', 'targets:');
    for (const t of tg) lines.push(targetLine(t));
  }
  return lines.join('\n');
}

function download(): void {
  if (!state.report) return;
  const name = (JSON.parse(state.report) as { name: string }).name;
  const url = URL.createObjectURL(new Blob([state.report], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `${name}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

buildControls();
$('run').addEventListener('click', () => void runBench());
$('download').addEventListener('click', download);
document.body.dataset.ready = 'true';
if (params.get('run') === '1') void runBench();
