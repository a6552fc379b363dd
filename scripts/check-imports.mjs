// Checks the import graph of src/ (and what test/ may import):
//
//   node scripts/check-imports.mjs [--strict] [--quiet]
//
// Parses every src/**/*.ts with the TypeScript parser (no type checking), builds the graph of
// relative imports and prints
//   1. every import cycle: strongly connected components of more than one file, with the
//      imports inside each component, first over the imports that exist at run time, then over
//      all imports including the type-only ones (`import type`, `export type`, `typeof import()`),
//      which vanish from the JavaScript but still tie the files together for a reader;
//   2. cycles between folders (src/train <-> src/eval), which file cycles do not show;
//   3. every import that goes up the layer order below (a framework file reaching into the
//      application, or an application layer into a higher one);
//   4. every test that imports something of the CLI other than a command (`command`, which
//      runs the CLI in-process) or one of the CLI's own pieces listed in CLI_OWN: a helper a
//      test needs belongs to the layer it serves (src/eval, src/train, ...), not to the CLI.
// Exit code 1 when there is a run-time cycle; with --strict also on a type-only cycle, a folder
// cycle, a layer violation, a test reaching into the CLI or a file with no layer.
//
// `import { type A } from './a.ts'` counts as a run-time import: under verbatimModuleSyntax
// (tsconfig.json) it compiles to `import {} from './a.ts'`, which still loads the module.
// Dynamic `import('./a.ts')` counts as a run-time import too (the CLI's command table).
import ts from 'typescript';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const args = new Set(process.argv.slice(2));
const strict = args.has('--strict');
const quiet = args.has('--quiet');

// The layer order, lowest first. A file may import files of its own rank or lower.
// errors and rng are leaves that everything may use; gpu is the device runtime; tensor the
// tensor and its scopes; launch the non-recording kernel launches; autograd the tape (its
// gradient accumulation launches kernels); ops the differentiable ops; nn the modules; optim
// and io (safetensors, atomic writes) the rest of the framework.
// Above that sits the CT application: losses (SigLIP, localization), data, model, train,
// eval, the CLI, and the two library entries (browser.ts re-exports framework and data;
// index.ts adds Node file I/O to it).
const RANKS = [
  ['errors.ts', 0],
  ['rng.ts', 0],
  ['gpu/', 1],
  ['tensor.ts', 2],
  ['launch/', 3],
  ['autograd.ts', 3.5],
  ['ops/', 4],
  ['nn/', 5],
  ['optim/', 6],
  ['io/', 6],
  ['framework.ts', 6],
  ['app-errors.ts', 6.5],
  ['losses/', 7],
  ['data/', 8],
  ['model/', 9],
  ['train/', 10],
  ['eval/', 11],
  ['cli/', 12],
  ['cli.ts', 12],
  ['browser.ts', 13],
  ['index.ts', 14],
];
const FRAMEWORK_MAX_RANK = 6;

function layerOf(file) {
  const rel = relative(join(root, 'src'), file).replaceAll('\\', '/');
  for (const [prefix, rank] of RANKS) {
    if (prefix.endsWith('/') ? rel.startsWith(prefix) : rel === prefix) {
      return { name: prefix.replace(/\/$/, ''), rank };
    }
  }
  return { name: rel, rank: undefined };
}

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveSpecifier(from, spec) {
  if (!spec.startsWith('.')) return undefined; // packages and node: builtins
  const base = resolve(dirname(from), spec);
  for (const c of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (c.endsWith('.ts') && existsSync(c) && statSync(c).isFile()) return c;
  }
  return undefined; // .wgsl, .json and other non-TypeScript files
}

// What tests may import from the CLI besides `command`: its own pieces, tested where they live.
const CLI_OWN = {
  'src/cli/progress.ts': ['Progress', 'fmtTime'], // the CLI's progress line
  'src/cli/web.ts': ['startDemoServer'], // `ctvlm web`'s server, which the tests start and stop
};

/** The names an import binds: ['*'] for a namespace, [] for a side-effect import, null when unknown. */
function boundNames(node) {
  if (ts.isImportDeclaration(node)) {
    const c = node.importClause;
    if (!c) return [];
    const names = c.name ? ['default'] : [];
    if (c.namedBindings && ts.isNamespaceImport(c.namedBindings)) return ['*'];
    if (c.namedBindings) for (const e of c.namedBindings.elements) names.push((e.propertyName ?? e.name).text);
    return names;
  }
  // `const { command } = await import('...')`
  let p = node.parent;
  if (p && ts.isAwaitExpression(p)) p = p.parent;
  if (p && ts.isVariableDeclaration(p) && ts.isObjectBindingPattern(p.name))
    return p.name.elements.map((e) => (e.propertyName && ts.isIdentifier(e.propertyName) ? e.propertyName : e.name).getText());
  return null;
}

/** The relative imports of one file: [{ spec, to, typeOnly, line, names }]. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const add = (specNode, typeOnly, names = null) => {
    if (!specNode || !ts.isStringLiteral(specNode)) return;
    const to = resolveSpecifier(file, specNode.text);
    if (!to) return;
    const line = sf.getLineAndCharacterOfPosition(specNode.getStart(sf)).line + 1;
    found.push({ spec: specNode.text, to, typeOnly, line, names });
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      add(node.moduleSpecifier, node.importClause?.isTypeOnly ?? false, boundNames(node));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(arg.literal, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false, boundNames(node));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Tarjan's strongly connected components; returns those with more than one node. */
function cycles(nodes, edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  return out;
}

const rel = (f) => relative(root, f).replaceAll('\\', '/');
const files = walk(join(root, 'src')).sort();
const imports = new Map(files.map((f) => [f, importsOf(f)]));

function graph(includeTypes) {
  const edges = new Map();
  for (const [f, list] of imports) {
    edges.set(f, [...new Set(list.filter((i) => includeTypes || !i.typeOnly).map((i) => i.to))]);
  }
  return edges;
}

function report(title, comps, includeTypes) {
  console.log(`${title}: ${comps.length === 0 ? 'none' : comps.length}`);
  for (const comp of comps) {
    const inComp = new Set(comp);
    console.log(`  component of ${comp.length} files:`);
    for (const f of comp) {
      for (const i of imports.get(f)) {
        if (!inComp.has(i.to) || (!includeTypes && i.typeOnly)) continue;
        const kind = i.typeOnly ? ' (type only)' : '';
        console.log(`    ${rel(f)}:${i.line} -> ${rel(i.to)}${kind}`);
      }
    }
  }
}

const runtimeCycles = cycles(files, graph(false));
const runtimeSet = new Set(runtimeCycles.map((c) => c.join('|')));
const allCycles = cycles(files, graph(true)).filter((c) => !runtimeSet.has(c.join('|')));
report('Run-time import cycles', runtimeCycles, false);
report('Further cycles through type-only imports', allCycles, true);

// Folder cycles: the graph of src/<folder> (a top-level file is its own node).
const folderOf = (f) => {
  const r = relative(join(root, 'src'), f).replaceAll('\\', '/');
  return r.includes('/') ? `src/${r.slice(0, r.indexOf('/'))}` : `src/${r}`;
};
const folderEdges = new Map();
const folderImports = new Map(); // "a|b" -> [import lines]
for (const [f, list] of imports) {
  const a = folderOf(f);
  for (const i of list) {
    const b = folderOf(i.to);
    if (a === b) continue;
    if (!folderEdges.has(a)) folderEdges.set(a, new Set());
    folderEdges.get(a).add(b);
    const k = `${a}|${b}`;
    if (!folderImports.has(k)) folderImports.set(k, []);
    folderImports.get(k).push(`${rel(f)}:${i.line} -> ${rel(i.to)}${i.typeOnly ? ' (type only)' : ''}`);
  }
}
const folders = [...new Set(files.map(folderOf))];
const folderCycles = cycles(folders, new Map([...folderEdges].map(([k, v]) => [k, [...v]])));
console.log(`Cycles between folders (type-only imports included): ${folderCycles.length === 0 ? 'none' : folderCycles.length}`);
for (const comp of folderCycles) {
  console.log(`  ${comp.join(' <-> ')}:`);
  const inComp = new Set(comp);
  for (const a of comp) for (const b of folderEdges.get(a) ?? []) if (inComp.has(b)) for (const l of folderImports.get(`${a}|${b}`)) console.log(`    ${l}`);
}

const violations = [];
const unranked = new Set();
for (const [f, list] of imports) {
  const a = layerOf(f);
  if (a.rank === undefined) unranked.add(rel(f));
  for (const i of list) {
    const b = layerOf(i.to);
    if (a.rank === undefined || b.rank === undefined) continue;
    if (b.rank > a.rank) violations.push({ f, i, a, b });
  }
}
const fmtViolation = ({ f, i, a, b }) => {
  const where = a.rank <= FRAMEWORK_MAX_RANK && b.rank > FRAMEWORK_MAX_RANK ? ' [framework -> application]' : '';
  return `  ${rel(f)}:${i.line} (${a.name}) -> ${rel(i.to)} (${b.name})${i.typeOnly ? ' (type only)' : ''}${where}`;
};
const rtViolations = violations.filter((v) => !v.i.typeOnly);
const typeViolations = violations.filter((v) => v.i.typeOnly);
console.log(`Imports against the layer order: ${rtViolations.length === 0 ? 'none' : rtViolations.length}`);
for (const v of rtViolations) console.log(fmtViolation(v));
console.log(`Type-only imports against the layer order: ${typeViolations.length === 0 ? 'none' : typeViolations.length}`);
for (const v of typeViolations) console.log(fmtViolation(v));
if (unranked.size > 0) console.log(`Files with no layer (add them to RANKS): ${[...unranked].join(', ')}`);

// Tests may import any layer; from the CLI, only its commands (run in-process) and CLI_OWN.
const testImportsCli = [];
const testRunsCli = [];
if (existsSync(join(root, 'test'))) {
  for (const f of walk(join(root, 'test'))) {
    for (const i of importsOf(f)) {
      const r = rel(i.to);
      if (!r.startsWith('src/cli/') && r !== 'src/cli.ts') continue;
      const allowed = new Set(['command', ...(CLI_OWN[r] ?? [])]);
      const what = `  ${rel(f)}:${i.line} -> ${r} { ${i.names ? i.names.join(', ') : '?'} }`;
      if (i.typeOnly || (i.names && i.names.every((n) => allowed.has(n)))) testRunsCli.push(what);
      else testImportsCli.push(what);
    }
  }
}
console.log(`Tests reaching into the CLI for something other than a command or its own pieces: ${testImportsCli.length === 0 ? 'none' : testImportsCli.length}`);
for (const line of testImportsCli) console.log(line);
if (!quiet) {
  console.log(`Tests running CLI commands in-process or testing the CLI's own pieces (fine): ${testRunsCli.length === 0 ? 'none' : testRunsCli.length}`);
  for (const line of testRunsCli) console.log(line);
}

if (!quiet) {
  const nEdges = [...imports.values()].reduce((s, l) => s + l.length, 0);
  console.log(`(${files.length} files, ${nEdges} relative imports)`);
}
const fail =
  runtimeCycles.length > 0 ||
  (strict && (allCycles.length > 0 || folderCycles.length > 0 || violations.length > 0 || testImportsCli.length > 0 || unranked.size > 0));
process.exit(fail ? 1 : 0);
