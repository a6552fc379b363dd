// A very small preprocessor for the hand-written kernels in kernels/*.wgsl.
//
// WGSL has no loops that a compiler is obliged to unroll, and register-blocked kernels
// only run fast on lavapipe when every accumulator is its own scalar variable. Kernels
// therefore mark the blocks to unroll, and choose between variants with flags:
//
//   //#if NAME            keep the lines up to //#else or //#endif when flag NAME is set
//   //#if !NAME           ... when it is not set
//   //#else  //#endif
//   //#unroll I N         repeat the lines up to //#end for I = 0 .. N-1 (N: an integer
//   //#end                 expression over constants given in `consts`); nests
//   {expr}                inside an unrolled block: integer arithmetic over the unroll
//                         variables and constants, e.g. acc{R}, {R / 8}u, {R % 8}u
//   //#define F(a, b) body  a one-line macro: F(x, y) in later lines becomes body with a and
//                         b replaced (whole words); define it inside //#if blocks to vary it
//
// Every expanded line remembers the source line it came from, so a compile error in the
// expanded text can be reported as kernels/<file>.wgsl:<line>.

export interface Expanded {
  code: string;
  /** lineMap[i] = 1-based source line of expanded line i + 1. */
  lineMap: number[];
}

type Line = { text: string; src: number };

export function expandWgsl(
  source: string,
  flags: Record<string, boolean> = {},
  consts: Record<string, number> = {},
  file = 'kernel.wgsl',
): Expanded {
  const lines: Line[] = source.split('\n').map((text, i) => ({ text, src: i + 1 }));
  const out = expandBlock(lines, flags, consts, file);
  return { code: out.map((l) => l.text).join('\n'), lineMap: out.map((l) => l.src) };
}

const directive = /^\s*\/\/#(if|else|endif|unroll|end|define)\b\s*(.*)$/;

type Macro = { params: string[]; body: string };

function expandBlock(
  lines: Line[],
  flags: Record<string, boolean>,
  vars: Record<string, number>,
  file: string,
  macros: Map<string, Macro> = new Map(),
): Line[] {
  const out: Line[] = [];
  let i = 0;
  while (i < lines.length) {
    const m = lines[i].text.match(directive);
    if (!m) {
      const text = expandMacros(lines[i].text, macros, file, lines[i].src);
      out.push({ text: substitute({ text, src: lines[i].src }, vars, file), src: lines[i].src });
      i++;
      continue;
    }
    const [, kind, arg] = m;
    if (kind === 'define') {
      const d = arg.match(/^(\w+)\(([^)]*)\)\s+(.*)$/);
      if (!d) throw new Error(`${file}:${lines[i].src}: //#define needs NAME(params) body`);
      macros.set(d[1], { params: d[2].split(',').map((p) => p.trim()).filter(Boolean), body: d[3] });
      i++;
    } else if (kind === 'if') {
      const { end, elseAt } = findClose(lines, i, 'if', file);
      const name = arg.trim();
      const on = name.startsWith('!') ? !flags[name.slice(1)] : !!flags[name];
      const body = on ? lines.slice(i + 1, elseAt ?? end) : elseAt === undefined ? [] : lines.slice(elseAt + 1, end);
      out.push(...expandBlock(body, flags, vars, file, macros));
      i = end + 1;
    } else if (kind === 'unroll') {
      const { end } = findClose(lines, i, 'unroll', file);
      const [name, ...count_] = arg.trim().split(/\s+/);
      const count = evaluate(count_.join(' '), vars, file, lines[i].src);
      const body = lines.slice(i + 1, end);
      for (let v = 0; v < count; v++) out.push(...expandBlock(body, flags, { ...vars, [name]: v }, file, macros));
      i = end + 1;
    } else {
      throw new Error(`${file}:${lines[i].src}: unexpected //#${kind}`);
    }
  }
  return out;
}

function findClose(lines: Line[], start: number, kind: 'if' | 'unroll', file: string): { end: number; elseAt?: number } {
  let depth = 0;
  let elseAt: number | undefined;
  for (let j = start; j < lines.length; j++) {
    const m = lines[j].text.match(directive);
    if (!m) continue;
    const k = m[1];
    if (k === 'if' || k === 'unroll') depth++;
    else if (k === 'endif' || k === 'end') {
      depth--;
      if (depth === 0) {
        if ((kind === 'if') !== (k === 'endif')) throw new Error(`${file}:${lines[j].src}: //#${k} closes a //#${kind}`);
        return { end: j, elseAt };
      }
    } else if (k === 'else' && depth === 1 && kind === 'if') elseAt = j;
  }
  throw new Error(`${file}:${lines[start].src}: //#${kind} is never closed`);
}

function expandMacros(text: string, macros: Map<string, Macro>, file: string, src: number): string {
  if (macros.size === 0) return text;
  for (let round = 0; round < 8; round++) {
    let changed = false;
    for (const [name, macro] of macros) {
      let at = text.search(new RegExp(`\\b${name}\\(`));
      while (at >= 0) {
        // The call's arguments, split at top-level commas.
        let depth = 0;
        let j = at + name.length;
        const args: string[] = [];
        let start = j + 1;
        for (; j < text.length; j++) {
          const c = text[j];
          if (c === '(') depth++;
          else if (c === ')' && --depth === 0) break;
          else if (c === ',' && depth === 1) {
            args.push(text.slice(start, j).trim());
            start = j + 1;
          }
        }
        if (j >= text.length) throw new Error(`${file}:${src}: unclosed call of macro ${name}`);
        args.push(text.slice(start, j).trim());
        if (args.length !== macro.params.length) throw new Error(`${file}:${src}: macro ${name} takes ${macro.params.length} arguments, got ${args.length}`);
        let body = macro.body;
        macro.params.forEach((p, k) => (body = body.replace(new RegExp(`\\b${p}\\b`, 'g'), args[k])));
        text = text.slice(0, at) + body + text.slice(j + 1);
        changed = true;
        at = text.search(new RegExp(`\\b${name}\\(`));
      }
    }
    if (!changed) return text;
  }
  throw new Error(`${file}:${src}: macros nest too deeply`);
}

function substitute(line: Line, vars: Record<string, number>, file: string): string {
  if (!line.text.includes('{') || Object.keys(vars).length === 0) return line.text;
  // Only brace groups that are pure arithmetic over known names are template expressions;
  // WGSL's own braces (blocks, struct bodies) are left alone.
  return line.text.replace(/\{([A-Za-z0-9_+\-*/%() ]+)\}/g, (whole, expr: string) => {
    const names = expr.match(/[A-Za-z_]\w*/g) ?? [];
    if (names.length === 0 && !/^\s*\d+\s*$/.test(expr)) return whole;
    if (!names.every((n) => n in vars)) return whole;
    return String(evaluate(expr, vars, file, line.src));
  });
}

function evaluate(expr: string, vars: Record<string, number>, file: string, src: number): number {
  if (!/^[A-Za-z0-9_+\-*/%() ]+$/.test(expr)) throw new Error(`${file}:${src}: bad template expression '${expr}'`);
  if (/^\d+$/.test(expr.trim())) return Number(expr);
  try {
    return evalTrunc(expr, vars);
  } catch (e) {
    throw new Error(`${file}:${src}: ${(e as Error).message}`);
  }
}

/** Evaluates + - * / % and parentheses with truncating integer division. */
function evalTrunc(expr: string, vars: Record<string, number>): number {
  const tokens = expr.match(/\d+|[A-Za-z_]\w*|[+\-*/%()]/g) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => tokens[pos++];
  function atom(): number {
    const t = next();
    if (t === '(') {
      const v = sum();
      next();
      return v;
    }
    if (t === '-') return -atom();
    if (/^\d+$/.test(t)) return Number(t);
    if (t in vars) return vars[t];
    throw new Error(`unknown name '${t}' in '${expr}'`);
  }
  function product(): number {
    let v = atom();
    while (peek() === '*' || peek() === '/' || peek() === '%') {
      const op = next();
      const r = atom();
      v = op === '*' ? v * r : op === '/' ? Math.trunc(v / r) : v % r;
    }
    return v;
  }
  function sum(): number {
    let v = product();
    while (peek() === '+' || peek() === '-') {
      const op = next();
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
    return v;
  }
  return sum();
}
