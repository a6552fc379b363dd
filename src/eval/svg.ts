// Small inline-SVG charts for the run report (no dependency, no script, no external
// reference): line charts, ROC curves, scatter plots, bars with interval whiskers, and a
// forest plot. Each returns an <svg> element as a string, without an xmlns (it is inlined
// in HTML); pass `standalone` for a file of its own.

export const PALETTE = { test: '#1f5fa8', train: '#e07b12', chance: '#444', grid: '#e6e6e6', axis: '#777', ok: '#2a8a3e', bad: '#b3261e' };
const SERIES = ['#1f5fa8', '#e07b12', '#2a8a3e', '#b3261e', '#7b4ea3', '#8c564b', '#17becf'];

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const f1 = (v: number) => v.toFixed(1);

export interface Margins { left: number; right: number; top: number; bottom: number }

export interface AxisOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  logY?: boolean;
  /** Fixed ranges (default: the data's, padded). */
  x?: [number, number];
  y?: [number, number];
  /** Tick label formatters. */
  xFmt?: (v: number) => string;
  yFmt?: (v: number) => string;
  margins?: Partial<Margins>;
  standalone?: boolean;
  /** Draw horizontal grid lines and y tick labels (default true). */
  yTicks?: boolean;
  /** Draw vertical grid lines and x tick labels (default true). */
  xTicks?: boolean;
  /** Integer x values (training steps): integer ticks only. */
  integerX?: boolean;
  /** Font size of tick labels (title and axis labels scale with it). */
  fontSize?: number;
  /** A legend row under the title. */
  legend?: LegendItem[];
  /** Clip the body to the plot area (default true; off where marks sit on the frame, e.g. ROC at TPR 1). */
  clip?: boolean;
}

export interface LegendItem { name: string; color: string; dash?: string; kind?: 'line' | 'dot' | 'bar' }

export function niceTicks(lo: number, hi: number, n = 5, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  for (let want = n; want <= n + 6; want++) {
    let step = 10 ** Math.floor(Math.log10((hi - lo) / want));
    const mult = [1, 2, 2.5, 5, 10].find((m) => (hi - lo) / (step * m) <= want) ?? 10;
    step *= mult;
    if (integer) step = Math.max(1, Math.round(step));
    const out: number[] = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
    if (out.length >= 2 || integer) return out;
  }
  return [lo, hi];
}

function logTicks(lo: number, hi: number): number[] {
  // lo, hi in log10 units.
  const out: number[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
    for (const m of hi - lo > 2.5 ? [1] : hi - lo > 1 ? [1, 3] : [1, 2, 5]) {
      const v = Math.log10(m) + e;
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  return out.length >= 2 ? out : niceTicks(lo, hi, 4);
}

export const fmtNum = (v: number) => {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(+v.toPrecision(3));
};

/** A plot frame: scales, grid, ticks, axis labels and title; `body` is drawn clipped to the plot area. */
export class Frame {
  readonly W: number;
  readonly H: number;
  readonly m: Margins;
  x0: number; x1: number; y0: number; y1: number;
  private readonly o: AxisOptions;
  private static ids = 0;
  readonly clip = `c${Frame.ids++}`;

  constructor(o: AxisOptions, xs: number[], ys: number[]) {
    this.o = o;
    this.W = o.width ?? 560;
    this.H = o.height ?? 300;
    const fs = o.fontSize ?? 12;
    this.m = { left: 10 + fs * 5, right: 14, top: 12 + fs * 2.2, bottom: 14 + fs * 2.6, ...o.margins };
    if (o.legend?.length) this.m.top += fs + 8;
    const tyv = (v: number) => (o.logY ? Math.log10(v) : v);
    const gx = xs.filter(Number.isFinite), gy = ys.filter((v) => Number.isFinite(v) && (!o.logY || v > 0)).map(tyv);
    [this.x0, this.x1] = o.x ?? (gx.length ? [Math.min(...gx), Math.max(...gx)] : [0, 1]);
    [this.y0, this.y1] = o.y ? [tyv(o.y[0]), tyv(o.y[1])] : gy.length ? [Math.min(...gy), Math.max(...gy)] : [0, 1];
    if (!(this.x1 > this.x0)) [this.x0, this.x1] = [this.x0 - 0.5, this.x0 + 0.5];
    if (!(this.y1 > this.y0)) [this.y0, this.y1] = o.logY ? [this.y0 - 0.5, this.y0 + 0.5] : [this.y0 - Math.max(0.5, Math.abs(this.y0) * 0.1), this.y0 + Math.max(0.5, Math.abs(this.y0) * 0.1)];
    if (!o.y) {
      const pad = (this.y1 - this.y0) * 0.06;
      this.y0 -= pad;
      this.y1 += pad;
    }
  }

  px = (x: number) => this.m.left + ((x - this.x0) / (this.x1 - this.x0)) * (this.W - this.m.left - this.m.right);
  py = (y: number) => {
    const t = this.o.logY ? Math.log10(y) : y;
    return this.H - this.m.bottom - ((t - this.y0) / (this.y1 - this.y0)) * (this.H - this.m.top - this.m.bottom);
  };
  get plotW() { return this.W - this.m.left - this.m.right; }
  get plotH() { return this.H - this.m.top - this.m.bottom; }

  render(body: string[], overlay: string[] = []): string {
    const o = this.o, W = this.W, H = this.H, m = this.m;
    const fs = o.fontSize ?? 12;
    const out = [
      `<svg ${o.standalone ? 'xmlns="http://www.w3.org/2000/svg" ' : ''}width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="${fs}" role="img" aria-label="${esc(o.title)}">`,
      `<title>${esc(o.title)}</title>`,
      `<rect width="${W}" height="${H}" fill="white"/>`,
      `<defs><clipPath id="${this.clip}"><rect x="${m.left}" y="${m.top}" width="${this.plotW}" height="${this.plotH}"/></clipPath></defs>`,
      titleText(o.title, 10, fs + 6, fs + 2, W - 14),
    ];
    if (o.legend?.length) out.push(...legend(o.legend, 10, 2 * fs + 14, fs));
    const xf = o.xFmt ?? fmtNum, yf = o.yFmt ?? fmtNum;
    for (const t of o.xTicks === false ? [] : niceTicks(this.x0, this.x1, Math.max(3, Math.floor(this.plotW / 52)), o.integerX)) {
      const x = this.px(t);
      out.push(`<line x1="${f1(x)}" y1="${m.top}" x2="${f1(x)}" y2="${H - m.bottom}" stroke="${PALETTE.grid}"/>`,
        `<text x="${f1(x)}" y="${H - m.bottom + fs + 3}" text-anchor="middle" fill="#333">${esc(xf(t))}</text>`);
    }
    const yt = o.yTicks === false ? [] : o.logY ? logTicks(this.y0, this.y1) : niceTicks(this.y0, this.y1, Math.max(3, Math.floor(this.plotH / 40)));
    for (const t of yt) {
      const v = o.logY ? 10 ** t : t;
      const y = this.py(v);
      out.push(`<line x1="${m.left}" y1="${f1(y)}" x2="${W - m.right}" y2="${f1(y)}" stroke="${PALETTE.grid}"/>`,
        `<text x="${m.left - 5}" y="${f1(y + fs / 3)}" text-anchor="end" fill="#333">${esc(yf(v))}</text>`);
    }
    out.push(o.clip === false ? '<g>' : `<g clip-path="url(#${this.clip})">`, ...body, '</g>', ...overlay);
    out.push(`<rect x="${m.left}" y="${m.top}" width="${this.plotW}" height="${this.plotH}" fill="none" stroke="${PALETTE.axis}"/>`);
    out.push(`<text x="${f1(m.left + this.plotW / 2)}" y="${H - 6}" text-anchor="middle" fill="#222">${esc(o.xLabel)}</text>`);
    out.push(`<text transform="translate(${fs + 2} ${f1(m.top + this.plotH / 2)}) rotate(-90)" text-anchor="middle" fill="#222">${esc(o.yLabel)}</text>`);
    out.push('</svg>');
    return out.join('\n');
  }
}

/** An empty panel with a message (no data for this plot). */
export function emptyChart(title: string, message: string, width = 560, height = 300): string {
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="${esc(title)}"><rect width="${width}" height="${height}" fill="#fafafa" stroke="#ddd"/><text x="12" y="22" font-size="14" font-weight="600">${esc(title)}</text><text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">${esc(message)}</text></svg>`;
}

export interface LineSeries {
  name: string;
  points: [number, number][];
  color?: string;
  /** Draw a moving average over the raw line (the raw line is then faint). */
  smooth?: boolean;
  dash?: string;
}

/** Width of a text in px, roughly (sans-serif, average glyph 0.56 em). */
const textWidth = (t: string, fs: number) => t.length * fs * 0.56;

/** A bold title, squeezed to `max` px when it would be wider. */
function titleText(t: string, x: number, y: number, fs: number, max: number): string {
  const fit = textWidth(t, fs) * 1.06 > max ? ` textLength="${f1(max)}" lengthAdjust="spacingAndGlyphs"` : '';
  return `<text x="${x}" y="${y}" font-size="${fs}" font-weight="600" fill="#222"${fit}>${esc(t)}</text>`;
}

/** A row of legend entries starting at (x, y), left to right. */
function legend(items: LegendItem[], x: number, y: number, fs: number): string[] {
  const out: string[] = [];
  let cx = x;
  for (const it of items) {
    const sym =
      it.kind === 'dot' ? `<circle cx="${f1(cx + 6)}" cy="${f1(y - fs / 3)}" r="4.5" fill="${it.color}"/>`
        : it.kind === 'bar' ? `<rect x="${f1(cx)}" y="${f1(y - fs * 0.8)}" width="13" height="${f1(fs * 0.85)}" fill="${it.color}"/>`
          : `<line x1="${f1(cx)}" y1="${f1(y - fs / 3)}" x2="${f1(cx + 18)}" y2="${f1(y - fs / 3)}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`;
    const tx = cx + (it.kind === 'dot' || it.kind === 'bar' ? 17 : 23);
    out.push(sym, `<text x="${f1(tx)}" y="${f1(y)}" fill="#222">${esc(it.name)}</text>`);
    cx = tx + textWidth(it.name, fs) + 16;
  }
  return out;
}

function movingAverage(points: [number, number][], window: number): [number, number][] {
  const out: [number, number][] = [];
  let s = 0;
  const q: number[] = [];
  for (const [x, y] of points) {
    q.push(y);
    s += y;
    if (q.length > window) s -= q.shift()!;
    out.push([x, s / q.length]);
  }
  return out;
}

/** Line chart of one or more series (a legend above the plot when there are several). */
export function lineChart(series: LineSeries[], o: AxisOptions): string {
  const good = series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0)) })).filter((s) => s.points.length);
  if (good.length === 0) return emptyChart(o.title, 'no data', o.width, o.height);
  // A legend when there are several series (a single series is named by the title).
  const leg = good.length > 1 ? good.map((s, i) => ({ name: s.name, color: s.color ?? SERIES[i % SERIES.length], dash: s.dash })) : undefined;
  const fr = new Frame({ ...o, legend: o.legend ?? leg }, good.flatMap((s) => s.points.map((p) => p[0])), good.flatMap((s) => s.points.map((p) => p[1])));
  const body: string[] = [];
  good.forEach((s, i) => {
    const color = s.color ?? SERIES[i % SERIES.length];
    const path = (pts: [number, number][]) => pts.map(([x, y]) => `${f1(fr.px(x))},${f1(fr.py(y))}`).join(' ');
    const smooth = s.smooth && s.points.length >= 12;
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="${smooth ? 1 : 2}"${smooth ? ' stroke-opacity="0.35"' : ''}${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${path(s.points)}"/>`);
    if (smooth) body.push(`<polyline fill="none" stroke="${color}" stroke-width="2.2" points="${path(movingAverage(s.points, Math.max(3, Math.round(s.points.length / 15))))}"/>`);
    if (s.points.length === 1) body.push(`<circle cx="${f1(fr.px(s.points[0][0]))}" cy="${f1(fr.py(s.points[0][1]))}" r="3" fill="${color}"/>`);
  });
  return fr.render(body);
}

/** ROC points (FPR, TPR) of scores against 0/1 labels (unknown labels left out); ties make diagonal steps. */
export function rocPoints(scores: readonly number[], labels: readonly number[]): [number, number][] {
  const pairs = scores.map((s, i) => [s, labels[i]] as [number, number]).filter(([s, l]) => (l === 0 || l === 1) && Number.isFinite(s));
  const P = pairs.filter(([, l]) => l === 1).length, N = pairs.length - P;
  if (P === 0 || N === 0) return [];
  pairs.sort((a, b) => b[0] - a[0]);
  const pts: [number, number][] = [[0, 0]];
  let tp = 0, fp = 0;
  for (let i = 0; i < pairs.length; ) {
    let j = i;
    while (j < pairs.length && pairs[j][0] === pairs[i][0]) {
      if (pairs[j][1] === 1) tp++;
      else fp++;
      j++;
    }
    pts.push([fp / N, tp / P]);
    i = j;
  }
  return pts;
}

export interface RocCurve { name: string; points: [number, number][]; color: string }

/** A small ROC panel: curves, the chance diagonal, false- / true-positive-rate axes. */
export function rocChart(curves: RocCurve[], o: { title: string; lines?: { text: string; color: string }[]; width?: number; height?: number }): string {
  const W = o.width ?? 240, H = o.height ?? 250;
  const nl = o.lines?.length ?? 0;
  const fr = new Frame({ title: o.title, xLabel: 'false-positive rate', yLabel: 'true-positive rate', width: W, height: H, x: [0, 1], y: [0, 1], fontSize: 10.5, margins: { left: 40, top: 26 + 13 * nl, bottom: 32, right: 10 }, clip: false, xFmt: (v) => (v === 0 || v === 1 ? String(v) : v.toFixed(1)), yFmt: (v) => (v === 0 || v === 1 ? String(v) : v.toFixed(1)) }, [0, 1], [0, 1]);
  const body = [`<line x1="${fr.px(0)}" y1="${fr.py(0)}" x2="${fr.px(1)}" y2="${fr.py(1)}" stroke="${PALETTE.chance}" stroke-dasharray="4 3" stroke-width="1"/>`];
  for (const c of curves)
    if (c.points.length) body.push(`<polyline fill="none" stroke="${c.color}" stroke-width="2" points="${c.points.map(([x, y]) => `${f1(fr.px(x))},${f1(fr.py(y))}`).join(' ')}"/>`);
  const overlay: string[] = [];
  (o.lines ?? []).forEach((l, i) => overlay.push(`<text x="10" y="${31 + 13 * i}" font-size="10.5" fill="${l.color}">${esc(l.text)}</text>`));
  if (curves.every((c) => c.points.length === 0)) overlay.push(`<text x="${f1(fr.px(0.5))}" y="${f1(fr.py(0.82))}" text-anchor="middle" fill="#666">no positive or no negative case</text>`);
  return fr.render(body, overlay);
}

export interface ScatterSeries { name: string; points: [number, number][]; color: string }

/** Scatter with the y = x diagonal (prediction against truth); equal axes. */
export function scatterChart(series: ScatterSeries[], o: AxisOptions & { diagonal?: boolean }): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return emptyChart(o.title, 'no located snippets', o.width, o.height ?? o.width);
  const lo = Math.min(0, ...all.map((p) => Math.min(p[0], p[1])));
  const hi = Math.max(...all.map((p) => Math.max(p[0], p[1])));
  const range: [number, number] = [lo, hi + (hi - lo) * 0.04 || 1];
  const fr = new Frame({ ...o, x: o.x ?? range, y: o.y ?? range, legend: [...series.map((s) => ({ name: s.name, color: s.color, kind: 'dot' as const })), { name: 'perfect (y = x)', color: PALETTE.chance, dash: '4 3' }] }, [], []);
  const body: string[] = [];
  if (o.diagonal !== false) body.push(`<line x1="${f1(fr.px(fr.x0))}" y1="${f1(fr.py(fr.x0))}" x2="${f1(fr.px(fr.x1))}" y2="${f1(fr.py(fr.x1))}" stroke="${PALETTE.chance}" stroke-dasharray="4 3"/>`);
  const r = all.length > 400 ? 2.2 : 3;
  for (const s of series) for (const [x, y] of s.points) if (Number.isFinite(x) && Number.isFinite(y)) body.push(`<circle cx="${f1(fr.px(x))}" cy="${f1(fr.py(y))}" r="${r}" fill="${s.color}" fill-opacity="0.45"/>`);
  return fr.render(body);
}

export interface BarGroup {
  label: string;
  bars: { name: string; value: number; ci?: [number, number]; color: string }[];
  /** A reference value drawn across the group (chance), with its name in the legend. */
  reference?: number;
}

/** Grouped bars with interval whiskers and an optional reference tick per group. */
export function barChart(groups: BarGroup[], o: AxisOptions & { referenceName?: string }): string {
  const vals = groups.flatMap((g) => [...g.bars.flatMap((b) => [b.value, ...(b.ci ?? [])]), g.reference ?? NaN]).filter(Number.isFinite);
  if (vals.length === 0) return emptyChart(o.title, 'no data', o.width, o.height);
  const names = new Map<string, string>();
  for (const g of groups) for (const b of g.bars) names.set(b.name, b.color);
  const items: LegendItem[] = [...names].map(([name, color]) => ({ name, color, kind: 'bar' as const }));
  if (o.referenceName && groups.some((g) => g.reference !== undefined)) items.push({ name: o.referenceName, color: PALETTE.chance, dash: '5 3' });
  const fr = new Frame({ ...o, x: [0, groups.length], y: o.y ?? [0, Math.max(...vals) * 1.12 || 1], xTicks: false, legend: items }, [], []);
  const body: string[] = [];
  const overlay: string[] = [];
  const fs = o.fontSize ?? 12;
  groups.forEach((g, gi) => {
    const nb = Math.max(1, g.bars.length);
    const gw = fr.px(gi + 1) - fr.px(gi);
    const bw = Math.min(46, (gw * 0.7) / nb);
    const start = fr.px(gi) + (gw - bw * nb) / 2;
    g.bars.forEach((b, bi) => {
      const x = start + bi * bw;
      if (Number.isFinite(b.value)) {
        const y = fr.py(b.value), y0 = fr.py(Math.max(fr.y0, 0));
        body.push(`<rect x="${f1(x + 1)}" y="${f1(Math.min(y, y0))}" width="${f1(bw - 2)}" height="${f1(Math.abs(y0 - y))}" fill="${b.color}" fill-opacity="0.85"/>`);
        if (b.ci && Number.isFinite(b.ci[0]) && Number.isFinite(b.ci[1])) {
          const cx = x + bw / 2, ya = fr.py(b.ci[0]), yb = fr.py(b.ci[1]);
          body.push(`<line x1="${f1(cx)}" y1="${f1(ya)}" x2="${f1(cx)}" y2="${f1(yb)}" stroke="#111" stroke-width="1.5"/>`,
            `<line x1="${f1(cx - 5)}" y1="${f1(ya)}" x2="${f1(cx + 5)}" y2="${f1(ya)}" stroke="#111" stroke-width="1.5"/>`,
            `<line x1="${f1(cx - 5)}" y1="${f1(yb)}" x2="${f1(cx + 5)}" y2="${f1(yb)}" stroke="#111" stroke-width="1.5"/>`);
        }
      } else body.push(`<text x="${f1(x + bw / 2)}" y="${f1(fr.py(fr.y0) - 4)}" text-anchor="middle" font-size="${fs - 1}" fill="#666">n/a</text>`);
    });
    if (g.reference !== undefined && Number.isFinite(g.reference)) {
      const y = fr.py(g.reference);
      body.push(`<line x1="${f1(start - 6)}" y1="${f1(y)}" x2="${f1(start + bw * nb + 6)}" y2="${f1(y)}" stroke="${PALETTE.chance}" stroke-width="2" stroke-dasharray="5 3"/>`);
    }
    overlay.push(`<text x="${f1(fr.px(gi + 0.5))}" y="${f1(fr.H - fr.m.bottom + fs + 3)}" text-anchor="middle" fill="#222">${esc(g.label)}</text>`);
  });
  return fr.render(body, overlay);
}

export interface ForestRow { label: string; points: { name: string; value: number; ci?: [number, number]; color: string }[]; note?: string; bold?: boolean }

/** Horizontal interval plot: a row per item (label on the left), a dot and whisker per series, a reference line. */
export function forestChart(rows: ForestRow[], o: { title: string; xLabel: string; x: [number, number]; reference?: number; referenceName?: string; width?: number; labelWidth?: number; xFmt?: (v: number) => string }): string {
  const rowH = 22, fs = 12;
  const W = o.width ?? 640;
  const lw = o.labelWidth ?? 230;
  const sub = rows[0]?.points.length ?? 1;
  const H = 56 + rows.length * rowH + 40;
  const names = new Map<string, string>();
  for (const r of rows) for (const p of r.points) names.set(p.name, p.color);
  const items: LegendItem[] = [...names].map(([name, color]) => ({ name, color, kind: 'dot' as const }));
  if (o.reference !== undefined && o.referenceName) items.push({ name: o.referenceName, color: PALETTE.chance, dash: '5 3' });
  const fr = new Frame({ title: o.title, xLabel: o.xLabel, yLabel: '', width: W, height: H, x: o.x, y: [0, rows.length], margins: { left: lw, top: 36, bottom: 40, right: 16 }, xFmt: o.xFmt, yTicks: false, legend: items, clip: false }, [], []);
  const body: string[] = [];
  const overlay: string[] = [];
  if (o.reference !== undefined) body.push(`<line x1="${f1(fr.px(o.reference))}" y1="${fr.m.top}" x2="${f1(fr.px(o.reference))}" y2="${fr.H - fr.m.bottom}" stroke="${PALETTE.chance}" stroke-dasharray="5 3" stroke-width="1.5"/>`);
  rows.forEach((r, i) => {
    const yc = fr.m.top + (i + 0.5) * rowH;
    if (i % 2 === 0) body.unshift(`<rect x="${fr.m.left}" y="${f1(yc - rowH / 2)}" width="${fr.plotW}" height="${rowH}" fill="#f6f7f9"/>`);
    overlay.push(`<text x="${lw - 8}" y="${f1(yc + fs / 3)}" text-anchor="end" fill="#222"${r.bold ? ' font-weight="700"' : ''}>${esc(r.label)}${r.note ? ` <tspan fill="#777" font-size="${fs - 1.5}">${esc(r.note)}</tspan>` : ''}</text>`);
    r.points.forEach((p, k) => {
      const y = yc + (sub > 1 ? (k - (sub - 1) / 2) * 7 : 0);
      if (!Number.isFinite(p.value)) return;
      if (p.ci && Number.isFinite(p.ci[0]) && Number.isFinite(p.ci[1])) body.push(`<line x1="${f1(fr.px(p.ci[0]))}" y1="${f1(y)}" x2="${f1(fr.px(p.ci[1]))}" y2="${f1(y)}" stroke="${p.color}" stroke-width="2"/>`);
      body.push(`<circle cx="${f1(fr.px(p.value))}" cy="${f1(y)}" r="4" fill="${p.color}"/>`);
    });
  });
  return fr.render(body, overlay);
}
