import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCliArgs, numberOption, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { dot, embedScan, embedTokenIds } from '../model/tasks.ts';
import { readManifestFile, resolveVolumePath } from '../data/manifest.ts';
import { existsSync } from 'node:fs';
import { TOKENIZER_FOR_TEXT, openWeights, readCt, round, textRows, warnTruncated } from './infer.ts';
import { Progress } from './progress.ts';

const usage = `usage: ctvlm retrieve --weights W --cts DIR_OR_MANIFEST (--text "..." | --ids FILE) [--top K] [--json]

Ranks CTs for a report (RadFinder's text-to-image retrieval): cosine of each CT's image
embedding (projection_image) and the report's (projection_text).

options:
  --weights W          a RadFinder weights folder or a run folder
  --cts DIR|MANIFEST   a folder of .nii / .nii.gz files (and DICOM series folders), a
                       manifest.jsonl, or a dataset folder holding one
  --text "..."         the report (or --ids FILE: one row of token ids)
  --top K              print the best K (default all)
  --json               print JSON`;

async function listCts(path: string): Promise<{ id: string; file: string }[]> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DataError(path, 'cts', 'no such file or folder');
  }
  if (!st.isDirectory()) {
    const entries = await readManifestFile(path);
    return entries.map((e) => ({ id: e.id, file: resolveVolumePath(path, e) }));
  }
  // A dataset folder (what `ctvlm data synth` and `quickstart` write): its manifest.
  const manifest = join(path, 'manifest.jsonl');
  if (existsSync(manifest)) return listCts(manifest);
  const out: { id: string; file: string }[] = [];
  for (const name of (await readdir(path)).sort()) {
    const p = join(path, name);
    if (/\.nii(\.gz)?$/i.test(name)) out.push({ id: name.replace(/\.nii(\.gz)?$/i, ''), file: p });
    else if ((await stat(p)).isDirectory()) out.push({ id: name, file: p });
  }
  if (out.length === 0) throw new DataError(path, 'cts', 'holds no .nii / .nii.gz files or DICOM folders');
  return out;
}

export const command: Command = {
  name: 'retrieve',
  summary: 'rank CTs for a report',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { weights: { type: 'string' }, cts: { type: 'string' }, text: { type: 'string', multiple: true }, ids: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' } } });
    if (!a.weights || !a.cts) throw new UsageError('--weights and --cts are required');
    const top = numberOption(a.top, 'top', true);
    if (top === 0) throw new UsageError('--top: expected a positive integer (leave it out for every CT)');
    const cts = await listCts(a.cts);
    const gpu = await Gpu.create();
    try {
      const w = await openWeights(gpu, a.weights, a.text?.length ? TOKENIZER_FOR_TEXT : undefined, { texts: a.text });
      const { rows } = await textRows(w, a.text, a.ids);
      if (rows.length !== 1) throw new UsageError('give one report: one --text, or an --ids file with one row');
      const [report] = await embedTokenIds(w.model, rows, w.maxTextTokens, { which: 'report', onTruncate: warnTruncated(w.maxTextTokens) });
      // Every CT is embedded on each call (no cache): a manifest's cases of all splits.
      const bar = new Progress(cts.length, `embedding ${cts.length} CTs`);
      const ranked: { id: string; file: string; cosine: number }[] = [];
      for (const c of cts) {
        const ct = await readCt(w, c.file);
        const s = await embedScan(w.model, ct.input.data, ct.input.shape);
        ranked.push({ ...c, cosine: dot(s.image.normalized, report.report.normalized) });
        bar.tick(1, c.id);
      }
      bar.finish();
      ranked.sort((x, y) => y.cosine - x.cosine);
      const shown = ranked.slice(0, top ?? ranked.length);
      if (a.json) process.stdout.write(JSON.stringify({ ranking: shown.map((r, i) => ({ rank: i + 1, ...r, cosine: round(r.cosine) })) }) + '\n');
      else {
        console.log(`rank  cosine (image vs report embedding)  case  file`);
        shown.forEach((r, i) => console.log(`${String(i + 1).padStart(4)}  ${r.cosine.toFixed(6)}  ${r.id}  ${r.file}`));
      }
      w.model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
