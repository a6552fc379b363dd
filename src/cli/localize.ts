import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { embedScan, embedTokenIds, localizeSnippet } from '../model/tasks.ts';
import { binToSourceVoxel } from '../data/radfinder-prep.ts';
import { binMm } from '../model/config.ts';
import { TOKENIZER_FOR_TEXT, openWeights, readCt, round, textRows, warnTruncated } from './infer.ts';

const usage = `usage: ctvlm localize --weights W --ct FILE (--text "..."... | --ids FILE) [--json]

Which depth of the CT a sentence refers to (RadFinder's intra-scan localization): per
12 mm depth bin the cosine of the bin's embedding (projection_image_copy) and the
sentence's (projection_text_copy), the probabilities softmax(cos / tau) over the bins, the
predicted bin (argmax), its depth in mm from the crop's first slice, and the slice index in
the original file at the bin's centre.

options:
  --weights W    a RadFinder weights folder or a run folder of \`ctvlm train\`
  --ct FILE      a CT: .nii / .nii.gz, or a DICOM folder
  --text "..."   a sentence (repeatable)
  --ids FILE     token ids instead: a JSON list of lists, each ending with the EOS id
  --json         print JSON (default: a table)`;

export const command: Command = {
  name: 'localize',
  summary: 'which depth of a CT a sentence refers to',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { weights: { type: 'string' }, ct: { type: 'string' }, text: { type: 'string', multiple: true }, ids: { type: 'string' }, json: { type: 'boolean' } } });
    if (!a.weights || !a.ct) throw new UsageError('--weights and --ct are required');
    if (!a.text && !a.ids) throw new UsageError('give --text or --ids');
    const gpu = await Gpu.create();
    try {
      const w = await openWeights(gpu, a.weights, a.text?.length ? TOKENIZER_FOR_TEXT : undefined, { ct: a.ct, texts: a.text });
      const ct = await readCt(w, a.ct);
      const { rows, texts } = await textRows(w, a.text, a.ids);
      const scan = await embedScan(w.model, ct.input.data, ct.input.shape);
      const snippets = await embedTokenIds(w.model, rows, w.maxTextTokens, { which: 'snippet', onTruncate: warnTruncated(w.maxTextTokens) });
      const bmm = binMm(w.config);
      const results = snippets.map((s, i) => {
        const l = localizeSnippet(scan.depth.normalized, scan.depth.valid, s.snippet.normalized, w.config.localization.tau, bmm);
        const src = binToSourceVoxel(ct.input, ct.volume, l.bin, w.config.vision.patch[2]);
        const dcm = ct.volume.dicomSlices?.[src.slice];
        return {
          text: texts[i],
          ids_index: i,
          bin: l.bin,
          depthMm: (l.bin + 0.5) * bmm,
          expectedMm: round(l.expectedMm),
          slice: src.slice,
          // The release counts every bin of a scan valid, the zero padding of a scan shorter than a
          // window included: a bin there is past the scan's end, and its slice only the nearest.
          insideScan: src.voxel[2] >= -0.5 && src.voxel[2] <= ct.volume.shape[2] - 0.5,
          // DICOM: the slice as the series numbers it (InstanceNumber, and frame of a multi-frame file).
          ...(ct.volume.dicomSlices ? { instanceNumber: dcm?.instanceNumber ?? null, frame: dcm?.frame ?? null } : {}),
          world: src.world.map((v) => round(v)),
          probabilities: l.probabilities,
          cosine: l.cosine,
        };
      });
      if (a.json) process.stdout.write(JSON.stringify({ file: a.ct, grid: scan.grid, bins: scan.depth.raw.length, binMm: bmm, localize: results }) + '\n');
      else {
        const dicom = ct.volume.dicomSlices ? ' (DICOM: the series sorted along its slice normal), with its InstanceNumber' : '';
        console.log(`${a.ct}: ${scan.depth.raw.length} depth bins of ${bmm} mm (window grid ${scan.grid.join('x')}); slice = index along the file's third axis${dicom}`);
        for (const r of results) {
          const top = [...r.probabilities.keys()].sort((x, y) => r.probabilities[y] - r.probabilities[x]).slice(0, 3);
          const named = 'instanceNumber' in r ? `, ${r.frame !== null && r.frame !== undefined ? `frame ${r.frame}` : `InstanceNumber ${r.instanceNumber ?? '?'}`}` : '';
          const past = r.insideScan ? '' : ', past the scan: padding, nearest slice';
          console.log(`bin ${r.bin} (${r.depthMm} mm, slice ${r.slice}${named}${past})  p ${r.probabilities[r.bin].toFixed(3)}  next: ${top.slice(1).map((b) => `${b} (${r.probabilities[b].toFixed(3)})`).join(', ')}  ${r.text ?? `ids[${r.ids_index}]`}`);
        }
      }
      w.model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
