// The messages between the page (web/app.ts) and the model worker (web/worker.ts). The worker
// owns the WebGPU device, the model and every scan's embeddings, and does the heavy CPU work
// (gunzip, DICOM parsing, resampling), so the page stays responsive; the page owns the CT
// voxels it displays. One table (Ops) types every request and its answer.
import type { SeriesMeta } from '../src/data/manifest.ts';
import type { Vec3 } from '../src/data/volume.ts';

/** A file as picked or dropped, with its path inside a dropped folder ('' for a loose file). */
export interface PickedFile {
  path: string;
  file: File;
}

/** A CT volume crossing the thread boundary: HU voxels, x fastest, RAS+ affine (column-major). */
export interface VolumeMsg {
  data: Float32Array;
  shape: Vec3;
  affine: Float64Array;
}

export interface DecodedCt extends VolumeMsg {
  name: string;
  /** E.g. 'NIfTI-1 int16, LPS' or 'DICOM series 3, 120 slices'. */
  description: string;
  /** Slice metadata of a DICOM series (image number -> z), for a report's "series 3, image 45". */
  series: SeriesMeta | null;
  /** Things the user should know (other series in the folder, skipped files, odd HU range). */
  notes: string[];
}

/** Where the model's crop lies: what the page needs to draw depth bins in world coordinates. */
export interface PreparedGeometry {
  /** Crop voxel -> world (RAS mm), column-major 4x4. */
  affine: number[];
  shape: Vec3;
  bins: number;
  patchDepth: number;
  binMm: number;
}

export interface ModelInfo {
  name: string;
  parameters: number;
  /** The weight file's tensor dtypes and counts, e.g. '120 F32'. */
  dtypes: string;
  tokenizer: 'wordpiece' | 'huggingface';
  pixdim: Vec3;
  binMm: number;
  tau: number;
}

export interface LocalizeResult {
  sentence: string;
  probabilities: number[];
  cosine: number[];
  bin: number;
  expectedMm: number;
  /** World z (RAS mm) of the predicted bin's centre. */
  worldZ: number;
  ms: number;
}

export interface ZeroShotScore {
  label: string;
  /** sigmoid(cos_pos - cos_neg): ranks cases, not a calibrated probability. */
  score: number;
}

export interface SnippetResult {
  sentence: string;
  /** The reference as written, e.g. "(series 3, image 45)". */
  ref: string;
  series: number | null;
  image: number;
  predicted: LocalizeResult;
  /** The referenced image's slice through the series metadata, or why it cannot be placed. */
  referenced: { z: number; bin: number } | { reason: string };
}

export interface Ops {
  init: [Record<string, never>, { device: string | null; error: string | null }];
  weights: [{ files: PickedFile[] } | { url: string }, ModelInfo];
  decode: [{ name: string; files: PickedFile[] }, DecodedCt];
  embed: [{ id: number; volume: VolumeMsg; name: string }, { geometry: PreparedGeometry; ms: number }];
  forget: [{ id: number }, null];
  localize: [{ id: number; text: string }, LocalizeResult];
  classify: [{ id: number }, { scores: ZeroShotScore[]; ms: number }];
  retrieve: [{ ids: number[]; text: string }, { cosines: { id: number; cosine: number }[]; ms: number }];
  report: [{ id: number; text: string; series: SeriesMeta | null }, { snippets: SnippetResult[]; ms: number }];
  manifest: [{ file: File }, { series: Record<string, SeriesMeta>; entries: number; withSeries: number }];
}

export type Op = keyof Ops;

export interface Request<K extends Op = Op> {
  id: number;
  op: K;
  arg: Ops[K][0];
}

export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string }
  | { id: number; progress: Progress };

export interface Progress {
  label: string;
  /** done / total, or total 0 for work of unknown length. */
  done: number;
  total: number;
}
