// Pure chart logic (no DOM): server buckets -> uPlot columns, x-axis modes, EMA.
// Unit tests: data.test.ts (Vitest).
import { num, Num, SeriesJson } from "../lib/api_runs";

export type XMode = "step" | "wall" | "rel";
export type LineMode = "last" | "mean";

/** One run's buckets as numeric columns (non-empty buckets only, in step order). */
export interface Buckets {
  n: number;
  stepLo: number;
  stepHi: number;
  stepFirst: Float64Array;
  stepLast: Float64Array;
  count: Float64Array;
  min: Float64Array;
  max: Float64Array;
  avg: Float64Array;
  last: Float64Array;
  nanCount: number;
  infCount: number;
  /** (step, ms) anchors for step -> wall time: the exact first and last points in range */
  anchors: [number, number][];
}

function f64(a: Num[]): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = num(a[i]);
  return out;
}

export function toBuckets(s: SeriesJson): Buckets {
  let nanCount = 0,
    infCount = 0;
  for (const v of s.nan_count) nanCount += v;
  for (const v of s.inf_count) infCount += v;
  const anchors: [number, number][] = [];
  if (s.first_point) anchors.push([s.first_point.step, s.first_point.timestamp]);
  if (s.last_point && (!s.first_point || s.last_point.step !== s.first_point.step)) anchors.push([s.last_point.step, s.last_point.timestamp]);
  return {
    n: s.bucket.length,
    stepLo: s.step_lo,
    stepHi: s.step_hi,
    stepFirst: Float64Array.from(s.step_first),
    stepLast: Float64Array.from(s.step_last),
    count: Float64Array.from(s.count),
    min: f64(s.min),
    max: f64(s.max),
    avg: f64(s.avg),
    last: f64(s.last),
    nanCount,
    infCount,
    anchors,
  };
}

/** Wall-clock ms of a step, linear between the anchors (exact at the range's first and
 * last point; the server's buckets carry steps, not timestamps). */
export function stepToMs(step: number, anchors: [number, number][]): number {
  if (anchors.length === 0) return NaN;
  if (anchors.length === 1) return anchors[0][1];
  const [[s0, t0], [s1, t1]] = [anchors[0], anchors[anchors.length - 1]];
  if (s1 === s0) return t0;
  return t0 + ((step - s0) * (t1 - t0)) / (s1 - s0);
}

export function msToStep(ms: number, anchors: [number, number][]): number {
  if (anchors.length < 2) return anchors.length ? anchors[0][0] : NaN;
  const [[s0, t0], [s1, t1]] = [anchors[0], anchors[anchors.length - 1]];
  if (t1 === t0) return s0;
  return s0 + ((ms - t0) * (s1 - s0)) / (t1 - t0);
}

/** x value of a step in the chart's units: step; wall = unix seconds; rel = seconds since runStartMs. */
export function xOfStep(step: number, mode: XMode, anchors: [number, number][], runStartMs: number): number {
  if (mode === "step") return step;
  const ms = stepToMs(step, anchors);
  return mode === "wall" ? ms / 1000 : (ms - runStartMs) / 1000;
}

export function stepOfX(x: number, mode: XMode, anchors: [number, number][], runStartMs: number): number {
  if (mode === "step") return x;
  const ms = mode === "wall" ? x * 1000 : x * 1000 + runStartMs;
  return msToStep(ms, anchors);
}

/**
 * Exponential moving average with debiasing (as TensorBoard's smoothing slider):
 * weight in [0, 1); non-finite values are skipped (their output is NaN) and do not
 * disturb the average. Over the drawn buckets, so it follows what is on screen.
 */
export function ema(values: ArrayLike<number>, weight: number): Float64Array {
  const out = new Float64Array(values.length);
  if (!(weight > 0)) {
    for (let i = 0; i < values.length; i++) out[i] = values[i];
    return out;
  }
  const w = Math.min(weight, 0.999);
  let acc = 0,
    n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = NaN;
      continue;
    }
    acc = acc * w + (1 - w) * v;
    n++;
    out[i] = acc / (1 - Math.pow(w, n));
  }
  return out;
}

/** A uPlot column: null for what cannot be drawn (NaN, +-Inf, and <= 0 on a log axis). */
export function plotColumn(a: ArrayLike<number>, log: boolean): (number | null)[] {
  const out: (number | null)[] = new Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    out[i] = Number.isFinite(v) && (!log || v > 0) ? v : null;
  }
  return out;
}

/** How the line of a log-scale chart loses points: values <= 0 (finite) that cannot be
 * drawn, and whether a line must show its points (a single drawable value, or values
 * isolated between gaps, draw no segment). */
export function logGaps(a: ArrayLike<number>): { hidden: number; drawable: number; isolated: boolean } {
  let hidden = 0;
  let drawable = 0;
  let isolated = false;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (Number.isFinite(v) && v <= 0) hidden++;
    if (Number.isFinite(v) && v > 0) {
      drawable++;
      const prev = i > 0 && Number.isFinite(a[i - 1]) && a[i - 1] > 0;
      const next = i + 1 < a.length && Number.isFinite(a[i + 1]) && a[i + 1] > 0;
      if (!prev && !next) isolated = true;
    }
  }
  return { hidden, drawable, isolated };
}

/** Whether a line has a point with no drawable neighbour (one point alone, or isolated
 * ones): it draws no segment there, so the chart must show its points. Drawable: finite,
 * and on a log axis also > 0. */
export function hasIsolated(a: ArrayLike<number>, log: boolean): boolean {
  const ok = (v: number) => Number.isFinite(v) && (!log || v > 0);
  for (let i = 0; i < a.length; i++) {
    if (ok(a[i]) && !(i > 0 && ok(a[i - 1])) && !(i + 1 < a.length && ok(a[i + 1]))) return true;
  }
  return false;
}

export interface ChartColumns {
  /** uPlot AlignedData: [x, min, max, line, smoothed?] */
  data: (ArrayLike<number | null>)[];
  smoothed: boolean;
}

/**
 * Columns for one run's chart: x at each bucket's last step (where its "last" value
 * was logged), the min/max band, the last-or-mean line, and its EMA when smoothing.
 * Every bucket keeps its min and max, so a one-point spike still reaches the band's edge.
 */
export function chartColumns(b: Buckets, opts: { x: XMode; line: LineMode; log: boolean; smoothing: number; runStartMs: number }): ChartColumns {
  const x = new Array<number>(b.n);
  for (let i = 0; i < b.n; i++) x[i] = xOfStep(b.stepLast[i], opts.x, b.anchors, opts.runStartMs);
  const line = opts.line === "mean" ? b.avg : b.last;
  const data: (ArrayLike<number | null>)[] = [x, plotColumn(b.min, opts.log), plotColumn(b.max, opts.log), plotColumn(line, opts.log)];
  const smoothed = opts.smoothing > 0;
  if (smoothed) data.push(plotColumn(ema(line, opts.smoothing), opts.log));
  return { data, smoothed };
}

/** Steps per rollup block group the server reads pre-aggregated: buckets at least this wide
 * (4 blocks of 256 steps, query/_rollup_read.py `aligned`) skip the raw points. */
export const ROLLUP_BUCKET_STEPS = 1024;
/** Steps per rollup block: as many buckets as blocks in range (one block each) are aligned too. */
export const ROLLUP_BLOCK_STEPS = 256;

/**
 * Bucket count for a plot `px` CSS pixels wide over `span` steps (when known): one bucket
 * per pixel, within the server's limits; else, so that the server answers from its rollup
 * instead of reading every point: whole 1,024-step buckets when that still gives at least
 * one bucket per two pixels, or one bucket per 256-step block of steps lo..lo+span-1 when
 * that gives one per two pixels to two per pixel (10,000 at most). Every bucket keeps its
 * min and max either way.
 */
export function bucketsFor(px: number, span?: number, lo = 0): number {
  const n = Math.max(10, Math.min(10000, Math.round(px)));
  if (span && span > 0) {
    const aligned = Math.floor(span / ROLLUP_BUCKET_STEPS);
    if (aligned < n && aligned >= Math.ceil(n / 2)) return aligned;
    // the server's count of blocks in [lo, lo + span - 1] (floor division, as step >> 8)
    const blocks = Math.floor((lo + span - 1) / ROLLUP_BLOCK_STEPS) - Math.floor(lo / ROLLUP_BLOCK_STEPS) + 1;
    if (blocks >= Math.ceil(n / 2) && blocks <= Math.min(2 * n, 10000)) return blocks;
  }
  return n;
}

/** "123", "1.5k", "2.3M" for axis ticks of steps. */
export function fmtSteps(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return +(v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + "k";
  return String(Math.round(v * 100) / 100);
}

/** Seconds as "1h 02m", "3m 05s", "12.5s". */
export function fmtDuration(sec: number): string {
  const neg = sec < 0 ? "-" : "";
  let s = Math.abs(sec);
  if (s < 60) return neg + (+s.toFixed(s < 10 ? 2 : 1)) + "s";
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s = Math.round(s - m * 60);
  if (h > 0) return neg + h + "h " + String(m).padStart(2, "0") + "m";
  return neg + m + "m " + String(s).padStart(2, "0") + "s";
}

/** Compact number for tables and tooltips. */
export function fmtNum(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Inf" : "-Inf";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(+v.toPrecision(6));
}

/** Short axis tick: "0.25", "1.5k"-free plain numbers, exponents without "+" or trailing zeros. */
export function fmtTick(v: number): string {
  if (!Number.isFinite(v)) return fmtNum(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) {
    const [m, e] = v.toExponential(2).split("e");
    return String(+m) + "e" + e.replace("+", "");
  }
  return String(+v.toPrecision(4));
}

/** Parse "lo:hi" (steps) from the URL; null when absent or malformed. */
export function parseRange(s: string | null | undefined): [number, number] | null {
  if (!s) return null;
  const m = /^(-?\d+):(-?\d+)$/.exec(s);
  if (!m) return null;
  const lo = Number(m[1]),
    hi = Number(m[2]);
  return Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && hi >= lo ? [lo, hi] : null;
}

export function fmtRange(r: [number, number] | null): string | null {
  return r ? r[0] + ":" + r[1] : null;
}

/** Clamp a zoom (in steps) to whole steps with at least 2 steps of width. */
export function zoomRange(loX: number, hiX: number): [number, number] | null {
  if (!Number.isFinite(loX) || !Number.isFinite(hiX)) return null;
  let lo = Math.floor(Math.min(loX, hiX)),
    hi = Math.ceil(Math.max(loX, hiX));
  if (hi - lo < 1) hi = lo + 1;
  return [lo, hi];
}
