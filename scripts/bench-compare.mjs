// Compares two bench result files row by row (ours: median ms; lower is faster).
//
//   node scripts/bench-compare.mjs bench/results/A.json bench/results/B.json
//
// Prints each row present in both: the two times and after / before (above 1: the second run
// slower); then the median ratio, and the rows found in one file only. Rows are matched by
// section, op, shape and variant; the roofline rows, whose shapes are sized by the run's time
// budget, by section, op and variant, and compared by their rates (before rate / after rate:
// the time ratio at equal work) since their work differs between runs.
import { readFileSync } from 'node:fs';

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node scripts/bench-compare.mjs BEFORE.json AFTER.json');
  process.exit(2);
}

/** A results file of `npm run bench`, or one line naming the file and what is wrong. */
function load(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`${file}: not valid JSON (${e.message})`);
  }
  if (!json || !Array.isArray(json.rows)) fail(`${file}: rows: missing (not a results file of \`npm run bench\`, bench/results/*.json)`);
  return json;
}

function fail(msg) {
  console.error(`bench-compare: ${msg}`);
  process.exit(2);
}

const A = load(a);
const B = load(b);
const key = (r) => [r.section, r.op ?? '', r.section === 'roofline' ? '' : (r.shape ?? ''), r.variant ?? '', r.metric ?? ''].filter(Boolean).join(' | ');
const timed = (rows) => new Map(rows.filter((r) => r.ours?.ms > 0).map((r) => [key(r), r]));
const [before, after] = [timed(A.rows), timed(B.rows)];
const la = (x) => (x.loadAverage ? `load ${x.loadAverage.start?.join(' ')} at start, ${x.loadAverage.end?.join(' ')} at end` : 'load not recorded');
console.log(`before: ${a} (${A.date ?? 'no date'}; ${la(A)})`);
console.log(`after:  ${b} (${B.date ?? 'no date'}; ${la(B)})`);
if (A.device !== B.device) console.log(`devices differ: ${A.device}\n            vs ${B.device}`);
const ms = (x) => x.toFixed(3).padStart(10);
const lines = [];
const ratios = [];
for (const [k, r] of after) {
  const p = before.get(k);
  if (!p) continue;
  const byRate = r.work !== p.work && r.rate > 0 && p.rate > 0;
  const ratio = byRate ? p.rate / r.rate : r.ours.ms / p.ours.ms;
  ratios.push(ratio);
  lines.push([k, ms(p.ours.ms), ms(r.ours.ms), `x${ratio.toFixed(3)}${byRate ? ` (by rate: ${p.rate.toPrecision(3)} -> ${r.rate.toPrecision(3)} ${r.metric}, other work)` : ''}`]);
}
const w = Math.max(3, ...lines.map((l) => l[0].length));
console.log('');
console.log(`${'row'.padEnd(w)} ${'before ms'.padStart(10)} ${'after ms'.padStart(10)}  after / before`);
for (const l of lines) console.log(`${l[0].padEnd(w)} ${l[1]} ${l[2]}  ${l[3]}`);
ratios.sort((x, y) => x - y);
console.log('');
if (ratios.length) console.log(`${ratios.length} rows; after / before (above 1: after is slower): median ${ratios[Math.floor(ratios.length / 2)].toFixed(3)}, min ${ratios[0].toFixed(3)}, max ${ratios.at(-1).toFixed(3)}`);
else console.log('no row is timed in both files');
const only = (m, other) => [...m.keys()].filter((k) => !other.has(k));
for (const [name, ks] of [['before', only(before, after)], ['after', only(after, before)]])
  if (ks.length) console.log(`only in ${name} (${ks.length}): ${ks.slice(0, 5).join('; ')}${ks.length > 5 ? '; ...' : ''}`);
