// Merges dataset folders (each with manifest.jsonl, as `ctvlm data synth` writes them) into one,
// for the budget runs of README "Learning": OUT/d0, OUT/d1, ... are symlinks to the inputs, and
// OUT/manifest.jsonl lists every case with its volume path under its link. Ids repeat between
// synthetic sets of different seeds (synth-00000 ...), so every set after the first gets its
// ids prefixed with x, xx, ...; splits are kept as written.
//
//   node scripts/issue7/merge-datasets.mjs OUT DIR1 DIR2 [...]
//
// e.g. the main job's data plus 1200 training cases of another seed:
//   ctvlm data synth --out runs/extra --n 1200 --seed 1 --test-fraction 0 --val-fraction 0
//   node scripts/issue7/merge-datasets.mjs runs/big runs/quickstart/data runs/extra
//   ctvlm train --data runs/big --out runs/budget-800 --steps 800
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const [out, ...dirs] = process.argv.slice(2);
if (!out || dirs.length < 2) {
  console.error('usage: node scripts/issue7/merge-datasets.mjs OUT DIR1 DIR2 [...]');
  process.exit(2);
}
// Every input read and checked before anything is written, and OUT must be new or empty, so
// a failed call leaves nothing that the next one would trip on.
const fail = (msg) => {
  console.error(msg);
  process.exit(1);
};
const lines = [];
const counts = [];
dirs.forEach((dir, k) => {
  const manifest = join(dir, 'manifest.jsonl');
  if (!existsSync(manifest)) fail(`${manifest}: missing: not a dataset folder`);
  const link = `d${k}`;
  const n = { train: 0, val: 0, test: 0 };
  for (const [i, line] of readFileSync(manifest, 'utf8').split('\n').entries()) {
    if (!line.trim()) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch (err) {
      fail(`${manifest}: line ${i + 1}: ${err.message}`);
    }
    // A case without a split field gets one from a hash of its id, which the prefix would change.
    if (!(e.split in n)) fail(`${manifest}: line ${i + 1}: split: expected train, val or test, got ${JSON.stringify(e.split)} (the merge keeps each case's split as written)`);
    e.id = 'x'.repeat(k) + e.id;
    // Relative volume paths move under the link; absolute paths and URLs stay as they are.
    if (!/^([a-z][a-z0-9+.-]*:|\/)/i.test(e.volume)) e.volume = `${link}/${e.volume}`;
    n[e.split]++;
    lines.push(JSON.stringify(e));
  }
  counts.push(`${dir}: ${n.train} train, ${n.val} val, ${n.test} test`);
});
if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) fail(`${out}: exists and is not an empty folder: choose another OUT`);
mkdirSync(out, { recursive: true });
dirs.forEach((dir, k) => symlinkSync(resolve(dir), join(out, `d${k}`)));
writeFileSync(join(out, 'manifest.jsonl'), lines.join('\n') + '\n');
console.log(`${join(out, 'manifest.jsonl')}: ${lines.length} cases (${counts.join('; ')})`);
