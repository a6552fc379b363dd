// A CT volume in memory: voxels, grid and the voxel -> world (RAS+, mm) affine.
import type { mat4 } from 'gl-matrix';

export interface Volume {
  /** Voxel values (HU for CT), x fastest: index = i + nx * (j + ny * k). */
  data: Float32Array;
  /** Grid size [nx, ny, nz]. */
  shape: [number, number, number];
  /** Voxel size in mm along i, j, k (the column norms of the affine's 3x3 part). */
  spacing: [number, number, number];
  /** Maps voxel (i, j, k, 1) to world (x, y, z, 1) in RAS+ millimetres (NIfTI convention). */
  affine: mat4;
}
