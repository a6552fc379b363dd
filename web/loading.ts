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

/** Sorts picked files: a weights folder, manifests, NIfTI files, DICOM folders. */
export function sortPicked(files: PickedFile[]): Sorted {
  const full = (f: PickedFile) => f.path || f.file.name;
  const visible = files.filter((f) => !hidden(full(f)));
  if (visible.some((f) => base(full(f)) === 'model.safetensors'))
    return { weights: visible.filter((f) => /\.(json|safetensors)$|^latest$/.test(base(full(f)))), manifests: [], cts: [] };
  const out: Sorted = { weights: null, manifests: [], cts: [] };
  const folders = new Map<string, PickedFile[]>();
  const loose: PickedFile[] = [];
  for (const f of visible) {
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
