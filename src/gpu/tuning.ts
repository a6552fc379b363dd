// Kernel choices per device: one object on each Gpu (gpu.tuning), read by the launch layer
// when it picks a kernel variant, and set by tests and benchmarks that compare variants.
// 'auto' and null mean: the launch layer decides from the adapter and the shape.

export interface Tuning {
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
  };
  attention: {
    variant: 'auto' | 'subgroup' | 'plain' | 'tiled';
    /** Head layout override: lanes per query (1, 2, 4, 8) and vec4s per chunk (null: automatic). */
    layout: { parts?: number; chunk?: number } | null;
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
    autotune: null,
    matmul: { variant: 'auto', rows: 32, group: null, threads: null, tile: null, allowF16: false },
    attention: { variant: 'auto', layout: null, tile: null },
    patchEmbed: { group: null },
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
