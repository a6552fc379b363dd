// The result panels: the loaded CTs, the localization of a sentence, the zero-shot scores of
// the 18 findings, the retrieval ranking and a report's references. Built with DOM nodes and
// textContent (file names and typed text are never parsed as HTML).
import type { LocalizeResult, SnippetResult, ZeroShotScore } from './protocol.ts';
import type { Viewer } from './viewer.ts';

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: { cls?: string; text?: string; title?: string } = {}, ...kids: (Node | null)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.cls) e.className = props.cls;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title) e.title = props.title;
  for (const k of kids) if (k) e.appendChild(k);
  return e;
}

export interface ScanRow {
  id: number;
  name: string;
  detail: string;
  state: 'viewing' | 'embedding' | 'ready' | 'failed';
}

export function renderScans(root: HTMLElement, scans: ScanRow[], active: number | null, pick: (id: number) => void, remove: (id: number) => void): void {
  root.replaceChildren(
    ...scans.map((s) => {
      const row = h('li', { cls: `scan${s.id === active ? ' active' : ''}`, title: s.detail }, h('span', { cls: 'name', text: s.name }), h('span', { cls: `state ${s.state}`, text: s.state === 'ready' ? 'embedded' : s.state }));
      const x = h('button', { cls: 'remove', text: '×', title: 'remove this CT' });
      x.addEventListener('click', (ev) => {
        ev.stopPropagation();
        remove(s.id);
      });
      row.appendChild(x);
      row.addEventListener('click', () => pick(s.id));
      return row;
    }),
  );
  if (scans.length === 0) root.replaceChildren(h('li', { cls: 'hint', text: 'no CT yet: choose or drop .nii / .nii.gz files or a DICOM folder' }));
}

export function renderLocalization(root: HTMLElement, r: LocalizeResult, binMm: number): void {
  const p = r.probabilities[r.bin];
  const quoted = r.sentence.length > 90 ? `${r.sentence.slice(0, 87)}...` : r.sentence;
  // The sentence answered: the text box may hold another text by now (a report, a ranking's).
  root.replaceChildren(
    h('div', { cls: 'answered' }, h('q', { text: quoted, title: r.sentence })),
    h('div', { text: 'Most likely depth: ' }, h('b', { text: `bin ${r.bin}` }), document.createTextNode(` (${(r.bin * binMm).toFixed(0)}-${((r.bin + 1) * binMm).toFixed(0)} mm from the crop's lowest slice, world z ${r.worldZ.toFixed(1)} mm), probability ${(100 * p).toFixed(0)}%; expected depth ${r.expectedMm.toFixed(0)} mm.`)),
    h('div', { cls: 'dim', text: `${r.ms.toFixed(0)} ms; the band and the strip on the coronal and sagittal views show it; click the strip to see another bin's slice.` }),
  );
}

/** The 18 zero-shot scores as bars, highest first. */
export function renderScores(root: HTMLElement, scores: ZeroShotScore[]): void {
  const sorted = [...scores].sort((a, b) => b.score - a.score);
  root.replaceChildren(
    ...sorted.map((s) => {
      const bar = h('span', { cls: `bar${s.score >= 0.5 ? ' pos' : ''}` });
      bar.style.width = `${(100 * s.score).toFixed(1)}%`;
      return h('li', { title: `${s.label}: sigmoid(cos_pos - cos_neg) = ${s.score.toFixed(4)}` }, h('span', { cls: 'label', text: s.label }), h('span', { cls: 'track' }, bar), h('span', { cls: 'num', text: s.score.toFixed(3) }));
    }),
  );
}

export function renderRanking(root: HTMLElement, ranked: { id: number; name: string; cosine: number }[], pick: (id: number) => void): void {
  root.replaceChildren(
    ...ranked.map((r, i) => {
      const li = h('li', {}, h('span', { cls: 'num', text: `${i + 1}.` }), h('span', { cls: 'name', text: r.name }), h('span', { cls: 'num', text: r.cosine.toFixed(4) }));
      li.addEventListener('click', () => pick(r.id));
      return li;
    }),
  );
}

/**
 * A report's references: per mined sentence the predicted bin and, where the series metadata
 * places the referenced image, that slice beside the predicted one.
 */
export function renderSnippets(root: HTMLElement, snippets: SnippetResult[], viewer: Viewer, pick: (s: SnippetResult) => void): void {
  if (snippets.length === 0) {
    root.replaceChildren(h('div', { cls: 'dim', text: 'No image references ("series 3, image 45", "(7:200)", ...) found in the text.' }));
    return;
  }
  root.replaceChildren(
    ...snippets.map((s) => {
      const pred = s.predicted;
      const ref = 'bin' in s.referenced ? s.referenced : null;
      const agree = ref ? (ref.bin === pred.bin ? 'same bin' : `${Math.abs(ref.bin - pred.bin)} bin(s) apart`) : '';
      const thumbs = h('div', { cls: 'thumbs' });
      const thumb = (z: number, label: string) => {
        const c = h('canvas');
        const slice = viewer.drawAxialAt(z, c, 110);
        thumbs.appendChild(h('figure', {}, c, h('figcaption', { text: `${label}${slice !== null ? `, slice ${slice + 1}` : ''}` })));
      };
      if (ref) thumb(ref.z, `referenced (image ${s.image})`);
      thumb(pred.worldZ, `predicted (bin ${pred.bin})`);
      const li = h(
        'li',
        { cls: 'snippet' },
        h('div', {}, h('q', { text: s.sentence }), h('span', { cls: 'ref', text: ` ${s.ref}` })),
        h('div', { cls: 'dim', text: `predicted bin ${pred.bin} (p ${(100 * pred.probabilities[pred.bin]).toFixed(0)}%)${ref ? `; referenced bin ${ref.bin} at z ${ref.z.toFixed(1)} mm: ${agree}` : `; referenced slice not placed (${'reason' in s.referenced ? s.referenced.reason : ''})`}` }),
        thumbs,
      );
      li.addEventListener('click', () => pick(s));
      return li;
    }),
  );
}
