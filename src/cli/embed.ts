import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { embedScan, embedTokenIds } from '../model/tasks.ts';
import { TOKENIZER_FOR_TEXT, openWeights, readCt, textRows, warnTruncated } from './infer.ts';
import { halfBits, windowsOf } from '../data/radfinder-prep.ts';

const usage = `usage: ctvlm embed --weights W [--ct FILE] [--text "..."]... [--ids FILE] [--out FILE]

Prints (as JSON on stdout, or to --out) every embedding RadFinder gives, raw and
L2-normalised: for the CT, image (projection_image, retrieval), disease
(projection_image_copy) and one per 12 mm depth bin with the valid mask; for each text or
token-id row, report (projection_text: reports and prompts) and snippet
(projection_text_copy: sentences to localize).

options:
  --weights W    a RadFinder weights folder (config.json, model.safetensors, tokenizer.json)
                 or a run folder of \`ctvlm train\` (its latest checkpoint)
  --ct FILE      a CT: .nii / .nii.gz, or a DICOM folder (values in HU)
  --text "..."   a text (repeatable); needs the folder's tokenizer.json
  --ids FILE     token ids instead of text: a JSON list of lists, each ending with the EOS id
  --out FILE     write the JSON there instead of stdout
  --dump-windows FILE
                 also write the preprocessed CT as RadFinder's pixel_values: raw little-endian
                 float16, windows (N, w0, w1, w2) in (x, y, z) window order, depth fastest`;

export const command: Command = {
  name: 'embed',
  summary: 'embeddings of a CT and/or texts (RadFinder weights or a run)',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { weights: { type: 'string' }, ct: { type: 'string' }, text: { type: 'string', multiple: true }, ids: { type: 'string' }, out: { type: 'string' }, 'dump-windows': { type: 'string' } } });
    if (!a.weights) throw new UsageError('--weights is required');
    if (!a.ct && !a.text && !a.ids) throw new UsageError('give --ct, --text or --ids');
    // Before the model runs: a folder that does not exist would fail only at the write.
    for (const [flag, f] of [['out', a.out], ['dump-windows', a['dump-windows']]] as const)
      if (f && !existsSync(dirname(resolve(f)))) throw new UsageError(`--${flag}: the folder of ${f} does not exist`);
    const gpu = await Gpu.create();
    try {
      const w = await openWeights(gpu, a.weights, a.text?.length ? TOKENIZER_FOR_TEXT : undefined, { ct: a.ct, texts: a.text });
      const out: Record<string, unknown> = { weights: w.dir };
      if (a.ct) {
        const ct = await readCt(w, a.ct);
        if (a['dump-windows']) await writeFile(a['dump-windows'], new Uint8Array(Uint16Array.from(windowsOf(ct.input, w.config.vision.window), halfBits).buffer));
        const s = await embedScan(w.model, ct.input.data, ct.input.shape);
        out.image = { file: a.ct, ...s };
      }
      const { rows, texts } = await textRows(w, a.text, a.ids);
      if (rows.length) {
        const e = await embedTokenIds(w.model, rows, w.maxTextTokens, { onTruncate: warnTruncated(w.maxTextTokens) });
        out.texts = e.map((t, i) => (texts[i] === null ? t : { text: texts[i], ...t }));
      }
      const json = JSON.stringify(out);
      if (a.out) await writeFile(a.out, json);
      else process.stdout.write(json + '\n');
      w.model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
