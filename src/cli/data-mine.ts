import { readFile } from 'node:fs/promises';
import { parseCliArgs, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { UsageError } from '../app-errors.ts';

const usage = `usage: ctvlm data mine REPORT.txt [...] [--dicom DIR [--series N]] [--json]
       ctvlm data mine --manifest manifest.jsonl [--id ID] [--json]

Prints the image references mined from radiology reports: the sentence (reference removed),
the series (or -), the images as written and the image used for localisation. With
--manifest, mines the manifest's reports and, where the case has slice metadata, resolves
each image to its world z; with reference ground truth (synthetic data) it also prints the
miner's precision and recall. With --dicom, images are resolved through the InstanceNumber
and ImagePositionPatient of a DICOM series. References that cannot be resolved say why (other
series, image not in the series, unknown SeriesNumber). REPORT '-' reads standard input.

options:
  --json               one JSON object per report instead of text
  --manifest FILE      mine the reports of a manifest
  --id ID              only this case of the manifest
  --dicom DIR          resolve images in this DICOM folder's series (headers only are read)
  --series N           the series of --dicom to use; when the folder's series has no
                       SeriesNumber (anonymised data), it is taken to be series N
  --strict             --dicom: refuse the folder when a DICOM file in it cannot be used,
                       instead of skipping that file

A reference that names no series ("image 45") is resolved only when the --dicom folder
holds one image series (or the manifest case has one, its default).`;

export const command: Command = {
  name: 'data mine',
  summary: "mine image references ('series 3, image 45') from reports",
  usage,
  async run(argv) {
    const parsed = parseCliArgs({
      args: argv,
      options: { json: { type: 'boolean' }, manifest: { type: 'string' }, id: { type: 'string' }, dicom: { type: 'string' }, series: { type: 'string' }, strict: { type: 'boolean' } },
      allowPositionals: true,
    });
    const { values: a, positionals } = parsed;
    const { mineSnippets } = await import('../data/snippets.ts');
    const { resolveSnippet } = await import('../data/snippet-locate.ts');
    const { scoreMiner } = await import('../data/snippet-score.ts');
    if (a.series !== undefined && !a.dicom) throw new UsageError('--series goes with --dicom');
    if (a.strict && !a.dicom) throw new UsageError('--strict goes with --dicom');
    if (a.dicom && a.manifest) throw new UsageError('give either --manifest or --dicom, not both');
    let seriesNumber: number | undefined;
    if (a.series !== undefined) {
      seriesNumber = Number(a.series);
      if (!Number.isInteger(seriesNumber) || seriesNumber < 0) throw new UsageError(`--series: expected a series number, got '${a.series}'`);
    }
    let dicomSeries: import('../data/manifest.ts').SeriesMeta | undefined;
    if (a.dicom) dicomSeries = await dicomSeriesMeta(a.dicom, seriesNumber, a.strict ?? false);
    type Item = { name: string; report: string; series?: import('../data/manifest.ts').SeriesMeta; expected?: import('../data/snippet-score.ts').ExpectedRef[] };
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
        items.push({ name: p, report: text, series: dicomSeries });
      }
    }
    const pairs = [];
    let total = 0;
    const unplaced: Record<string, number> = {};
    for (const it of items) {
      const mined = mineSnippets(it.report);
      total += mined.length;
      if (it.expected) pairs.push({ mined, expected: it.expected });
      const rows = mined.map((m) => {
        const loc = it.series ? resolveSnippet(m, it.series) : null;
        const placed = loc && !('reason' in loc) ? loc : null;
        const why = loc && 'reason' in loc ? loc : null;
        if (why) unplaced[why.reason] = (unplaced[why.reason] ?? 0) + 1;
        return {
          sentence: m.sentence,
          series: m.series,
          images: m.images,
          kind: m.kind,
          image: m.image,
          ref: m.ref,
          z: placed ? placed.z : null,
          ...(why ? { unresolved: why.reason, detail: why.detail } : {}),
        };
      });
      if (a.json) {
        console.log(JSON.stringify({ report: it.name, references: rows }));
        continue;
      }
      console.log(`${it.name}: ${rows.length} reference${rows.length === 1 ? '' : 's'}`);
      for (const r of rows) {
        const imgs = r.kind === 'range' ? `${r.images[0]}-${r.images[1]}` : r.images.join(',');
        const z = r.z !== null ? `  z=${r.z.toFixed(1)}mm` : r.detail ? `  (not resolved: ${r.detail})` : '';
        console.log(`  series ${r.series ?? '-'}  image ${imgs}${r.kind === 'single' ? '' : ` (-> ${r.image})`}${z}  "${r.sentence}"`);
      }
    }
    const nUnplaced = Object.values(unplaced).reduce((x, y) => x + y, 0);
    if (nUnplaced && !a.json)
      console.log(`\n${nUnplaced} of ${total} references not resolved to a slice: ${Object.entries(unplaced).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (pairs.length && !a.json) {
      const s = scoreMiner(pairs);
      console.log(`\n${total} references in ${items.length} reports; against the ground truth: precision ${s.precision.toFixed(3)}, recall ${s.recall.toFixed(3)} (${s.tp}/${s.mined} mined, ${s.tp}/${s.expected} expected)`);
    }
  },
};

/** The slice metadata of a DICOM folder's series (by --series, else the largest), headers only. */
async function dicomSeriesMeta(dir: string, seriesNumber: number | undefined, strict: boolean): Promise<import('../data/manifest.ts').SeriesMeta> {
  const { readDicomFolder } = await import('../data/io/node.ts');
  const { seriesMetaFromDicom } = await import('../data/dicom.ts');
  const r = await readDicomFolder(dir, { headersOnly: true, strict });
  for (const s of r.skipped.filter((x) => x.reason !== 'not DICOM')) console.error(`note: ${s.file} skipped: ${s.reason}`);
  let s = seriesNumber === undefined ? undefined : r.series.find((x) => x.seriesNumber === seriesNumber);
  let override: number | undefined;
  if (!s && seriesNumber !== undefined) {
    const unnumbered = r.series.filter((x) => x.seriesNumber === null);
    if (unnumbered.length !== 1)
      throw new DataError(dir, 'SeriesNumber (0020,0011)', `no series ${seriesNumber} (found: ${r.series.map((x) => x.seriesNumber ?? '(none)').join(', ')})`);
    s = unnumbered[0];
    override = seriesNumber;
    console.error(`note: ${dir}: the series has no SeriesNumber; taken to be series ${seriesNumber} (--series)`);
  }
  s ??= r.series.reduce((x, y) => (y.slices.length > x.slices.length ? y : x));
  if (s.seriesNumber === null && override === undefined)
    console.error(`note: ${dir}: the series has no SeriesNumber; references naming a series are not resolved (give --series N to name it)`);
  // Entries of one series split by geometry (a localizer among the slices) count once.
  const seriesCount = new Set(r.series.map((x, i) => x.seriesUID ?? (x.seriesNumber !== null ? `#${x.seriesNumber}` : `entry ${i}`))).size;
  return seriesMetaFromDicom(s, { seriesNumber: override, seriesCount });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
