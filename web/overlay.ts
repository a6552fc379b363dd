// What the viewer draws over the CT, in CSS pixels on a canvas the size of the view: the
// cross-reference lines, the model's predicted depth band and its per-bin probability strip
// (at world heights, so they line up with the anatomy at the scan's own resolution), and
// marker lines (a report's referenced slices).
import { binZRange, type Plane } from './geometry.ts';
import type { PreparedGeometry } from './protocol.ts';

/** Width of the probability strip at a view's right edge, CSS pixels. */
export const STRIP_PX = 26;

export interface OverlayState {
  /** The model's crop of the shown CT (null before it is embedded). */
  geometry: PreparedGeometry | null;
  /** Per-bin probabilities of the last localization on this CT, and its predicted bin. */
  probabilities: number[] | null;
  bin: number | null;
  markers: { z: number; color: string; label: string }[];
}

/** A view's mapping from canonical positions to CSS pixels. */
export interface ViewFrame {
  plane: Plane;
  width: number;
  height: number;
  /** x of a continuous canonical index along the plane's column axis; y along its row axis. */
  x(colIndex: number): number;
  y(rowIndex: number): number;
  /** y of a world height (coronal and sagittal views). */
  yOfZ(z: number): number;
  /** The cross-reference position: canonical column and row indices of the other two planes' slices. */
  cross: { col: number; row: number };
}

/** The strip's bins: their y ranges on a view (top < bottom). */
export function stripBins(f: ViewFrame, g: PreparedGeometry): { bin: number; top: number; bottom: number }[] {
  return Array.from({ length: g.bins }, (_, bin) => {
    const [lo, hi] = binZRange(g, bin);
    const a = f.yOfZ(lo);
    const b = f.yOfZ(hi);
    return { bin, top: Math.min(a, b), bottom: Math.max(a, b) };
  });
}

export function drawOverlay(ctx: CanvasRenderingContext2D, f: ViewFrame, o: OverlayState): void {
  ctx.clearRect(0, 0, f.width, f.height);
  ctx.lineWidth = 1;
  // Cross-reference lines: where the other two views cut this one.
  ctx.strokeStyle = 'rgba(80, 200, 255, 0.45)';
  ctx.setLineDash([4, 4]);
  const cx = Math.round(f.x(f.cross.col)) + 0.5;
  const cy = Math.round(f.y(f.cross.row)) + 0.5;
  ctx.beginPath();
  ctx.moveTo(cx, 0);
  ctx.lineTo(cx, f.height);
  ctx.moveTo(0, cy);
  ctx.lineTo(f.width, cy);
  ctx.stroke();
  ctx.setLineDash([]);
  if (f.plane === 'axial' || !o.geometry) return;

  const bins = stripBins(f, o.geometry);
  if (o.bin !== null && bins[o.bin]) {
    const b = bins[o.bin];
    ctx.fillStyle = 'rgba(255, 204, 68, 0.20)';
    ctx.fillRect(0, b.top, f.width - STRIP_PX, b.bottom - b.top);
    ctx.strokeStyle = 'rgba(255, 204, 68, 0.9)';
    ctx.beginPath();
    ctx.moveTo(0, Math.round(b.top) + 0.5);
    ctx.lineTo(f.width - STRIP_PX, Math.round(b.top) + 0.5);
    ctx.moveTo(0, Math.round(b.bottom) - 0.5);
    ctx.lineTo(f.width - STRIP_PX, Math.round(b.bottom) - 0.5);
    ctx.stroke();
  }
  for (const m of o.markers) {
    const y = Math.round(f.yOfZ(m.z)) + 0.5;
    ctx.strokeStyle = m.color;
    ctx.setLineDash([6, 3]);
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(f.width - STRIP_PX, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = m.color;
    ctx.font = '10px system-ui, sans-serif';
    // Right of the orientation letter at the view's left edge (.mark.left), not under it.
    ctx.fillText(m.label, 18, y - 3);
  }

  // The strip: the crop's bins at their heights, each bar as long as its probability relative
  // to the most likely bin (no bars before a localization: the crop's extent alone).
  const x0 = f.width - STRIP_PX;
  const top = Math.min(...bins.map((b) => b.top));
  const bottom = Math.max(...bins.map((b) => b.bottom));
  ctx.fillStyle = 'rgba(0, 0, 0, 0.6)';
  ctx.fillRect(x0, top, STRIP_PX, bottom - top);
  const p = o.probabilities;
  const pmax = p ? Math.max(...p, 1e-12) : 1;
  for (const b of bins) {
    if (p) {
      const w = (STRIP_PX - 3) * (p[b.bin] / pmax);
      ctx.fillStyle = b.bin === o.bin ? '#ffcc44' : '#4a86d8';
      ctx.fillRect(f.width - 1 - w, b.top + 0.5, w, Math.max(1, b.bottom - b.top - 1));
    }
    ctx.fillStyle = 'rgba(255, 255, 255, 0.35)';
    ctx.fillRect(x0, Math.round(b.top), 4, 1);
  }
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.5)';
  ctx.strokeRect(x0 + 0.5, Math.round(top) + 0.5, STRIP_PX - 1, Math.round(bottom - top) - 1);
}
