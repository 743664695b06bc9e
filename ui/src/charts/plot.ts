// uPlot helpers shared by the run page and compare charts: axes per x mode, zoom by
// drag-select (re-bucketed by the caller), pan by shift+drag, reset by double click.
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { fmtDuration, fmtSteps, fmtTick, XMode } from "./data";

export interface Interaction {
  /** x range (chart units) the user selected or panned to; null = reset to the full range */
  onXRange: (r: [number, number] | null) => void;
}

export function xAxis(mode: XMode): uPlot.Axis {
  const a: uPlot.Axis = { stroke: "#6b7385", grid: { stroke: "#eef0f4", width: 1 }, ticks: { stroke: "#dde2ea", width: 1 } };
  if (mode === "step") a.values = (_u, splits) => splits.map(fmtSteps);
  else if (mode === "rel") a.values = (_u, splits) => splits.map(fmtDuration);
  return a;
}

export function yAxis(): uPlot.Axis {
  return {
    stroke: "#6b7385",
    size: 56,
    grid: { stroke: "#eef0f4", width: 1 },
    ticks: { stroke: "#dde2ea", width: 1 },
    values: (_u, splits) => splits.map((v) => (v == null ? "" : fmtTick(v))),
  };
}

export function xScale(mode: XMode): uPlot.Scale {
  return { time: mode === "wall" };
}

export function yScale(log: boolean): uPlot.Scale {
  return log ? { distr: 3, log: 10 } : { auto: true };
}

/** The chart the user pressed the mouse in: a drag-select zooms only that chart (uPlot
 * mirrors the selection box to every synced chart). */
let active: uPlot | null = null;

/** Cursor options: drag-select zooms (through onXRange), shift+drag pans, double click resets. */
export function cursor(syncKey: string | null, ia: Interaction): uPlot.Cursor {
  return {
    sync: syncKey ? { key: syncKey, setSeries: false } : undefined,
    drag: { x: true, y: false, setScale: false },
    points: { size: 5 },
    bind: {
      mousedown: (u, _targ, handler) => (e: MouseEvent) => {
        active = u;
        if (e.shiftKey && e.button === 0) {
          startPan(u, e, ia);
          return null;
        }
        return handler(e);
      },
      // (uPlot's listeners are passive: no preventDefault, which the browser refuses
      // with a console error on each double click)
      dblclick: () => () => {
        ia.onXRange(null);
        return null;
      },
    },
  };
}

function startPan(u: uPlot, e: MouseEvent, ia: Interaction) {
  const x0 = e.clientX;
  const min0 = u.scales.x.min!,
    max0 = u.scales.x.max!;
  const perPx = (max0 - min0) / Math.max(1, u.bbox.width / devicePixelRatio);
  let last: [number, number] = [min0, max0];
  const move = (ev: MouseEvent) => {
    const d = (ev.clientX - x0) * perPx;
    last = [min0 - d, max0 - d];
    u.setScale("x", { min: last[0], max: last[1] });
  };
  const up = () => {
    document.removeEventListener("mousemove", move);
    document.removeEventListener("mouseup", up);
    if (last[0] !== min0) ia.onXRange(last);
  };
  document.addEventListener("mousemove", move);
  document.addEventListener("mouseup", up);
}

/** setSelect hook: a drag of more than 4 px zooms; the selection box is cleared. */
export function selectHook(ia: Interaction): (u: uPlot) => void {
  return (u) => {
    const s = u.select;
    if (u !== active) {
      if (s.width > 0) u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      return;
    }
    if (s.width > 4) {
      const lo = u.posToVal(s.left, "x");
      const hi = u.posToVal(s.left + s.width, "x");
      u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      ia.onXRange([lo, hi]);
    }
  };
}

export const PALETTE = [
  "#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4f46e5",
  "#0d9488", "#b45309", "#9333ea", "#0284c7", "#e11d48", "#16a34a",
];

export function color(i: number): string {
  if (i < PALETTE.length) return PALETTE[i];
  // golden-angle hues for the rest, so 1,000 runs stay distinguishable locally
  const h = (i * 137.508) % 360;
  return `hsl(${h.toFixed(1)},65%,45%)`;
}

export function recordDraw(metric: string, buckets: number, ms: number) {
  const mf = window.__mf;
  if (!mf) return;
  mf.lastDraw.push({ metric, buckets, ms });
  if (mf.lastDraw.length > 200) mf.lastDraw.splice(0, mf.lastDraw.length - 200);
}

export type { uPlot };
