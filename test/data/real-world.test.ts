// The text inputs of issue 8's reports (test/data/fixtures/real-world, README there), each with
// the value the reference tools give: tokenizers.js for the tokenizer.json files, the source
// dataset's own annotation for the report sentences. The image inputs of the same issue (DICOM
// folders, .nii.gz files) are not kept in the repository: each kind is generated in code in
// test/data/dicom-kinds.test.ts and test/data/nifti.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { readDicomSeries, seriesMetaFromDicom } from '../../src/data/dicom.ts';
import { mineSnippets } from '../../src/data/snippets.ts';
import { resolveSnippet } from '../../src/data/snippet-locate.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { repoRoot } from '../helpers/paths.ts';
import { writeTestDicom } from '../helpers/dicom-writer.ts';

const dir = join(repoRoot, 'test/data/fixtures/real-world');

test('tokenizer.json with BertNormalizer {lowercase, strip_accents: null} and a cased one: the tokens tokenizers.js gives', () => {
  for (const [file, text, want] of [
    ['uncased_strip_default.json', 'Größe Pleuraerguss rechts. Herd lässt sich abgrenzen.', ['große', 'pleuraerguss', 'rechts', '.', 'herd', 'lasst', 'sich', 'abgrenzen', '.']],
    ['cased.json', 'Small CT nodule in the RUL.', ['Small', 'CT', 'nodule', 'in', 'the', 'RUL', '.']],
  ] as const) {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const mine = WordPieceTokenizer.fromJSON(json, file);
    assert.equal(mine.tokenize(text), [...want]);
    assert.equal(mine.encode(text).ids, new Tokenizer(json, {}).encode(text).ids);
  }
});

test('reports: US series:image notation (3 references), and "image N of series M <more words>" never placed on series 3', () => {
  const colon = mineSnippets(
    'LUNGS: A stable 3 mm nodule sits along the left major fissure (301:290).\nTwo 2 mm subpleural nodules are seen in the left lung (7:87 and 7:209).\nThere is a 4 mm nodule in the right lower lobe (7:200).',
  );
  assert.equal(colon.map((m) => [m.series, m.images]), [[301, [290]], [7, [87, 209]], [7, [200]]]);
  assert.equal(colon.map((m) => m.sentence), [
    'A stable 3 mm nodule sits along the left major fissure.',
    'Two 2 mm subpleural nodules are seen in the left lung.',
    'There is a 4 mm nodule in the right lower lobe.',
  ]);
  const mined = mineSnippets(
    'A 4 mm nodule in the right lower lobe on image 406 of series 7 which is unchanged. A 5 mm nodule in the lingula on image 52 of series 4 is new.',
  );
  assert.equal(mined.map((m) => [m.series, m.images, m.sentence]), [
    [7, [406], 'A 4 mm nodule in the right lower lobe which is unchanged.'],
    [4, [52], 'A 5 mm nodule in the lingula is new.'],
  ]);
  // Against a 60-slice series 3 (InstanceNumber 1-60), as a DICOM folder gives it: both other-series.
  const files = Array.from({ length: 60 }, (_, k) => ({
    name: `s${k}`,
    bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], position: [0, 0, -25 - 2.5 * k], instanceNumber: k + 1, seriesNumber: 3 }),
  }));
  const meta = seriesMetaFromDicom(readDicomSeries(files, { headersOnly: true }).series[0]!, { seriesCount: 1 });
  assert.is(meta.slices.length, 60);
  assert.equal(mined.map((m) => (resolveSnippet(m, meta) as { reason?: string }).reason), ['other-series', 'other-series']);
});

test.run();
