import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';

const usage = `usage: ctvlm data manifest --ctrate-volumes DIR --reports CSV --labels CSV --out manifest.jsonl [--metadata CSV]

Builds a manifest (JSON Lines, one case per line) from CT-RATE-style data: the reports CSV
(VolumeName, Findings_EN, Impressions_EN, ...), the labels CSV (VolumeName and the 18
abnormality columns) and the folder of .nii.gz volumes (searched recursively; cases without
a volume file are skipped and counted). Volume paths are written relative to the manifest.
Splits: valid_* -> test, train_* -> train / val (5 %) by a hash of the patient id.

options:
  --ctrate-volumes DIR  folder with the volumes (required)
  --reports CSV         reports file (required)
  --labels CSV          labels file (required)
  --metadata CSV        metadata file (RescaleSlope, RescaleIntercept, spacing; optional)
  --out FILE            manifest to write (required)`;

export const command: Command = {
  name: 'data manifest',
  summary: 'build a manifest from CT-RATE-style volumes, reports and labels',
  usage,
  async run(argv) {
    const a = parseCliArgs({
      args: argv,
      options: {
        'ctrate-volumes': { type: 'string' },
        reports: { type: 'string' },
        labels: { type: 'string' },
        metadata: { type: 'string' },
        out: { type: 'string' },
      },
    }).values;
    for (const k of ['ctrate-volumes', 'reports', 'labels', 'out'] as const) if (!a[k]) throw new UsageError(`--${k} is required`);
    const { fromCtRate } = await import('../data/ctrate.ts');
    const { serializeManifest } = await import('../data/manifest.ts');
    const out = resolve(a.out!);
    const r = await fromCtRate({ volumesDir: a['ctrate-volumes']!, reportsCsv: a.reports!, labelsCsv: a.labels!, metadataCsv: a.metadata, manifestDir: dirname(out) });
    await writeFile(out, serializeManifest(r.entries));
    const bySplit = r.entries.reduce<Record<string, number>>((m, e) => ((m[e.split ?? '-'] = (m[e.split ?? '-'] ?? 0) + 1), m), {});
    console.log(`wrote ${r.entries.length} cases to ${a.out} (${Object.entries(bySplit).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    if (r.skipped.length) {
      console.log(`skipped ${r.skipped.length}: ${r.skipped.slice(0, 5).map((s) => `${s.volumeName} (${s.reason})`).join(', ')}${r.skipped.length > 5 ? ', ...' : ''}`);
    }
  },
};
