import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { embedScan, zeroShotPrompts, zeroShotScore } from '../model/tasks.ts';
import { openWeights, readCt, round } from './infer.ts';

const usage = `usage: ctvlm classify --weights W --ct FILE [--json]

Zero-shot disease classification as RadFinder evaluates it: for each of the 18 CT-RATE
abnormalities, the seven template pairs ("There is {X}." / "There is no {X}.", ...) embedded
with projection_text, normalised, averaged and renormalised; the CT's disease embedding
(projection_image_copy); score = sigmoid(cos_pos - cos_neg). Scores rank cases; they are not
calibrated probabilities.

options:
  --weights W    a RadFinder weights folder (with tokenizer.json) or a run folder
  --ct FILE      a CT: .nii / .nii.gz, or a DICOM folder
  --json         print JSON (default: a sorted table)`;

export const command: Command = {
  name: 'classify',
  summary: 'zero-shot scores of the 18 CT-RATE abnormalities for a CT',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { weights: { type: 'string' }, ct: { type: 'string' }, json: { type: 'boolean' } } });
    if (!a.weights || !a.ct) throw new UsageError('--weights and --ct are required');
    const gpu = await Gpu.create();
    try {
      const w = await openWeights(gpu, a.weights, 'zero-shot classification embeds prompt texts', { ct: a.ct });
      const ct = await readCt(w, a.ct);
      const scan = await embedScan(w.model, ct.input.data, ct.input.shape);
      // openWeights refused a folder without tokenizer.json, so the tokenizer is loaded.
      const prompts = await zeroShotPrompts(w.model, w.tokenizer!, w.maxTextTokens);
      const scores = prompts.map((p) => ({ label: p.label, score: round(zeroShotScore(scan.disease.normalized, p)) }));
      if (a.json) process.stdout.write(JSON.stringify({ file: a.ct, scores }) + '\n');
      else {
        console.log('score  label   (sigmoid(cos_pos - cos_neg): above 0.5 leans present, below leans absent; scores rank cases, they are not probabilities)');
        for (const s of [...scores].sort((x, y) => y.score - x.score)) console.log(`${s.score.toFixed(4)}  ${s.label}`);
      }
      w.model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
