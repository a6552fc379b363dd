// Kernel choices per device: one object on each Gpu (gpu.tuning), read by the launch layer
// when it picks a kernel variant, and set by tests and benchmarks that compare variants.
// 'auto' and null mean: the launch layer decides from the adapter and the shape.
import { ValueError } from '../errors.ts';

export interface Tuning {
  /** Fused linear layers (src/ops/matmul.ts linearResidual, mlpGelu: GELU, LayerScale and the
   * residual add in the matmul's store) instead of separate elementwise dispatches; the same
   * bits either way (default true; false for comparisons). */
  fuseEpilogues: boolean;
  /** With fuseEpilogues, also the GELU gradient in the store of the matmul that makes it
   * (null: on GPUs, off on CPU adapters, where it measured slower than matmul + the separate
   * gelu backward: 10.4-11.4 against 8.1-8.8 ms at 4128x96x384 on lavapipe). */
  fuseGeluBackward: boolean | null;
  /** Batch volumes uploaded as the dataset prepares them ([Z, Y, X], x fastest) and turned
   * depth-fastest by a permute on the device, instead of on the host before the upload
   * (src/model/inputs.ts). null: on for GPUs, where the permute costs microseconds and the host
   * transpose about 10 ms a step; off on CPU adapters, where both take the same CPU time
   * (lavapipe: 11.5 ms device against 11.6 ms host for a batch of eight 128x64x64 crops). */
  volumeOnDevice: boolean | null;
  /** 'auto' variants follow the choices measured by autotune() (src/gpu/autotune.ts) for the
   * shape classes measured on this adapter. null: on for GPUs, off for CPU adapters (lavapipe,
   * SwiftShader), whose fixed defaults are their measured best. */
  autotune: boolean | null;
  matmul: {
    /** 'tiled-wg': workgroup-memory tiles (for GPUs); 'f16': the same with operands rounded to
     * f16 (needs shader-f16; see kernels/matmul.wgsl for its error). */
    variant: 'auto' | 'subgroup' | 'tiled' | 'tiled-wg' | 'f16';
    /** Rows per group of lanes in the subgroup kernel (a positive multiple of 8). */
    rows: number;
    /** Lanes that share A rows in the subgroup kernel (null: 8 where subgroups allow, else 4). */
    group: 4 | 8 | null;
    /** Threads the subgroup kernel's workgroups are balanced over (null: gpu.hostThreads, the
     * CPU driver's worker threads; see sgGroups in src/launch/matmul.ts). */
    threads: number | null;
    /** Tile of 'tiled-wg' and 'f16' when named explicitly (null: 64x64x16, 4x4 per invocation). */
    tile: MatmulTile | null;
    /** Let 'auto' choose the f16 variant when autotuning finds it fastest (default false: it
     * keeps about 3 significant digits of each operand). */
    allowF16: boolean;
    /** The subgroup kernel reads B through uniform bindings of at most
     * limits.maxUniformBufferBindingSize bytes where the shape allows (kernels/matmul.wgsl, UB).
     * null: on for lavapipe on AVX2 CPUs, where lane-divergent uniform loads measured 2.0-2.2x
     * faster than storage loads (a storage load is a loop over the lanes there), off on AVX-512
     * CPUs (no consistent difference) and GPUs (src/launch/matmul-geometry.ts uniformBByDefault). */
    uniformB: boolean | null;
    /** Split-K for every matmul where it applies (src/launch/matmul-splitk.ts): about this many
     * partial products over slices of K, then their sum; 1 never splits (null: only where
     * autotuning chose it). */
    splitK: number | null;
  };
  attention: {
    /** 'tiled-f16': keys and values rounded to f16 in the tiled kernels (shader-f16; by name only). */
    variant: 'auto' | 'subgroup' | 'plain' | 'tiled' | 'tiled-f16';
    /** Head layout override: lanes per query (1, 2, 4, 8) and vec4s per chunk (null: automatic). */
    layout: { parts?: number; chunk?: number; rows?: number } | null;
    /**
     * Tiled kernel override: rows (queries, or keys in the key/value backward) a workgroup
     * owns, rows per workgroup-memory tile, chunks the head is walked in, loops over a tile
     * with a run-time trip count (null or absent: automatic; see src/launch/attention.ts).
     */
    tile: { rows?: number; keys?: number; chunks?: number; dynamicLoops?: boolean } | null;
  };
  patchEmbed: {
    /** Lane group: 8 or 4 share rows by subgroup operations, 1 runs without (null: automatic). */
    group: 1 | 4 | 8 | null;
  };
  layerNorm: {
    /** Forward and input gradient: 'row' one invocation per row, 'workgroup' 64 lanes per row
     * (src/launch/layernorm.ts layerNormVariantFor; 'auto': rows on CPU adapters, a workgroup
     * per row of 128 or more on GPUs). */
    variant: 'auto' | 'row' | 'workgroup';
    /** Rows read and written as vec4s where the width is a multiple of 4 (forward and input
     * gradient); in the 'row' layout the same bits as the scalar kernel (default true; false
     * for comparisons). */
    vec4: boolean;
    /** Chunks of rows the gamma and beta gradients are summed in (partial sums, then their
     * sum). null: one on CPU adapters, where the second pass measured slower (lavapipe:
     * 7.3 against 6.0 ms per small-preset step), else enough to fill a GPU (~8k invocations,
     * >= 32 rows each). */
    paramChunks: number | null;
  };
  softmax: {
    /** 'row': one invocation per row; 'workgroup': 64 lanes per row (src/launch/softmax.ts
     * softmaxVariantFor; 'auto': rows on CPU adapters, a workgroup per long row on GPUs). */
    variant: 'auto' | 'row' | 'workgroup';
  };
  layout: {
    /** Strided copies (permute, slice, concat, expand; src/launch/layout.ts layoutVariantFor):
     * 'run' 64 elements per invocation, 'element' one, 'tiled' 32x32 tiles through workgroup
     * memory for a gather that transposes ('element' elsewhere). 'auto': 'run' on CPU adapters,
     * 'tiled' on GPUs. */
    variant: 'auto' | 'run' | 'element' | 'tiled';
  };
  reduce: {
    /** 'row': one invocation per output; 'workgroup': 64 lanes per output where the reduced
     * elements are contiguous (the last axis), else 'row' (src/launch/reduce.ts
     * reduceVariantFor; 'auto': 'row' on CPU adapters, a workgroup per long row on GPUs). */
    variant: 'auto' | 'row' | 'workgroup';
  };
  rmsNorm: {
    variant: 'auto' | 'row' | 'workgroup' | 'subgroup';
    /** The per-row layout's backward sums the weight gradient in the input-gradient kernel. */
    fuseWeightGrad: boolean;
  };
}

/** A workgroup tile: bm x bn outputs, k-steps of bk, tm x tn outputs per invocation (tm, tn,
 * bk multiples of 4; (bm / tm) * (bn / tn) invocations). */
export interface MatmulTile {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export function defaultTuning(): Tuning {
  return {
    fuseEpilogues: true,
    fuseGeluBackward: null,
    volumeOnDevice: null,
    autotune: null,
    matmul: { variant: 'auto', rows: 32, group: null, threads: null, tile: null, allowF16: false, uniformB: null, splitK: null },
    attention: { variant: 'auto', layout: null, tile: null },
    patchEmbed: { group: null },
    layerNorm: { variant: 'auto', vec4: true, paramChunks: null },
    softmax: { variant: 'auto' },
    layout: { variant: 'auto' },
    reduce: { variant: 'auto' },
    rmsNorm: { variant: 'auto', fuseWeightGrad: true },
  };
}

/**
 * Lanes that share rows through subgroup operations in the subgroup-tuned kernels (matmul,
 * attention, patch embedding, rmsNorm): 8 where every subgroup has at least 8 lanes, 4 where
 * at least 4, else 0 (no subgroups).
 */
export function laneGroup(subgroupMinSize: number): 0 | 4 | 8 {
  return subgroupMinSize >= 8 ? 8 : subgroupMinSize >= 4 ? 4 : 0;
}

/** The type of each field whose default is null (its value when set): setTuning's check. */
export const NULLABLE_TUNING: Readonly<Record<string, 'boolean' | 'number' | 'object'>> = {
  autotune: 'boolean',
  fuseGeluBackward: 'boolean',
  volumeOnDevice: 'boolean',
  'matmul.group': 'number',
  'matmul.threads': 'number',
  'matmul.tile': 'object',
  'matmul.uniformB': 'boolean',
  'matmul.splitK': 'number',
  'attention.layout': 'object',
  'attention.tile': 'object',
  'patchEmbed.group': 'number',
  'layerNorm.paramChunks': 'number',
};

/** The names a string field of Tuning takes (setTuning refuses others before any device work). */
export const CHOICE_TUNING: Record<string, readonly string[]> = {
  'matmul.variant': ['auto', 'subgroup', 'tiled', 'tiled-wg', 'f16'] satisfies Tuning['matmul']['variant'][],
  'attention.variant': ['auto', 'subgroup', 'plain', 'tiled', 'tiled-f16'] satisfies Tuning['attention']['variant'][],
  'softmax.variant': ['auto', 'row', 'workgroup'] satisfies Tuning['softmax']['variant'][],
  'reduce.variant': ['auto', 'row', 'workgroup'] satisfies Tuning['reduce']['variant'][],
  'layout.variant': ['auto', 'run', 'element', 'tiled'] satisfies Tuning['layout']['variant'][],
  'layerNorm.variant': ['auto', 'row', 'workgroup'] satisfies Tuning['layerNorm']['variant'][],
  'rmsNorm.variant': ['auto', 'row', 'workgroup', 'subgroup'] satisfies Tuning['rmsNorm']['variant'][],
};

/**
 * What is wrong with an attention layout override (gpu.tuning.attention.layout), or null: parts
 * 1, 2, 4 or 8; chunk a positive integer; rows 1 to 4; no other field. The launch checks it
 * at each call, setTuning (the command line's --tuning) before any device work.
 */
export function attentionLayoutProblem(layout: unknown): string | null {
  if (layout === null) return null;
  if (typeof layout !== 'object' || Array.isArray(layout)) return 'gpu.tuning.attention.layout is not an object or null';
  const l = layout as Record<string, unknown>;
  for (const k of Object.keys(l)) if (!['parts', 'chunk', 'rows'].includes(k)) return `gpu.tuning.attention.layout has no field ${k} (parts, chunk, rows)`;
  if (l.parts !== undefined && ![1, 2, 4, 8].includes(l.parts as number)) return `gpu.tuning.attention.layout.parts = ${String(l.parts)} is not 1, 2, 4 or 8`;
  if (l.chunk !== undefined && !(Number.isInteger(l.chunk) && (l.chunk as number) >= 1)) return `gpu.tuning.attention.layout.chunk = ${String(l.chunk)} is not a positive integer`;
  if (l.rows !== undefined && ![1, 2, 3, 4].includes(l.rows as number)) return `gpu.tuning.attention.layout.rows = ${String(l.rows)} is not 1, 2, 3 or 4`;
  return null;
}

/**
 * Sets one field of a Tuning from text, as a command line gives it: 'matmul.uniformB=false',
 * 'matmul.rows=64', 'attention.variant=tiled', 'matmul.group=null'. The value is parsed as
 * JSON where it parses (numbers, true, false, null, objects), else taken as a string; it must
 * have the field's type (its default's, or NULLABLE_TUNING's where the default is null), and
 * null only where the default is null, and a variant's name one of CHOICE_TUNING's. Values are
 * checked further where they are used (a tile's shape, a variant the device lacks).
 * @throws ValueError naming the field: an unknown path, a missing '=', a value of another type,
 * an unknown variant name.
 */
export function setTuning(t: Tuning, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new ValueError(`tuning '${assignment}': expected FIELD=VALUE, e.g. matmul.uniformB=false`);
  const field = assignment.slice(0, eq);
  const path = field.split('.');
  const text = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  let obj = t as unknown as Record<string, unknown>;
  let def = defaultTuning() as unknown as Record<string, unknown>;
  const fields = () => Object.keys(def).map((k) => path.slice(0, -1).concat(k).join('.')).join(', ');
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    if (!Object.hasOwn(def, k) || def[k] === null || typeof def[k] !== 'object' || path.slice(0, i + 1).join('.') in NULLABLE_TUNING) {
      const here = path.slice(0, i).concat('').join('.');
      const groups = Object.keys(def).filter((g) => def[g] !== null && typeof def[g] === 'object' && !(`${here}${g}` in NULLABLE_TUNING));
      const near = Object.keys(def).find((g) => g.toLowerCase() === k.toLowerCase() && g !== k);
      const plain = Object.keys(def).filter((g) => !groups.includes(g));
      throw new ValueError(
        `tuning '${assignment}': no field ${path.slice(0, i + 1).join('.')}${near ? ` (did you mean ${here}${near}?)` : ''} (groups: ${groups.map((g) => here + g).join(', ')}${plain.length ? `; fields: ${plain.map((g) => here + g).join(', ')}` : ''})`,
      );
    }
    obj = obj[k] as Record<string, unknown>;
    def = def[k] as Record<string, unknown>;
  }
  const key = path[path.length - 1];
  if (!Object.hasOwn(def, key)) throw new ValueError(`tuning '${assignment}': no field ${field} (fields: ${fields()})`);
  const now = def[key];
  const type = now === null ? NULLABLE_TUNING[field] : typeof now;
  if (now !== null && typeof now === 'object')
    throw new ValueError(`tuning '${assignment}': ${field} is a group of fields; set one of them (${Object.keys(now).map((k) => `${field}.${k}`).join(', ')})`);
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (!(value === null ? now === null : got === type))
    throw new ValueError(`tuning '${assignment}': ${field} takes ${type}${now === null ? ' or null' : ''}, got ${got}${got === 'string' && type === 'boolean' ? " (true and false are lower case)" : ''}`);
  const choices = CHOICE_TUNING[field];
  if (choices && !choices.includes(value as string)) throw new ValueError(`tuning '${assignment}': ${field} is one of ${choices.join(', ')}`);
  const problem = field === 'attention.layout' ? attentionLayoutProblem(value) : null;
  if (problem) throw new ValueError(`tuning '${assignment}': ${problem}`);
  obj[key] = value;
}
