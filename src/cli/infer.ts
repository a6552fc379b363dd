// What the inference commands (embed, localize, classify, retrieve) share: opening W (a
// RadFinder weights folder or a run of ours), reading and preparing a CT as the model's
// configuration says, and turning texts or token-id files into token rows.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { CtvlmError, UsageError } from '../app-errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { openWeightsFolder, resolveWeightsFolder, type LoadedWeights } from '../model/folder.ts';
import { knowsNoWord, unusableText } from '../model/text.ts';
import { readCaseVolume } from '../data/dataset-volumes.ts';
import { prepareRadfinder, type RadfinderInput } from '../data/radfinder-prep.ts';
import type { Volume } from '../data/volume.ts';
import { Progress } from './progress.ts';

/**
 * Opens W with a progress bar. `needsTokenizer` (why the command needs tokenizer.json) makes a
 * folder without one fail before its weights are loaded (minutes for the released model).
 */
export async function openWeights(gpu: Gpu, path: string, needsTokenizer?: string, inputs: { ct?: string; texts?: string[] } = {}): Promise<LoadedWeights> {
  // The inputs' own faults before the weights load (minutes for the released model).
  if (inputs.ct !== undefined && !existsSync(inputs.ct)) throw new DataError(inputs.ct, 'file', 'no such file or folder (--ct takes a .nii / .nii.gz file or a DICOM folder)');
  if (inputs.texts) checkTexts(inputs.texts);
  if (needsTokenizer) {
    const f = await resolveWeightsFolder(path);
    if (!f.tokenizerPath) throw new DataError(f.dir, 'tokenizer.json', `missing: ${needsTokenizer}`);
  }
  let bar: Progress | null = null;
  const w = await openWeightsFolder(gpu, path, (done, total) => (bar ??= new Progress(total, `loading ${path}`)).update(done));
  bar ??= new Progress(0, `loading ${path}`);
  const dt = Object.entries(w.report.dtypes).map(([k, n]) => `${n} ${k}`).join(', ');
  bar.finish(`${(w.model.parameterCount() / 1e6).toFixed(2)} M trainable parameters; tensors ${dt}${w.report.ignored ? `; ${w.report.ignored} LoRA tensors ignored` : ''}`);
  return w;
}

export interface PreparedCt {
  file: string;
  volume: Volume;
  input: RadfinderInput;
}

/** Reads a CT (NIfTI file or DICOM folder, in HU) and prepares it for the model of W. */
export async function readCt(w: LoadedWeights, file: string): Promise<PreparedCt> {
  const volume = await readCaseVolume(file, {});
  const c = w.config;
  const input = prepareRadfinder(volume, { pixdim: c.preprocessing.pixdim, window: c.vision.window, patchDepth: c.vision.patch[2], huMin: c.preprocessing.huMin, huMax: c.preprocessing.huMax, dtype: c.preprocessing.dtype }, file);
  return { file, volume, input };
}

/** --ids FILE: a JSON list of lists of token ids (each ending with the EOS id). */
export async function readIdsFile(path: string, vocab: number, eos: number): Promise<number[][]> {
  let rows: unknown;
  try {
    rows = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new DataError(path, 'ids', `not a JSON list of lists of token ids (${(e as Error).message})`);
  }
  if (!Array.isArray(rows) || rows.length === 0) throw new DataError(path, 'ids', 'expected a non-empty JSON list of lists of token ids');
  return rows.map((r, i) => {
    if (!Array.isArray(r) || r.length === 0 || r.some((x) => !Number.isInteger(x) || x < 0 || x >= vocab))
      throw new DataError(path, `ids[${i}]`, `expected a non-empty list of integers in [0, ${vocab})`);
    if (r[r.length - 1] !== eos) process.stderr.write(`${path}: ids[${i}] does not end with the EOS id ${eos}; its last token is pooled as given\n`);
    return r as number[];
  });
}

/** Why --text needs tokenizer.json (openWeights' needsTokenizer, textRows). */
export const TOKENIZER_FOR_TEXT = 'this weights folder has no tokenizer; pass token ids with --ids FILE';

/** Token rows from --text (repeatable) or --ids. */
export async function textRows(w: LoadedWeights, texts: string[] | undefined, idsFile: string | undefined): Promise<{ rows: number[][]; texts: (string | null)[] }> {
  if (texts?.length && idsFile) throw new UsageError('give --text or --ids, not both');
  if (idsFile) {
    const rows = await readIdsFile(idsFile, w.config.text.vocabSize, w.config.text.eosTokenId);
    return { rows, texts: rows.map(() => null) };
  }
  if (!texts?.length) return { rows: [], texts: [] };
  if (!w.tokenizer) throw new DataError(w.dir, 'tokenizer.json', `missing: ${TOKENIZER_FOR_TEXT}`);
  checkTexts(texts);
  const rows = texts.map((t, i) => {
    const ids = w.tokenizer!.encode(t);
    if (knowsNoWord(w.tokenizer!, ids))
      throw new CtvlmError(`${textFlag(texts, i)}: no word of "${t.length > 60 ? `${t.slice(0, 57)}...` : t}" is in the model's vocabulary (every token is [UNK]); give English report wording`);
    return ids;
  });
  return { rows, texts };
}

/** `--text`, or `--text (the 2. one)` among several. */
const textFlag = (texts: readonly string[], i: number) => `--text${texts.length > 1 ? ` (the ${i + 1}. one)` : ''}`;

/** Refuses an empty or word-less --text (unusableText) in one line naming which one. */
function checkTexts(texts: readonly string[]): void {
  texts.forEach((t, i) => {
    const why = unusableText(t);
    if (why) throw new CtvlmError(`${textFlag(texts, i)} ${why.replace('type a', 'give a')}`);
  });
}

/** Tells on stderr that a text was cut to the model's limit. */
export function warnTruncated(limit: number): (t: { index: number; tokens: number }) => void {
  return (t) => process.stderr.write(`text ${t.index + 1}: ${t.tokens} tokens, truncated to the model's limit of ${limit} (the EOS kept)\n`);
}

export const round = (v: number, digits = 7): number => Number(v.toPrecision(digits));
