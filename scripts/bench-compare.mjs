// Compares two bench result files row by row (ours: median ms; lower is faster).
//
//   node scripts/bench-compare.mjs bench/results/A.json bench/results/B.json
//
// Prints each row present in both, the two times, and B / A; then the median ratio. Rows
// are matched by section, op, shape and variant.
import { readFileSync } from 'node:fs';

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node scripts/bench-compare.mjs BEFORE.json AFTER.json');
  process.exit(2);
}
const load = (f) => JSON.parse(readFileSync(f, 'utf8'));
const A = load(a);
const B = load(b);
const key = (r) => [r.section, r.op ?? '', r.shape ?? '', r.variant ?? '', r.metric ?? ''].join(' | ');
const before = new Map(A.rows.filter((r) => r.ours?.ms).map((r) => [key(r), r]));
const ratios = [];
const la = (x) => JSON.stringify(x.loadAverage ?? null);
console.log(`${a}: load ${la(A)}; ${b}: load ${la(B)}`);
for (const r of B.rows) {
  const p = before.get(key(r));
  if (!p || !r.ours?.ms) continue;
  const ratio = r.ours.ms / p.ours.ms;
  ratios.push(ratio);
  console.log(`${key(r).padEnd(80)} ${p.ours.ms.toFixed(3).padStart(10)} ${r.ours.ms.toFixed(3).padStart(10)} ms  x${ratio.toFixed(3)}`);
}
ratios.sort((x, y) => x - y);
if (ratios.length) console.log(`${ratios.length} rows; after / before: median ${ratios[Math.floor(ratios.length / 2)].toFixed(3)}, min ${ratios[0].toFixed(3)}, max ${ratios.at(-1).toFixed(3)}`);
