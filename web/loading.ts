// Files into the page: file pickers, folder pickers and drag and drop (folders too, where the
// browser hands them over as entries), sorted into what they are: a weights folder, manifests
// (slice metadata for NIfTI files), NIfTI files (one CT each) and DICOM folders (one CT per
// folder). Nothing is read here; the worker reads the bytes.
import type { PickedFile } from './protocol.ts';

export interface Sorted {
  /** The files of a weights folder or a run folder, when the drop holds model.safetensors. */
  weights: PickedFile[] | null;
  manifests: File[];
  cts: { name: string; files: PickedFile[] }[];
  /** Files of a weights pick that are neither the model's nor a CT's nor a run folder's own. */
  skipped: string[];
}

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Files of an <input type=file> (with their folder paths when it is a folder picker). */
export function fromInput(list: FileList | null): PickedFile[] {
  return Array.from(list ?? [], (file) => ({ path: file.webkitRelativePath || '', file }));
}

/** Files of a drop, walking dropped folders (Chromium, Firefox and Safari give entries). */
export async function fromDrop(dt: DataTransfer): Promise<PickedFile[]> {
  const entries = Array.from(dt.items ?? [])
    .map((it) => (it.kind === 'file' ? it.webkitGetAsEntry?.() : null))
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return Array.from(dt.files, (file) => ({ path: '', file }));
  const out: PickedFile[] = [];
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    if (e.isFile) {
      const file = await new Promise<File>((ok, fail) => (e as FileSystemFileEntry).file(ok, fail));
      out.push({ path: prefix ? `${prefix}/${e.name}` : '', file });
      return;
    }
    const reader = (e as FileSystemDirectoryEntry).createReader();
    const dir = prefix ? `${prefix}/${e.name}` : e.name;
    // readEntries answers in batches (100 in Chromium) until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
      if (batch.length === 0) break;
      for (const c of batch) await walk(c, dir);
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

const hidden = (p: string) => p.split('/').some((s) => s.startsWith('.')) || /^(Thumbs\.db|DICOMDIR|desktop\.ini)$/i.test(base(p));

const isWeightsFile = (name: string) => /\.(json|safetensors)$|^latest$/.test(name);
// What else a run folder of `ctvlm train` holds (metrics, plots, the report, the lock).
const isRunFile = (name: string) => /^metrics\.jsonl$|\.(svg|html|lock|md|txt|csv|log)$/i.test(name);
const dirOf = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf('/')));

/**
 * Sorts picked files: a weights folder (when the pick holds model.safetensors), manifests,
 * NIfTI files, DICOM folders (one CT per folder). A pick may hold a model and CTs together;
 * in such a pick, folders that hold the model's files are not DICOM series, and other files
 * are listed in `skipped`.
 */
export function sortPicked(files: PickedFile[]): Sorted {
  const full = (f: PickedFile) => f.path || f.file.name;
  const visible = files.filter((f) => !hidden(full(f)));
  const hasModel = visible.some((f) => base(full(f)) === 'model.safetensors');
  const out: Sorted = { weights: null, manifests: [], cts: [], skipped: [] };
  let rest = visible;
  if (hasModel) {
    // The model's folders: those holding model.safetensors, and run folders (a `latest` file)
    // with everything under them (checkpoints, evaluations, plots). A .json elsewhere (a DICOM
    // series' sidecar, say) is not the model's.
    const modelDirs = new Set(visible.filter((f) => base(full(f)) === 'model.safetensors').map((f) => dirOf(full(f))));
    const runDirs = visible.filter((f) => base(full(f)) === 'latest').map((f) => dirOf(full(f)));
    const inRun = (p: string) => runDirs.some((d) => d === '' ? !p.includes('/') : p.startsWith(`${d}/`));
    const ofModel = (f: PickedFile) => modelDirs.has(dirOf(full(f))) || inRun(full(f));
    out.weights = visible.filter((f) => isWeightsFile(base(full(f))) && ofModel(f));
    rest = visible.filter((f) => {
      const name = base(full(f));
      // Plots, reports, logs and metrics are never a CT's.
      if (isRunFile(name) || (ofModel(f) && isWeightsFile(name))) return false;
      if (/\.(nii|nii\.gz|jsonl)$/i.test(name)) return true;
      // A file beside the model's (or loose) is not part of a DICOM series folder.
      if (!f.path || ofModel(f)) {
        out.skipped.push(full(f));
        return false;
      }
      return true;
    });
  }
  const folders = new Map<string, PickedFile[]>();
  const loose: PickedFile[] = [];
  for (const f of rest) {
    const name = base(full(f));
    if (/\.jsonl$/i.test(name)) out.manifests.push(f.file);
    else if (/\.nii(\.gz)?$/i.test(name)) out.cts.push({ name, files: [f] });
    else if (!f.path) loose.push(f);
    else {
      // One CT per folder: a DICOM series' files sit together.
      const dir = f.path.slice(0, f.path.lastIndexOf('/'));
      folders.set(dir, [...(folders.get(dir) ?? []), f]);
    }
  }
  for (const [dir, fs] of folders) out.cts.push({ name: dir, files: fs });
  // Loose files other than NIfTI: the slices of one DICOM series chosen together.
  if (loose.length === 1) out.cts.push({ name: loose[0].file.name, files: loose });
  else if (loose.length > 1) out.cts.push({ name: `${loose.length} DICOM files`, files: loose });
  return out;
}

/** A URL's bytes as a File (the `ct=` and `manifest=` page parameters). */
export async function fetchFile(url: string): Promise<File> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  return new File([await res.blob()], decodeURIComponent(base(new URL(url, location.href).pathname)));
}
