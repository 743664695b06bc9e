// Axis mapping for the hand-written canvas plots (parallel coordinates, scatter):
// a param is numeric when every present value parses as a finite number (log scale when
// all are positive and span >= 2 decades), categorical otherwise.
import { fmtNum } from "../../charts/data";

export interface Axis {
  key: string;
  label: string;
  kind: "num" | "log" | "cat";
  /** per run: position in [0, 1] (0 = bottom/left), null when the run lacks the value */
  pos: (number | null)[];
  ticks: { at: number; label: string }[];
  /** categorical values in axis order */
  cats?: string[];
}

export function numericAxis(key: string, label: string, vals: (number | null)[]): Axis {
  let lo = Infinity,
    hi = -Infinity;
  for (const v of vals) if (v !== null && Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  if (lo === Infinity) return { key, label, kind: "num", pos: vals.map(() => null), ticks: [] };
  const log = lo > 0 && hi / lo >= 100;
  const f = log ? Math.log10 : (v: number) => v;
  const a = f(lo),
    b = f(hi);
  const span = b - a || 1;
  const pos = vals.map((v) => (v === null || !Number.isFinite(v) ? null : b === a ? 0.5 : (f(v) - a) / span));
  const ticks: { at: number; label: string }[] = [];
  if (b === a) ticks.push({ at: 0.5, label: fmtNum(lo) });
  else if (log) {
    for (let e = Math.ceil(a); e <= Math.floor(b); e++) ticks.push({ at: (e - a) / span, label: fmtNum(Math.pow(10, e)) });
    if (ticks.length < 2) ticks.splice(0, ticks.length, { at: 0, label: fmtNum(lo) }, { at: 1, label: fmtNum(hi) });
  } else {
    const step = niceStep((hi - lo) / 4);
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      const r = Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12);
      ticks.push({ at: (r - lo) / (hi - lo), label: fmtNum(r) });
    }
  }
  return { key, label, kind: log ? "log" : "num", pos, ticks };
}

/** 1, 2 or 5 times a power of ten, near `raw`. */
export function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/** Axis of one param's values (present[i] false = the run lacks the param). */
export function paramAxis(key: string, values: string[], present: boolean[]): Axis {
  const nums: (number | null)[] = [];
  let numeric = true;
  for (let i = 0; i < values.length; i++) {
    if (!present[i]) {
      nums.push(null);
      continue;
    }
    const s = values[i].trim();
    const v = s === "" ? NaN : Number(s);
    if (!Number.isFinite(v)) {
      numeric = false;
      break;
    }
    nums.push(v);
  }
  if (numeric) return numericAxis(key, key, nums);
  const cats = Array.from(new Set(values.filter((_, i) => present[i]))).sort();
  const at = new Map(cats.map((c, i) => [c, cats.length === 1 ? 0.5 : i / (cats.length - 1)]));
  const every = Math.max(1, Math.ceil(cats.length / 20));
  return {
    key,
    label: key,
    kind: "cat",
    pos: values.map((v, i) => (present[i] ? at.get(v)! : null)),
    ticks: cats.filter((_, i) => i % every === 0).map((c) => ({ at: at.get(c)!, label: c.length > 18 ? c.slice(0, 17) + "…" : c })),
    cats,
  };
}

/** Params whose values differ between runs (the interesting axes of a sweep). */
export function varyingParams(params: Record<string, { values: string[]; present: boolean[] }>): string[] {
  const out: string[] = [];
  for (const [k, col] of Object.entries(params)) {
    const seen = new Set<string>();
    let missing = false;
    col.values.forEach((v, i) => (col.present[i] ? seen.add(v) : (missing = true)));
    if (seen.size > 1 || (seen.size === 1 && missing)) out.push(k);
  }
  return out.sort();
}

/** Blue -> teal -> yellow ramp for t in [0, 1] (a viridis-like scale). */
export function ramp(t: number): string {
  const stops = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
