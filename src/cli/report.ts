// `ctvlm report RUN`: writes RUN/report.html (one self-contained page: training curves,
// evaluation with intervals, ROC curves, depth scatter, retrieval examples) and prints its path.
import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { writeRunReport } from '../eval/report.ts';

const usage = `usage: ctvlm report RUN

Writes RUN/report.html from the run folder's metrics.jsonl and eval-*.json: the evaluation
(test beside the training subset, 95% bootstrap intervals), loss curves per objective and the
learning rate, recall@k against chance, ROC curves per disease, predicted against true depth
per snippet, and a few retrieval examples. One file, inline SVG, no scripts, opens offline.
\`ctvlm eval\` and the end of training rewrite it.

options:
  --run RUN   the run folder (or give it as the argument)`;

export const command: Command = {
  name: 'report',
  summary: 'write RUN/report.html: curves, intervals, ROC, depth scatter, retrieval examples',
  usage,
  async run(argv) {
    const { values: a, positionals } = parseCliArgs({ args: argv, options: { run: { type: 'string' } }, allowPositionals: true });
    const run = a.run ?? positionals[0];
    if (!run) throw new UsageError('a run folder is required');
    if (positionals.length > (a.run ? 0 : 1)) throw new UsageError(`unexpected argument '${positionals[a.run ? 0 : 1]}'`);
    console.log(await writeRunReport(run));
  },
};
