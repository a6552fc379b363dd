// The three-plane CT viewer: axial, coronal and sagittal views of the volume at its own
// resolution (one canvas pixel per voxel, shown at the voxels' physical size), slice scrolling
// (wheel, arrow and page keys, sliders), window/level (presets and dragging), orientation
// letters from the affine, cross-reference lines (a click on one view moves the other two), and
// the model's depth band and probability strip on the coronal and sagittal views; a click on
// the strip moves the axial view to that bin.
import type { Vec3, Volume } from '../src/data/volume.ts';
import { binZRange, canonicalOf, DepthAxis, LAYOUT, planeMarks, planeSize, PLANES, PRESETS, renderPlane, type Canonical, type Plane, type WindowLevel } from './geometry.ts';
import { drawOverlay, STRIP_PX, stripBins, type OverlayState, type ViewFrame } from './overlay.ts';

interface ViewDom {
  plane: Plane;
  stage: HTMLElement;
  img: HTMLCanvasElement;
  ovl: HTMLCanvasElement;
  slider: HTMLInputElement;
  caption: HTMLElement;
  marks: Record<'left' | 'right' | 'top' | 'bottom', HTMLElement>;
  image: ImageData | null;
  frame: ViewFrame | null;
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent: HTMLElement): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  e.className = cls;
  parent.appendChild(e);
  return e;
};

export class Viewer {
  private vol: Volume | null = null;
  private can: Canonical | null = null;
  private depth: DepthAxis | null = null;
  private readonly views: Record<Plane, ViewDom>;
  private focus: Plane = 'axial';
  private pending = new Set<Plane>();
  private overlayPending = false;
  /** The cross-reference point: canonical (R, A, S) slice indices of the sagittal, coronal and axial views. */
  cursor: Vec3 = [0, 0, 0];
  wl: WindowLevel = { ...PRESETS.mediastinum };
  overlay: OverlayState = { geometry: null, probabilities: null, bin: null, markers: [] };
  onWindow: (w: WindowLevel) => void = () => {};

  constructor(private readonly root: HTMLElement) {
    this.views = Object.fromEntries(PLANES.map((p) => [p, this.makeView(p)])) as Record<Plane, ViewDom>;
    document.addEventListener('keydown', (ev) => this.onKey(ev));
    window.addEventListener('resize', () => this.layout());
  }

  private makeView(plane: Plane): ViewDom {
    const fig = el('figure', 'view', this.root);
    fig.id = `view-${plane}`;
    const stage = el('div', 'stage', fig);
    const img = el('canvas', 'img', stage);
    const ovl = el('canvas', 'ovl', stage);
    const marks = Object.fromEntries((['left', 'right', 'top', 'bottom'] as const).map((k) => [k, el('span', `mark ${k}`, stage)])) as ViewDom['marks'];
    const slider = el('input', 'slider', fig);
    slider.type = 'range';
    slider.min = '0';
    slider.setAttribute('aria-label', `${plane} slice`);
    const caption = el('figcaption', '', fig);
    caption.textContent = plane;
    const v: ViewDom = { plane, stage, img, ovl, slider, caption, marks, image: null, frame: null };
    slider.addEventListener('input', () => this.setSlice(plane, Number(slider.value)));
    ovl.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      this.focus = plane;
      this.step(plane, (ev.deltaY > 0 ? -1 : 1) * (ev.shiftKey ? 5 : 1));
    }, { passive: false });
    ovl.addEventListener('pointerenter', () => (this.focus = plane));
    this.dragging(v);
    return v;
  }

  /** A drag changes the window (horizontal: width, vertical: level); a click moves the cross-reference or, on the strip, the axial slice. */
  private dragging(v: ViewDom): void {
    let start: { x: number; y: number; w: WindowLevel; moved: boolean } | null = null;
    v.ovl.addEventListener('pointerdown', (ev) => {
      start = { x: ev.clientX, y: ev.clientY, w: { ...this.wl }, moved: false };
      v.ovl.setPointerCapture(ev.pointerId);
    });
    v.ovl.addEventListener('pointermove', (ev) => {
      if (!start) return;
      const dx = ev.clientX - start.x;
      const dy = ev.clientY - start.y;
      if (!start.moved && Math.hypot(dx, dy) < 4) return;
      start.moved = true;
      this.setWindow({ width: Math.max(1, Math.round(start.w.width + 4 * dx)), level: Math.round(start.w.level + 2 * dy) });
    });
    v.ovl.addEventListener('pointerup', (ev) => {
      const s = start;
      start = null;
      if (!s || s.moved || !v.frame || !this.can) return;
      const r = v.ovl.getBoundingClientRect();
      this.clickAt(v, ev.clientX - r.left, ev.clientY - r.top);
    });
  }

  private clickAt(v: ViewDom, x: number, y: number): void {
    const f = v.frame!;
    const c = this.can!;
    const L = LAYOUT[v.plane];
    if (v.plane !== 'axial' && this.overlay.geometry && x >= f.width - STRIP_PX) {
      const hit = stripBins(f, this.overlay.geometry).find((b) => y >= b.top && y < b.bottom);
      if (hit) this.jumpToBin(hit.bin);
      return;
    }
    const colIndex = c.n[L.col] - 1 - Math.floor((x / f.width) * c.n[L.col]);
    const rowIndex = c.n[L.row] - 1 - Math.floor((y / f.height) * c.n[L.row]);
    this.cursor[L.col] = Math.min(c.n[L.col] - 1, Math.max(0, colIndex));
    this.cursor[L.row] = Math.min(c.n[L.row] - 1, Math.max(0, rowIndex));
    this.changed(PLANES.filter((p) => p !== v.plane));
  }

  private onKey(ev: KeyboardEvent): void {
    const t = ev.target as HTMLElement | null;
    // Form fields keep their keys (a slider has its own arrows).
    if (!this.vol || (t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const steps: Record<string, number> = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1, PageUp: 10, PageDown: -10 };
    const presets: Record<string, string> = { '1': 'lung', '2': 'mediastinum', '3': 'bone' };
    if (ev.key in steps) {
      ev.preventDefault();
      this.step(this.focus, steps[ev.key]);
    } else if (ev.key in presets) this.setWindow(PRESETS[presets[ev.key]]);
  }

  /** Shows a volume (null: none), the cross-reference at its centre; the window is kept. */
  show(v: Volume | null): void {
    this.vol = v;
    this.can = v ? canonicalOf(v) : null;
    this.depth = v && this.can ? new DepthAxis(v, this.can) : null;
    this.cursor = this.can ? (this.can.n.map((n) => Math.floor(n / 2)) as Vec3) : [0, 0, 0];
    this.root.classList.toggle('empty', !v);
    this.layout();
  }

  get volume(): Volume | null {
    return this.vol;
  }

  /** Redraws the overlays after `overlay` changed. */
  redrawOverlay(): void {
    this.overlayPending = true;
    this.schedule();
  }

  setWindow(w: WindowLevel): void {
    this.wl = { ...w };
    this.onWindow(this.wl);
    this.changed(PLANES);
  }

  /** Moves the axial view to the slice at the centre of a depth bin of the model's crop. */
  jumpToBin(bin: number): void {
    const g = this.overlay.geometry;
    if (!g || !this.depth) return;
    const [lo, hi] = binZRange(g, bin);
    this.jumpToZ((lo + hi) / 2);
  }

  jumpToZ(z: number): void {
    if (!this.depth) return;
    this.setSlice('axial', this.depth.sliceOfZ(z));
  }

  /** The axial slice at world height z, drawn into `canvas` (a thumbnail at the current window). */
  drawAxialAt(z: number, canvas: HTMLCanvasElement, cssWidth: number): number | null {
    if (!this.vol || !this.can || !this.depth) return null;
    const s = this.depth.sliceOfZ(z);
    const size = planeSize(this.can, 'axial');
    canvas.width = size.cols;
    canvas.height = size.rows;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(size.cols, size.rows);
    renderPlane(this.vol.data, this.can, this.vol.shape, 'axial', s, this.wl, img.data);
    ctx.putImageData(img, 0, 0);
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${(cssWidth * size.rows * size.rowMm) / (size.cols * size.colMm)}px`;
    return s;
  }

  private setSlice(plane: Plane, index: number): void {
    if (!this.can) return;
    const a = LAYOUT[plane].fixed;
    this.cursor[a] = Math.min(this.can.n[a] - 1, Math.max(0, Math.round(index)));
    this.changed([plane]);
  }

  private step(plane: Plane, by: number): void {
    this.setSlice(plane, this.cursor[LAYOUT[plane].fixed] + by);
  }

  /** The planes whose image changed; every overlay follows the cursor. */
  private changed(planes: readonly Plane[]): void {
    for (const p of planes) this.pending.add(p);
    this.overlayPending = true;
    this.schedule();
  }

  private scheduled = false;
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const p of this.pending) this.renderImage(this.views[p]);
      this.pending.clear();
      if (this.overlayPending) for (const p of PLANES) this.renderOverlay(this.views[p]);
      this.overlayPending = false;
    });
  }

  /** Sizes the canvases: one pixel per voxel, shown at a common mm-to-pixel scale. */
  layout(): void {
    const v = this.vol;
    const c = this.can;
    if (!v || !c) {
      for (const p of PLANES) this.views[p].frame = null;
      return;
    }
    // Three views side by side with the flex gaps (12 px) and some slack for rounding.
    const avail = Math.max(160, Math.min(400, (this.root.clientWidth - 40) / 3));
    const scale = avail / Math.max(c.n[0] * c.mm[0], c.n[1] * c.mm[1], c.n[2] * c.mm[2]);
    const dpr = window.devicePixelRatio || 1;
    for (const p of PLANES) {
      const d = this.views[p];
      const s = planeSize(c, p);
      const L = LAYOUT[p];
      const width = Math.round(s.cols * s.colMm * scale);
      const height = Math.round(s.rows * s.rowMm * scale);
      d.img.width = s.cols;
      d.img.height = s.rows;
      d.image = d.img.getContext('2d')!.createImageData(s.cols, s.rows);
      for (const cv of [d.img, d.ovl]) (cv.style.width = `${width}px`), (cv.style.height = `${height}px`);
      d.ovl.width = Math.round(width * dpr);
      d.ovl.height = Math.round(height * dpr);
      d.slider.max = String(s.slices - 1);
      const m = planeMarks(v, c, p);
      for (const k of ['left', 'right', 'top', 'bottom'] as const) d.marks[k].textContent = m[k];
      const depth = this.depth!;
      d.frame = {
        plane: p,
        width,
        height,
        x: (i) => ((c.n[L.col] - 0.5 - i) * width) / c.n[L.col],
        y: (i) => ((c.n[L.row] - 0.5 - i) * height) / c.n[L.row],
        yOfZ: (z) => ((c.n[L.row] - 0.5 - depth.sOfZ(z)) * height) / c.n[L.row],
        cross: { col: 0, row: 0 },
      };
    }
    this.changed(PLANES);
  }

  private renderImage(d: ViewDom): void {
    if (!this.vol || !this.can || !d.image) return;
    const index = this.cursor[LAYOUT[d.plane].fixed];
    renderPlane(this.vol.data, this.can, this.vol.shape, d.plane, index, this.wl, d.image.data);
    d.img.getContext('2d')!.putImageData(d.image, 0, 0);
    d.slider.value = String(index);
    const n = this.can.n[LAYOUT[d.plane].fixed];
    const where = d.plane === 'axial' && this.depth ? `, z ${this.depth.zOfS(index).toFixed(1)} mm` : '';
    d.caption.textContent = `${d.plane} ${index + 1} / ${n}${where}`;
  }

  private renderOverlay(d: ViewDom): void {
    if (!d.frame) return;
    const L = LAYOUT[d.plane];
    d.frame.cross = { col: this.cursor[L.col], row: this.cursor[L.row] };
    const ctx = d.ovl.getContext('2d')!;
    const dpr = d.ovl.width / d.frame.width;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawOverlay(ctx, d.frame, this.overlay);
  }
}
