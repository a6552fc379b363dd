// The page: its state (the model, the loaded CTs, the shown one), the controls, and the calls
// into the model worker. Heavy work never runs here: decoding, resampling and the model run in
// the worker (web/worker.ts); the page draws. A failed load leaves everything loaded before as
// it was.
import type { SeriesMeta } from '../src/data/manifest.ts';
import { spacingFromAffine, type Volume } from '../src/data/volume.ts';
import { ModelClient } from './client.ts';
import { PRESETS } from './geometry.ts';
import { fetchFile, fromDrop, fromInput, sortPicked, type Sorted } from './loading.ts';
import { h, renderLocalization, renderRanking, renderScans, renderScores, renderSnippets, type ScanRow } from './panels.ts';
import type { DecodedCt, LocalizeResult, ModelInfo, PickedFile, PreparedGeometry, Progress, SnippetResult, ZeroShotScore } from './protocol.ts';
import { Viewer } from './viewer.ts';

interface Scan extends ScanRow {
  volume: Volume;
  series: SeriesMeta | null;
  notes: string[];
  geometry: PreparedGeometry | null;
  localization: LocalizeResult | null;
  scores: ZeroShotScore[] | null;
}

/** What the page shows, for scripts and the browser test (window.demo()). */
export interface DemoState {
  device: string | null;
  model: ModelInfo | null;
  scans: { name: string; state: string; series: boolean; shape: number[] }[];
  active: string | null;
  localization: LocalizeResult | null;
  scores: ZeroShotScore[] | null;
  ranking: { name: string; cosine: number }[] | null;
  report: SnippetResult[] | null;
  messages: { text: string; error: boolean }[];
  /** The cross-reference point, the window, and the overlay: the crop's bins on the strip and the band's bin. */
  viewer: { cursor: number[]; window: { width: number; level: number }; stripBins: number | null; band: number | null };
  busy: number;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export class App {
  private readonly client: ModelClient;
  private readonly viewer: Viewer;
  private device: string | null = null;
  private model: ModelInfo | null = null;
  private scans: Scan[] = [];
  private active: Scan | null = null;
  private nextId = 1;
  private seriesByName = new Map<string, SeriesMeta>();
  private ranking: DemoState['ranking'] = null;
  private report: SnippetResult[] | null = null;
  private messages: DemoState['messages'] = [];

  constructor(worker: Worker) {
    this.client = new ModelClient(worker);
    this.client.onBusy = (busy, p) => this.showProgress(busy, p);
    this.viewer = new Viewer($('viewer'));
    this.viewer.onWindow = (w) => ($('wl').textContent = `W ${w.width} / L ${w.level}`);
    this.viewer.onWindow(this.viewer.wl);
    this.wire();
    (window as unknown as { demo: () => DemoState }).demo = () => this.state();
  }

  private state(): DemoState {
    return {
      device: this.device,
      model: this.model,
      scans: this.scans.map((s) => ({ name: s.name, state: s.state, series: !!s.series, shape: [...s.volume.shape] })),
      active: this.active?.name ?? null,
      localization: this.active?.localization ?? null,
      scores: this.active?.scores ?? null,
      ranking: this.ranking,
      report: this.report,
      messages: this.messages,
      viewer: { cursor: [...this.viewer.cursor], window: { ...this.viewer.wl }, stripBins: this.viewer.overlay.geometry?.bins ?? null, band: this.viewer.overlay.bin },
      busy: this.client.busy,
    };
  }

  /** A line in the status box (and the log); errors in red. */
  say(text: string, error = false): void {
    this.messages = [...this.messages.slice(-19), { text, error }];
    const s = $('status');
    s.textContent = text;
    s.className = error ? 'error' : '';
    $('log').prepend(h('li', { cls: error ? 'error' : '', text }));
    while ($('log').children.length > 8) $('log').lastChild!.remove();
  }

  private showProgress(busy: number, p: Progress | null): void {
    document.body.dataset.busy = String(busy);
    const bar = $<HTMLProgressElement>('progress');
    bar.hidden = busy === 0;
    if (p) {
      $('progressLabel').textContent = p.label;
      if (p.total > 0) (bar.max = p.total), (bar.value = p.done);
      else bar.removeAttribute('value');
    } else if (busy === 0) $('progressLabel').textContent = '';
    for (const id of ['localize', 'report', 'retrieve']) $<HTMLButtonElement>(id).disabled = !this.model || !this.active || this.active.state !== 'ready';
  }

  private wire(): void {
    const picked = (id: string, use: (f: PickedFile[]) => Promise<void>) =>
      $<HTMLInputElement>(id).addEventListener('change', async (ev) => {
        const input = ev.target as HTMLInputElement;
        await use(fromInput(input.files));
        input.value = ''; // the same file again is a new change
      });
    // Whichever picker a folder comes through, a model and CTs in it are both loaded; a pick
    // for the model without model.safetensors goes to the model's loader, which names what is missing.
    const forModel = async (f: PickedFile[]) => {
      const s = sortPicked(f);
      await (s.weights ? this.loadPicked(s) : this.loadWeights({ files: f }));
    };
    picked('weightsFiles', forModel);
    picked('weightsFolder', forModel);
    picked('ctFiles', (f) => this.loadPicked(sortPicked(f)));
    picked('ctFolder', (f) => this.loadPicked(sortPicked(f)));
    $('localize').addEventListener('click', () => void this.localize());
    $('report').addEventListener('click', () => void this.runReport());
    $('retrieve').addEventListener('click', () => void this.retrieve());
    for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('[data-preset]'))) b.addEventListener('click', () => this.viewer.setWindow(PRESETS[b.dataset.preset!]));
    // Drops anywhere on the page: a weights folder, CT files or folders, manifests.
    document.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      document.body.classList.add('dragging');
    });
    document.addEventListener('dragleave', (ev) => {
      if (!ev.relatedTarget) document.body.classList.remove('dragging');
    });
    document.addEventListener('drop', async (ev) => {
      ev.preventDefault();
      document.body.classList.remove('dragging');
      if (!ev.dataTransfer) return;
      try {
        await this.loadPicked(sortPicked(await fromDrop(ev.dataTransfer)));
      } catch (e) {
        this.say(`the drop could not be read: ${(e as Error).message}`, true);
      }
    });
  }

  async start(): Promise<void> {
    const init = await this.client.call('init', {});
    this.device = init.device;
    if (init.device) this.say(`WebGPU: ${init.device}. Load a model and one or more CTs (pickers, or drop files and folders on the page).`);
    else this.say(`${/^no WebGPU adapter/.test(init.error ?? '') ? '' : 'WebGPU: '}${init.error}. The viewer works without it; the model's tasks need WebGPU.`, true);
    $('device').textContent = init.device ?? 'no WebGPU';
    const q = new URLSearchParams(location.search);
    const weights = q.get('weights');
    if (weights) await this.loadWeights({ url: weights }, q.get('weightsName') ?? undefined);
    for (const m of q.getAll('manifest')) await this.guard(`manifest ${m}`, async () => this.loadManifest(await fetchFile(m)));
    const cts: Sorted['cts'] = [];
    for (const url of q.getAll('ct'))
      await this.guard(`CT ${url}`, async () => {
        const file = await fetchFile(url);
        cts.push({ name: file.name, files: [{ path: '', file }] });
      });
    await this.loadSorted({ weights: null, manifests: [], cts, skipped: [] });
    const text = q.get('q');
    if (text) {
      $<HTMLTextAreaElement>('sentence').value = text;
      await this.localize();
    }
    document.body.dataset.ready = 'true';
  }

  /** Runs f; a failure becomes a message (nothing loaded is touched). */
  private async guard<T>(what: string, f: () => Promise<T>): Promise<T | null> {
    try {
      return await f();
    } catch (e) {
      const msg = (e as Error).message;
      // Errors about a file already name it (DataError: "file: field: ..."); say it once.
      this.say(msg.startsWith(`${what}:`) ? msg : `${what}: ${msg}`, true);
      return null;
    }
  }

  /** Loads a model (files picked or dropped, or a folder the server serves, named `label`). */
  async loadWeights(arg: { files: PickedFile[] } | { url: string }, label?: string): Promise<void> {
    const info = await this.guard('weights', () => this.client.call('weights', arg));
    if (!info) return;
    this.model = info;
    $('modelInfo').textContent = `${label ?? info.name}: ${(info.parameters / 1e6).toFixed(2)} M parameters (${info.dtypes}), ${info.tokenizer} tokenizer, voxels ${info.pixdim.join(' x ')} mm, depth bins of ${info.binMm} mm`;
    this.say(`model loaded: ${(info.parameters / 1e6).toFixed(2)} M parameters`);
    // Embeddings of the previous model are gone with it.
    for (const s of this.scans) Object.assign(s, { state: 'viewing', geometry: null, localization: null, scores: null });
    this.ranking = null;
    this.report = null;
    $('ranking').replaceChildren();
    $('snippets').replaceChildren();
    this.showScan();
    this.refresh();
    for (const s of [...this.scans]) await this.embed(s);
  }

  private async loadManifest(file: File): Promise<void> {
    const r = await this.client.call('manifest', { file });
    for (const [k, v] of Object.entries(r.series)) this.seriesByName.set(k, v);
    let matched = 0;
    for (const s of this.scans) if (!s.series && (s.series = this.seriesOf(s.name))) matched++;
    this.say(`${file.name}: ${r.entries} cases, ${r.withSeries} with slice metadata${matched ? `; ${matched} loaded CT(s) matched` : ''}`);
  }

  private seriesOf(name: string): SeriesMeta | null {
    const base = name.slice(name.lastIndexOf('/') + 1);
    return this.seriesByName.get(base) ?? this.seriesByName.get(base.replace(/\.nii(\.gz)?$/i, '')) ?? null;
  }

  /** A pick or a drop: its model first (so that its CTs are embedded with it), then its CTs. */
  async loadPicked(sorted: Sorted): Promise<void> {
    if (sorted.weights) await this.loadWeights({ files: sorted.weights });
    if (sorted.skipped.length) {
      const n = sorted.skipped.length;
      this.say(`skipped ${n} file(s) beside the model that are neither weights nor CTs: ${sorted.skipped.slice(0, 3).join(', ')}${n > 3 ? ', ...' : ''}`);
    }
    await this.loadSorted(sorted);
  }

  async loadSorted(sorted: Sorted): Promise<void> {
    for (const m of sorted.manifests) await this.guard(m.name, () => this.loadManifest(m));
    for (const ct of sorted.cts) {
      const d = await this.guard(ct.name, () => this.client.call('decode', ct));
      if (d) await this.addScan(d);
    }
  }

  private async addScan(d: DecodedCt): Promise<void> {
    const volume: Volume = { data: d.data, shape: d.shape, affine: d.affine, spacing: spacingFromAffine(d.affine) };
    const scan: Scan = {
      id: this.nextId++,
      name: d.name,
      detail: `${d.shape.join('x')} voxels of ${volume.spacing.map((x) => x.toFixed(2)).join(' x ')} mm; ${d.description}`,
      state: 'viewing',
      volume,
      series: d.series ?? this.seriesOf(d.name),
      notes: d.notes,
      geometry: null,
      localization: null,
      scores: null,
    };
    this.scans.push(scan);
    this.say(`${d.name}: ${scan.detail}${d.notes.length ? `. Note: ${d.notes.join('; ')}` : ''}`);
    this.setActive(scan);
    await this.embed(scan);
  }

  private async embed(s: Scan): Promise<void> {
    if (!this.model || !this.device) return;
    s.state = 'embedding';
    this.refresh();
    // A copy goes to the worker: the page keeps its voxels for display.
    const r = await this.guard(s.name, () => this.client.call('embed', { id: s.id, name: s.name, volume: { data: s.volume.data, shape: s.volume.shape, affine: Float64Array.from(s.volume.affine as ArrayLike<number>) } }));
    if (!this.scans.includes(s)) return;
    s.state = r ? 'ready' : 'failed';
    s.geometry = r?.geometry ?? null;
    if (r) this.say(`${s.name}: embedded (${r.geometry.bins} depth bins of ${r.geometry.binMm} mm) in ${(r.ms / 1000).toFixed(1)} s`);
    this.refresh();
    if (s !== this.active) return;
    this.showScan(); // the crop's bins on the strip
    await this.classify(s);
  }

  private setActive(s: Scan | null): void {
    this.active = s;
    this.viewer.show(s?.volume ?? null);
    this.report = null;
    $('snippets').replaceChildren();
    this.showScan();
    this.refresh();
    if (s && s.state === 'ready' && !s.scores) void this.classify(s);
  }

  /** The overlay and the panels of the active scan. */
  private showScan(): void {
    const s = this.active;
    const o = this.viewer.overlay;
    o.geometry = s?.geometry ?? null;
    o.probabilities = s?.localization?.probabilities ?? null;
    o.bin = s?.localization?.bin ?? null;
    o.markers = [];
    this.viewer.redrawOverlay();
    if (s?.localization && this.model) renderLocalization($('result'), s.localization, this.model.binMm);
    else $('result').replaceChildren();
    if (s?.scores) renderScores($('scores'), s.scores);
    else $('scores').replaceChildren(h('li', { cls: 'hint', text: s ? 'scores appear once the CT is embedded' : '' }));
  }

  private refresh(): void {
    renderScans($('scans'), this.scans, this.active?.id ?? null, (id) => this.setActive(this.scans.find((s) => s.id === id) ?? null), (id) => void this.remove(id));
    this.showProgress(this.client.busy, null);
  }

  private async remove(id: number): Promise<void> {
    const s = this.scans.find((x) => x.id === id);
    if (!s) return;
    this.scans = this.scans.filter((x) => x !== s);
    if (this.active === s) this.setActive(this.scans[this.scans.length - 1] ?? null);
    this.refresh();
    await this.client.call('forget', { id });
  }

  private async classify(s: Scan): Promise<void> {
    const r = await this.guard('zero-shot', () => this.client.call('classify', { id: s.id }));
    if (!r) return;
    s.scores = r.scores;
    if (s === this.active) renderScores($('scores'), r.scores);
  }

  private text(): string {
    return $<HTMLTextAreaElement>('sentence').value;
  }

  async localize(): Promise<void> {
    const s = this.active;
    if (!s) return this.say('load a CT first', true);
    const r = await this.guard('localize', () => this.client.call('localize', { id: s.id, text: this.text() }));
    if (!r) return;
    s.localization = r;
    if (s !== this.active) return;
    this.showScan();
    this.viewer.jumpToBin(r.bin);
    document.body.dataset.state = 'localized';
  }

  async runReport(): Promise<void> {
    const s = this.active;
    if (!s) return this.say('load a CT first', true);
    const r = await this.guard('report', () => this.client.call('report', { id: s.id, text: this.text(), series: s.series }));
    if (!r || s !== this.active) return;
    this.report = r.snippets;
    const placed = r.snippets.filter((x) => 'bin' in x.referenced).length;
    this.say(`report: ${r.snippets.length} referenced sentence(s) localized${r.snippets.length ? `; ${placed} referenced slice(s) placed through ${s.series ? 'the series metadata' : '(no series metadata: load the DICOM folder, or a manifest.jsonl with the NIfTI)'}` : ''} in ${r.ms.toFixed(0)} ms`);
    renderSnippets($('snippets'), r.snippets, this.viewer, (sn) => this.pickSnippet(sn));
    if (r.snippets[0]) this.pickSnippet(r.snippets[0]);
  }

  private pickSnippet(sn: SnippetResult): void {
    const o = this.viewer.overlay;
    o.probabilities = sn.predicted.probabilities;
    o.bin = sn.predicted.bin;
    o.markers = 'z' in sn.referenced ? [{ z: sn.referenced.z, color: '#ff66cc', label: `image ${sn.image}` }] : [];
    this.viewer.redrawOverlay();
    this.viewer.jumpToZ(sn.predicted.worldZ);
  }

  async retrieve(): Promise<void> {
    const ready = this.scans.filter((s) => s.state === 'ready');
    if (ready.length === 0) return this.say('no embedded CT to rank', true);
    const r = await this.guard('retrieve', () => this.client.call('retrieve', { ids: ready.map((s) => s.id), text: this.text() }));
    if (!r) return;
    const ranked = r.cosines
      .map((c) => ({ ...c, name: this.scans.find((s) => s.id === c.id)?.name ?? '?' }))
      .sort((a, b) => b.cosine - a.cosine);
    this.ranking = ranked.map(({ name, cosine }) => ({ name, cosine }));
    renderRanking($('ranking'), ranked, (id) => this.setActive(this.scans.find((s) => s.id === id) ?? null));
    this.say(`ranked ${ranked.length} CT(s) for the text by cosine(image, report) in ${r.ms.toFixed(0)} ms`);
  }
}
