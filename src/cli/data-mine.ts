import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import type { Command } from './command.ts';
import { DataError, UsageError } from '../errors.ts';

const usage = `usage: ctvlm data mine REPORT.txt [...] [--json]
       ctvlm data mine --manifest manifest.jsonl [--id ID] [--json]

Prints the image references mined from radiology reports: the sentence (reference removed),
the series (or -), the images as written and the image used for localisation. With
--manifest, mines the manifest's reports and, where the case has slice metadata, resolves
each image to its world z; with reference ground truth (synthetic data) it also prints the
miner's precision and recall. REPORT '-' reads standard input.

options:
  --json               one JSON object per report instead of text
  --manifest FILE      mine the reports of a manifest
  --id ID              only this case of the manifest`;

export const command: Command = {
  name: 'data mine',
  summary: "mine image references ('series 3, image 45') from reports",
  usage,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' }, manifest: { type: 'string' }, id: { type: 'string' } }, allowPositionals: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values: a, positionals } = parsed;
    const { mineSnippets, resolveImage, scoreMiner } = await import('../data/snippets.ts');
    type Item = { name: string; report: string; series?: import('../data/manifest.ts').SeriesMeta; expected?: import('../data/snippets.ts').ExpectedRef[] };
    const items: Item[] = [];
    if (a.manifest) {
      if (positionals.length) throw new UsageError('give either report files or --manifest, not both');
      const { readManifestFile } = await import('../data/manifest.ts');
      const entries = (await readManifestFile(a.manifest)).filter((e) => !a.id || e.id === a.id);
      if (a.id && entries.length === 0) throw new DataError(a.manifest, 'id', `no case '${a.id}'`);
      for (const e of entries) items.push({ name: e.id, report: e.report, series: e.series, expected: e.references });
    } else {
      if (positionals.length === 0) throw new UsageError('give a report file (or - for standard input), or --manifest');
      for (const p of positionals) {
        let text: string;
        try {
          text = p === '-' ? await readStdin() : await readFile(p, 'utf8');
        } catch (e) {
          throw new DataError(p, 'file', `cannot read (${(e as Error).message})`);
        }
        items.push({ name: p, report: text });
      }
    }
    const pairs = [];
    let total = 0;
    for (const it of items) {
      const mined = mineSnippets(it.report);
      total += mined.length;
      if (it.expected) pairs.push({ mined, expected: it.expected });
      const rows = mined.map((m) => {
        const loc = it.series && (m.series === null || m.series === it.series.seriesNumber) ? resolveImage(it.series, m.image) : null;
        return { sentence: m.sentence, series: m.series, images: m.images, kind: m.kind, image: m.image, ref: m.ref, z: loc ? loc.z : null };
      });
      if (a.json) {
        console.log(JSON.stringify({ report: it.name, references: rows }));
        continue;
      }
      console.log(`${it.name}: ${rows.length} reference${rows.length === 1 ? '' : 's'}`);
      for (const r of rows) {
        const imgs = r.kind === 'range' ? `${r.images[0]}-${r.images[1]}` : r.images.join(',');
        const z = r.z === null ? '' : `  z=${r.z.toFixed(1)}mm`;
        console.log(`  series ${r.series ?? '-'}  image ${imgs}${r.kind === 'single' ? '' : ` (-> ${r.image})`}${z}  "${r.sentence}"`);
      }
    }
    if (pairs.length && !a.json) {
      const s = scoreMiner(pairs);
      console.log(`\n${total} references in ${items.length} reports; against the ground truth: precision ${s.precision.toFixed(3)}, recall ${s.recall.toFixed(3)} (${s.tp}/${s.mined} mined, ${s.tp}/${s.expected} expected)`);
    }
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
