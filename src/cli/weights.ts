import { readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCliArgs, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { CtvlmError, UsageError } from '../app-errors.ts';
import { readJsonFile } from '../io/atomic.ts';
import { openSafetensors } from '../io/safetensors.ts';
import { fileSource } from '../model/folder.ts';
import { checkpointKeys, countValues } from '../model/keys.ts';
import { describeProblem, matchKeys } from '../model/weights.ts';
import { fromRadfinderJson, type RadFinderConfig } from '../model/config.ts';
import { modelPreset, MODEL_PRESETS } from '../train/config.ts';

const usage = `usage: ctvlm weights inspect FILE_OR_FOLDER [--preset paper|small|tiny | --config CONFIG.json] [--all]

Lists a safetensors file's tensors (key, shape, dtype) and checks them against a model
configuration: the config.json beside the file when there is one, else --preset (default
paper, the released RadFinder sizes) or --config. Reports missing, unexpected and mis-shaped
keys; LoRA tensors (lora_A / lora_B) are listed as ignored. Exit status 1 when they disagree.

options:
  --preset NAME     check against a preset's sizes (${Object.keys(MODEL_PRESETS).join(', ')})
  --config FILE     check against a RadFinder config.json
  --all             list every tensor (default: a summary per module and the problems)`;

export const command: Command = {
  name: 'weights inspect',
  summary: 'list a safetensors file and check it against a model configuration',
  usage,
  async run(argv) {
    const { values: a, positionals } = parseCliArgs({ args: argv, allowPositionals: true, options: { preset: { type: 'string' }, config: { type: 'string' }, all: { type: 'boolean' } } });
    let file = positionals[0];
    if (!file) throw new UsageError('give a safetensors file (or a weights folder)');
    if (existsSync(file) && statSync(file).isDirectory()) {
      // A run folder of `ctvlm train`: its latest checkpoint (a weights folder).
      const latest = join(file, 'latest');
      if (!existsSync(join(file, 'model.safetensors')) && existsSync(latest)) file = join(file, (await readFile(latest, 'utf8')).trim());
      file = join(file, 'model.safetensors');
    }
    if (!existsSync(file)) throw new DataError(file, 'file', 'no such file');
    let cfg: RadFinderConfig;
    let against: string;
    const beside = join(file, '..', 'config.json');
    if (a.config || (!a.preset && existsSync(beside))) {
      const p = a.config ?? beside;
      try {
        cfg = fromRadfinderJson(await readJsonFile<unknown>(p, 'config'), p);
      } catch (e) {
        // The file can still be listed against a preset's sizes.
        if (e instanceof DataError && !a.config) throw new CtvlmError(`${e.message} (to list the weights file anyway, check it against a preset: --preset paper|small|tiny)`);
        throw e;
      }
      against = p;
    } else {
      cfg = modelPreset(a.preset ?? 'paper');
      against = `preset ${a.preset ?? 'paper'}`;
    }
    const src = await fileSource(file);
    try {
      const h = await openSafetensors(src);
      // Our presets take their vocabulary from the trained tokenizer: read it from the file.
      if (cfg.text.vocabSize === 0) cfg.text.vocabSize = (h.entries.get('model.backbone_text.embed_tokens.weight') ?? h.entries.get('backbone_text.embed_tokens.weight'))?.shape[0] ?? 0;
      const expected = new Map(checkpointKeys(cfg).map((k) => [k.key, k.shape]));
      const dtypes: Record<string, number> = {};
      let values = 0;
      for (const [name, e] of h.entries) {
        dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + 1;
        values += e.shape.reduce((x, y) => x * y, 1);
        if (a.all) console.log(`${name}  [${e.shape.join(', ')}]  ${e.dtype}`);
      }
      const { problems: found, ignored: lora } = matchKeys(h.entries, expected);
      const dims = (x?: number[]) => `[${(x ?? []).join(', ')}]`;
      const problems = found.map((p) =>
        p.kind === 'shape' ? `shape: ${p.key} is ${dims(p.fileShape)}, expected ${dims(p.shape)}`
        : p.kind === 'unexpected' ? `unexpected: ${p.key} ${dims(p.fileShape)}`
        : p.kind === 'missing' ? `missing: ${p.key} ${dims(p.shape)}`
        : `duplicate: ${p.key}: ${describeProblem(p)}`);
      console.log(`${file}: ${h.entries.size} tensors (${Object.entries(dtypes).map(([k, n]) => `${n} ${k}`).join(', ')}), ${values.toLocaleString('en')} values; ${lora} LoRA tensors ignored`);
      console.log(`checked against ${against}: ${expected.size} keys, ${countValues([...expected].map(([key, shape]) => ({ key, shape }))).toLocaleString('en')} values`);
      for (const p of problems.slice(0, 50)) console.log(`  ${p}`);
      if (problems.length > 50) console.log(`  ... and ${problems.length - 50} more`);
      console.log(problems.length ? `${problems.length} problem(s)` : 'ok: every key present with its shape');
      return problems.length ? 1 : 0;
    } finally {
      await src.close();
    }
  },
};
