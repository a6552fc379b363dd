// A kernel's interface, declared once. kernels/<op>.wgsl holds the code of its entry points
// and declares neither its parameter struct nor its bindings: both are generated from the
// declaration below and put in front of the file's code, and the same declaration gives each
// entry point's bind-group layout and packs its parameters. A launch passes parameters and
// buffers by name; a missing, extra or ill-typed one is an error naming the kernel and the
// field, never numbers read from the wrong slot.
//
//   export const softmaxKernel = defineKernel({
//     file: 'softmax.wgsl', source,
//     params: { rows: 'u32', n: 'u32' },                       // -> struct Params, var<uniform> p
//     buffers: { X: read(), Y: write(), GY: read(), GX: write() },  // -> @binding(1..4), in order
//     entries: { softmax: ['X', 'Y'], softmax_backward: ['X', 'GY', 'GX'] },
//   });
//   gpu.launch(softmaxKernel.softmax, { params: { rows, n }, buffers: { X: x.buffer, Y: y.buffer }, workgroups, label });
//
// (tfjs's WebGPU backend generates its uniform struct and bindings from a program's
// declared inputs the same way; a WGSL file stays one readable kernel, its interface in
// the TypeScript next to the code that launches it.)
import { GpuError } from '../errors.ts';

export type BindingKind = 'params' | 'read' | 'write' | 'uniform' | null;

/** A uniform array of a declaration: its binding, the prelude line that declares it and its
 * length ('2048', or a launch constant '{UBN}' that the pipeline cache fills in). */
export interface UniformArray {
  readonly binding: number;
  readonly line: number;
  readonly length: string;
}

/** A parameter: a 32-bit scalar, or a u32 array of N values (N a multiple of 4; WGSL
 * `array<vec4u, N/4>`, as uniform arrays need a 16-byte stride; index it as p.f[i / 4u][i % 4u]). */
export type ParamType = 'u32' | 'i32' | 'f32' | `u32[${number}]`;
export type ParamDecls = Record<string, ParamType>;

export interface BufferDecl {
  readonly access: 'read' | 'write' | 'uniform';
  /** The WGSL element type: f32, i32, vec4f, or an alias the kernel file defines (per flag). */
  readonly elem: string;
  /** May be left out of a launch: a placeholder is bound and the kernel must not touch it. */
  readonly optional: boolean;
  /** 'uniform' only: the array's length in elements, a number or a template constant of the
   * launch in braces ('{UBN}'); uniform arrays have a fixed length. */
  readonly length?: string;
}

/** A part of a buffer bound to one binding: byte offset and size (a launch may pass one
 * instead of a whole buffer; the offset must meet the device's alignment for the binding). */
export interface BufferRange {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}

/** A storage buffer the kernel reads (`var<storage, read>`). */
export const read = (elem = 'f32', opts: { optional?: boolean } = {}): BufferDecl => ({ access: 'read', elem, optional: !!opts.optional });
/** A storage buffer the kernel writes (`var<storage, read_write>`). */
export const write = (elem = 'f32', opts: { optional?: boolean } = {}): BufferDecl => ({ access: 'write', elem, optional: !!opts.optional });
/**
 * A read-only array in a uniform buffer (`var<uniform> N: array<elem, length>`), for data every
 * lane reads at addresses that differ per lane: lavapipe compiles such a load as straight-line
 * gathers, a storage load as a loop over the lanes (Mesa 25.0.7, lp_bld_nir_soa.c emit_load_ubo
 * and emit_load_mem; 2.0-2.2x the load rate on an AVX2 EPYC, no consistent difference on AVX-512
 * ones: scripts/issue11/ubo-loads.mjs and the bench's roofline rows). A binding
 * holds at most gpu.limits.maxUniformBufferBindingSize bytes (64 KiB by default), so a launch
 * binds a BufferRange of the buffer. elem: a 16-byte type (vec4f, vec4u, vec4i), as uniform
 * arrays need a 16-byte stride; length: elements, a number or '{CONST}' set by the launch.
 */
export const uniform = (elem: string, length: string | number): BufferDecl => ({ access: 'uniform', elem, optional: false, length: String(length) });

export interface KernelDecl<P extends ParamDecls, B extends Record<string, BufferDecl>, E extends Record<string, readonly (keyof B & string)[]>> {
  /** kernels/<file>, for messages and the pipeline cache. */
  file: string;
  /** The file's text (imported as a string by the build). */
  source: string;
  /** The parameter struct, fields in order; {} for none. */
  params: P;
  /** Every storage buffer of the file, in binding order (binding 0 is the parameters). */
  buffers: B;
  /** Each entry point and the buffers it uses. */
  entries: E;
  /** WGSL generated from a table (elementwise ops), put after the bindings. */
  generated?: string;
  /** Shared WGSL put in front of the file's code (WGSL has no include): kernels/lib/*.wgsl,
   * named by their path under kernels/ for error messages. With `expand`, the include goes
   * through the preprocessor with the file (it may use the file's //#if flags and {CONST}s). */
  includes?: readonly { file: string; source: string; expand?: boolean }[];
}

export type ParamValues<P extends ParamDecls> = { [K in keyof P]: P[K] extends 'u32' | 'i32' | 'f32' ? number : readonly number[] };

/** One entry point of a declared kernel: what gpu.launch() takes. */
export interface EntryPoint<P extends ParamDecls = ParamDecls, Bn extends string = string> {
  /** 'softmax.wgsl:softmax', as messages and profiles name it. */
  readonly name: string;
  readonly file: string;
  readonly entry: string;
  readonly source: string;
  /** The generated WGSL declarations (and included code) put in front of the file's code. */
  readonly prelude: string;
  /** Where each prelude line comes from, for compile errors. */
  readonly preludeLocations: readonly string[];
  /** The expanded includes' lines in front of the file's source: 'kernels/<file>:<line>' for
   * source line n (1-based) up to their count, n minus their count after. */
  readonly sourceLocations: readonly string[];
  /** The uniform arrays the prelude declares (uniform()): binding, prelude line, length. */
  readonly uniformArrays: readonly UniformArray[];
  /** Distinguishes declarations that share a file name (the pipeline cache's key). */
  readonly declId: number;
  /** Binding kinds by binding number ('params': the parameter block; 'uniform': a declared
   * uniform array), null where this entry point binds nothing. */
  readonly bindings: readonly BindingKind[];
  /** Buffer names in binding order, and which may be left out. */
  readonly bufferNames: readonly Bn[];
  readonly optional: ReadonlySet<string>;
  /** Packs parameter values into the uniform block (throws naming the kernel and field). */
  pack(values: ParamValues<P>): Uint32Array | null;
  /** Phantom field for type inference. */
  readonly _params?: P;
}

export type Kernel<P extends ParamDecls, B extends Record<string, BufferDecl>, E extends Record<string, readonly (keyof B & string)[]>> = {
  readonly [K in keyof E]: EntryPoint<P, E[K][number]>;
};

export interface LaunchArgs<P extends ParamDecls, Bn extends string> {
  params: ParamValues<P>;
  /** The entry point's buffers by name (a whole buffer or a BufferRange of one); null only
   * for ones declared optional. */
  buffers: { readonly [K in Bn]: GPUBuffer | BufferRange | null };
  workgroups: readonly [number, number?, number?];
  /** Names the op and its shapes in errors and profiles, e.g. 'matmul [64x32]@[32x16]'. */
  label: string;
  /** Preprocessor flags (//#if NAME). */
  flags?: Record<string, boolean>;
  /** Template constants (//#unroll I NAME, {NAME}). */
  consts?: Record<string, number>;
  /** Pipeline-overridable constants (WGSL `override`). */
  overrides?: Record<string, number>;
}

interface Field {
  name: string;
  type: ParamType;
  /** Offset in 32-bit words. */
  word: number;
  /** Length in words (1 for scalars). */
  words: number;
}

function layoutParams(file: string, params: ParamDecls): { fields: Field[]; words: number; wgsl: string } {
  const fields: Field[] = [];
  let word = 0;
  const members: string[] = [];
  for (const [name, type] of Object.entries(params)) {
    const arr = /^u32\[(\d+)\]$/.exec(type);
    if (arr) {
      const n = Number(arr[1]);
      if (n === 0 || n % 4) throw new GpuError(`kernels/${file}: parameter '${name}' is u32[${n}]; the length must be a positive multiple of 4`);
      word = Math.ceil(word / 4) * 4;
      fields.push({ name, type, word, words: n });
      members.push(`${name}: array<vec4u, ${n / 4}>`);
      word += n;
    } else if (type === 'u32' || type === 'i32' || type === 'f32') {
      fields.push({ name, type, word, words: 1 });
      members.push(`${name}: ${type}`);
      word += 1;
    } else throw new GpuError(`kernels/${file}: parameter '${name}' has unknown type '${type}' (u32, i32, f32 or u32[N])`);
  }
  // Uniform blocks are bound in 16-byte units.
  return { fields, words: Math.max(4, Math.ceil(word / 4) * 4), wgsl: `struct Params { ${members.join(', ')} }` };
}

/**
 * Declares a kernel file's interface once (see the top of this file). Checks at declaration
 * that the file declares no bindings or parameter struct of its own, that every entry point
 * exists in it and that every buffer is used by some entry point.
 * @throws GpuError naming kernels/<file> and the field at fault.
 */
export function defineKernel<
  const P extends ParamDecls,
  const B extends Record<string, BufferDecl>,
  const E extends Record<string, readonly (keyof B & string)[]>,
>(decl: KernelDecl<P, B, E>): Kernel<P, B, E> {
  const where = `kernels/${decl.file}`;
  if (/@binding\s*\(/.test(decl.source) || /\bstruct\s+Params\b/.test(decl.source))
    throw new GpuError(`${where} declares its own @binding or struct Params; they are generated from its defineKernel() declaration`);
  const params = layoutParams(decl.file, decl.params);
  const hasParams = params.fields.length > 0;
  const names = Object.keys(decl.buffers);
  const declared = `the declarations generated for ${where} (its defineKernel())`;
  const lines = [`// Generated from the defineKernel() declaration of ${decl.file} (src/gpu/kernel.ts).`];
  if (hasParams) lines.push(params.wgsl, '@group(0) @binding(0) var<uniform> p: Params;');
  const uniformArrays: UniformArray[] = [];
  names.forEach((n, i) => {
    const b = decl.buffers[n];
    if (b.access === 'uniform') {
      if (!/^vec4(f|u|i|<(f32|u32|i32)>)$/.test(b.elem)) throw new GpuError(`${where}: uniform buffer '${n}' has element type ${b.elem}; uniform arrays need a 16-byte element (vec4f, vec4u, vec4i)`);
      if (!/^(\d+|\{[A-Za-z_]\w*\})$/.test(b.length ?? '')) throw new GpuError(`${where}: uniform buffer '${n}' has length '${b.length}'; give a number or a launch constant in braces ('{N}')`);
      uniformArrays.push({ binding: i + 1, line: lines.length, length: b.length! });
      lines.push(`@group(0) @binding(${i + 1}) var<uniform> ${n}: array<${b.elem}, ${b.length}>;`);
    } else lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access === 'read' ? 'read' : 'read_write'}> ${n}: array<${b.elem}>;`);
  });
  const locations = lines.map(() => declared);
  if (decl.generated)
    for (const l of decl.generated.trimEnd().split('\n')) {
      lines.push(l);
      locations.push(`the code generated for ${where} (line '${l.trim()}')`);
    }
  const sourceHead: string[] = [];
  const sourceLocations: string[] = [];
  for (const inc of decl.includes ?? [])
    inc.source.trimEnd().split('\n').forEach((l, i) => {
      (inc.expand ? sourceHead : lines).push(l);
      (inc.expand ? sourceLocations : locations).push(`kernels/${inc.file}:${i + 1}`);
    });
  const source = sourceHead.length ? `${sourceHead.join('\n')}\n${decl.source}` : decl.source;
  const prelude = lines.join('\n') + '\n';
  const declId = ++declarations;
  const used = new Set<string>();
  const out: Record<string, EntryPoint> = {};
  for (const [entry, list] of Object.entries(decl.entries) as [string, readonly string[]][]) {
    if (!new RegExp(`\\bfn\\s+${entry}\\s*\\(`).test(decl.source)) throw new GpuError(`${where}: entry point '${entry}' is declared but the file has no fn ${entry}`);
    for (const n of list) {
      if (!(n in decl.buffers)) throw new GpuError(`${where}: entry point '${entry}' uses buffer '${n}', which is not declared`);
      used.add(n);
    }
    const bindings: BindingKind[] = [hasParams ? 'params' : null];
    for (const n of names) bindings.push(list.includes(n) ? decl.buffers[n].access : null);
    const name = `${decl.file}:${entry}`;
    out[entry] = {
      name,
      file: decl.file,
      entry,
      source,
      prelude,
      preludeLocations: locations,
      sourceLocations,
      uniformArrays,
      declId,
      bindings,
      bufferNames: names.filter((n) => list.includes(n)),
      optional: new Set(names.filter((n) => list.includes(n) && decl.buffers[n].optional)),
      pack: (values) => (hasParams ? packParams(name, params.fields, params.words, values as Record<string, number | readonly number[]>) : null),
    };
  }
  for (const n of names) if (!used.has(n)) throw new GpuError(`${where}: buffer '${n}' is declared but no entry point uses it`);
  return out as Kernel<P, B, E>;
}

let declarations = 0;

function packParams(kernel: string, fields: Field[], words: number, values: Record<string, number | readonly number[]>): Uint32Array {
  const u = new Uint32Array(words);
  const f = new Float32Array(u.buffer);
  const i = new Int32Array(u.buffer);
  for (const field of fields) {
    const v = values[field.name];
    if (v === undefined) throw new GpuError(`${kernel}: parameter '${field.name}' (${field.type}) is missing`);
    if (field.words > 1) {
      if (!Array.isArray(v) || v.length > field.words)
        throw new GpuError(`${kernel}: parameter '${field.name}' must be an array of at most ${field.words} u32 values`);
      for (let k = 0; k < v.length; k++) u[field.word + k] = checkInt(kernel, `${field.name}[${k}]`, v[k], 0, 2 ** 32 - 1);
    } else if (typeof v !== 'number') throw new GpuError(`${kernel}: parameter '${field.name}' must be a number (${field.type})`);
    else if (field.type === 'f32') {
      if (Number.isNaN(v)) throw new GpuError(`${kernel}: parameter '${field.name}' is NaN`);
      f[field.word] = v;
    } else if (field.type === 'i32') i[field.word] = checkInt(kernel, field.name, v, -(2 ** 31), 2 ** 31 - 1);
    else u[field.word] = checkInt(kernel, field.name, v, 0, 2 ** 32 - 1);
  }
  if (Object.keys(values).length !== fields.length)
    for (const k of Object.keys(values))
      if (!fields.some((fl) => fl.name === k)) throw new GpuError(`${kernel}: unknown parameter '${k}' (declared: ${fields.map((fl) => fl.name).join(', ')})`);
  return u;
}

function checkInt(kernel: string, field: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new GpuError(`${kernel}: parameter '${field}' = ${v} is not an integer in [${lo}, ${hi}]`);
  return v;
}

/** The buffers of a launch in binding order, checked against the entry point. */
export function bindBuffers(
  ep: EntryPoint,
  buffers: Record<string, GPUBuffer | BufferRange | null | undefined>,
  placeholder: (slot: number) => GPUBuffer,
  label: string,
): (GPUBuffer | BufferRange)[] {
  const out: (GPUBuffer | BufferRange)[] = [];
  for (const n of ep.bufferNames) {
    const b = buffers[n];
    if (b) out.push(b);
    else if (ep.optional.has(n)) out.push(placeholder(out.length));
    else throw new GpuError(`${label}: ${ep.name} needs buffer '${n}' (it takes ${ep.bufferNames.join(', ')})`);
  }
  for (const n of Object.keys(buffers))
    if (!ep.bufferNames.includes(n)) throw new GpuError(`${label}: ${ep.name} has no buffer '${n}' (it takes ${ep.bufferNames.join(', ')})`);
  return out;
}
