// Kernel choices per device: one object on each Gpu (gpu.tuning), read by the launch layer
// when it picks a kernel variant, and set by tests and benchmarks that compare variants.
// 'auto' and null mean: the launch layer decides from the adapter and the shape.

export interface Tuning {
  matmul: {
    variant: 'auto' | 'subgroup' | 'tiled';
    /** Rows per group of lanes in the subgroup kernel (a positive multiple of 8). */
    rows: number;
    /** Lanes that share A rows in the subgroup kernel (null: 8 where subgroups allow, else 4). */
    group: 4 | 8 | null;
  };
  attention: {
    variant: 'auto' | 'subgroup' | 'plain';
    /** Head layout override: lanes per query (1, 2, 4, 8) and vec4s per chunk (null: automatic). */
    layout: { parts?: number; chunk?: number } | null;
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

export function defaultTuning(): Tuning {
  return {
    matmul: { variant: 'auto', rows: 32, group: null },
    attention: { variant: 'auto', layout: null },
    patchEmbed: { group: null },
    rmsNorm: { variant: 'auto', fuseWeightGrad: true },
  };
}
