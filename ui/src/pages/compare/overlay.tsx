// Overlay of one metric of up to 1,000 runs on one uPlot chart, from one binary request
// (POST /ui-api/v1/compare/series). Buckets line up across runs (one shared step range).
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ema, fmtNum, hasIsolated, LineMode, logGaps, plotColumn, zoomRange } from "../../charts/data";
import { color, cursor, recordDraw, selectHook, uPlot, xAxis, xScale, yAxis, yScale } from "../../charts/plot";
import { useUplot } from "../../charts/uplot";
import { OverlayData, overlaySeries } from "../../lib/api_runs";
import { ErrorView } from "../../lib/errors";
import * as perf from "../../lib/perf";

export interface OverlayProps {
  runIds: string[];
  metric: string;
  names: Record<string, string>;
  line: LineMode;
  log: boolean;
  smoothing: number;
  range: [number, number] | null;
  onRange: (r: [number, number] | null) => void;
  /** after each draw: "coarse" (every run, rollup resolution) and "full" (the wanted resolution) */
  onDrawn?: (phase: "coarse" | "full") => void;
}

/** Buckets per run: one per pixel for a few runs; fewer for many runs (<= ~250k points drawn). */
export function overlayBuckets(px: number, runs: number): number {
  const byPoints = Math.floor(250_000 / Math.max(1, runs));
  return Math.max(50, Math.min(Math.round(px), byPoints, 10_000));
}

/** uPlot columns from the block (empty buckets are not sent), NaN -> null. */
export function overlayColumns(d: OverlayData, line: LineMode, log: boolean, smoothing: number): { data: (ArrayLike<number | null>)[]; keep: number } {
  const data: (ArrayLike<number | null>)[] = [Array.from(d.x)];
  const src = line === "mean" ? d.avg : d.last;
  for (let i = 0; i < d.runIds.length; i++) data.push(plotColumn(smoothing > 0 ? ema(src[i], smoothing) : src[i], log));
  return { data, keep: d.columns };
}

/** Rollup-aligned buckets are at least this many steps wide (4 blocks of 256). */
const ALIGNED_STEPS = 1024;
/** First, coarse request when the span is unknown: 64 buckets are rollup-aligned from
 * 65,536 steps on, and cover every step of a short run. */
const COARSE = 64;

/**
 * Requests for one overlay. Buckets narrower than 1,024 steps make the server read every
 * point of every run (100 runs x 100k points: ~1 s on a quiet machine), wider ones come
 * from its rollup. So: when the step span is known (a zoom), one request, lowered to
 * whole 1,024-step buckets when that keeps at least half of the wanted resolution; else a
 * coarse first draw of every run (64 buckets), refined to the wanted resolution after it
 * (refineTo) when the span turns out to allow more.
 */
export function overlayPlan(want: number, span: number | null): { first: number; second: number | null } {
  if (span === null) return { first: Math.min(COARSE, want), second: null };
  const aligned = Math.floor(span / ALIGNED_STEPS);
  if (aligned >= Math.ceil(want / 2)) return { first: Math.min(aligned, want), second: null };
  if (aligned >= 8 && span > want) return { first: Math.min(aligned, COARSE), second: Math.min(want, span) };
  return { first: Math.min(want, Math.max(1, span)), second: null };
}

/** The refining request after a coarse answer, or null when it already shows every step
 * the wanted resolution could (a span of at most the coarse bucket count). */
export function refineTo(want: number, d: OverlayData): number | null {
  const span = d.stepHi - d.stepLo + 1;
  if (d.buckets >= want || span <= d.buckets) return null;
  const aligned = Math.floor(span / ALIGNED_STEPS);
  const n = aligned >= Math.ceil(want / 2) ? Math.min(aligned, want) : Math.min(want, span);
  return n > d.buckets ? n : null;
}

export function Overlay(p: OverlayProps) {
  const box = useRef<HTMLDivElement>(null);
  const plotEl = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const props = useRef(p);
  props.current = p;
  // key: the request (runs, metric, range) the data answers; the chart's data-* attributes
  // describe a draw only while it answers the current request
  const [data, setData] = useState<(OverlayData & { phase: "coarse" | "full"; key: string }) | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [drawn, setDrawn] = useState<{ runs: number; buckets: number; phase: string; key: string } | null>(null);
  const [width, setWidth] = useState(0);
  const zoomPending = useRef(false);
  const height = 360;
  const { U: UPlot, err: uplotErr } = useUplot();
  useEffect(() => {
    if (!uplotErr) return; // nothing will be drawn: the page is done waiting
    props.current.onDrawn?.("coarse");
    props.current.onDrawn?.("full");
  }, [uplotErr]);

  useLayoutEffect(() => {
    const el = box.current!;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => {
      if (plot.current && el.clientWidth > 0) plot.current.setSize({ width: el.clientWidth, height });
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const runsKey = p.runIds.join(",");
  const lo = p.range ? p.range[0] : null;
  const hi = p.range ? p.range[1] : null;
  const reqKey = [runsKey, p.metric, lo, hi].join("|");
  useEffect(() => {
    if (!width || !p.metric || p.runIds.length === 0) return;
    const ac = new AbortController();
    const want = overlayBuckets(width - 70, p.runIds.length);
    const ask = (buckets: number) =>
      overlaySeries({ run_ids: p.runIds, key: p.metric, buckets, step_min: lo, step_max: hi }, ac.signal);
    const fail = (e: unknown) => {
      if ((e as Error).name === "AbortError") return;
      setLoading(false);
      setErr(e);
      props.current.onDrawn?.("coarse");
      props.current.onDrawn?.("full");
    };
    setLoading(true);
    const plan = overlayPlan(want, lo !== null && hi !== null ? hi - lo + 1 : null);
    ask(plan.first).then((d) => {
      setErr(null);
      const second = plan.second ?? refineTo(want, d);
      if (second === null) {
        setLoading(false);
        setData({ ...d, phase: "full", key: reqKey });
        return;
      }
      setData({ ...d, phase: "coarse", key: reqKey });
      return ask(second).then((d2) => {
        setLoading(false);
        setData({ ...d2, phase: "full", key: reqKey });
      });
    }).catch(fail);
    return () => ac.abort();
  }, [width, runsKey, p.metric, lo, hi]);

  useEffect(() => {
    if (!data || !plotEl.current || !UPlot) return;
    const t0 = performance.now();
    const { data: cols, keep } = overlayColumns(data, p.line, p.log, p.smoothing);
    plot.current?.destroy();
    const ia = {
      onXRange: (r: [number, number] | null) => {
        const z = r ? zoomRange(r[0], r[1]) : null;
        if (!z && !props.current.range) return;
        perf.start("chart_zoom");
        zoomPending.current = true;
        props.current.onRange(z);
      },
    };
    const many = data.runIds.length > 50;
    const dim = data.runIds.length <= 100;
    const series: uPlot.Series[] = [{}];
    const lines = p.line === "mean" ? data.avg : data.last;
    data.runIds.forEach((id, i) =>
      // on a log axis a run's line breaks at the values <= 0 it cannot draw; a run whose
      // line has a point with no neighbour (a metric logged once) shows its points
      series.push({ label: id, stroke: color(i), width: many ? 1 : 1.5, spanGaps: !p.log,
                    points: hasIsolated(lines[i], !!p.log) ? { show: true, size: 5 } : { show: false } }),
    );
    const opts: uPlot.Options = {
      width: box.current!.clientWidth || 800,
      height,
      series,
      scales: { x: xScale("step"), y: yScale(p.log) },
      axes: [xAxis("step"), yAxis()],
      // uPlot's focus dims every other series (a full redraw per hover change): only for
      // a few runs; the readout finds the closest run itself either way
      cursor: { ...cursor(null, ia), points: { show: false }, focus: { prox: dim ? 12 : -1 } },
      focus: { alpha: dim ? 0.25 : 1 },
      legend: { show: false },
      hooks: {
        setSelect: [selectHook(ia)],
        setCursor: [(u) => showReadout(u)],
      },
    };
    function showReadout(u: uPlot) {
      const el = readout.current;
      if (!el) return;
      const i = u.cursor.idx;
      if (i == null || i < 0 || u.cursor.top == null || u.cursor.top < 0) {
        el.textContent = "";
        return;
      }
      const x = u.data[0][i];
      let text = "step " + fmtNum(x as number);
      // the run whose value at this bucket is closest to the pointer (O(runs) per move)
      const y = u.posToVal(u.cursor.top, "y");
      let focused = -1,
        best = Infinity;
      for (let k = 1; k < u.data.length; k++) {
        const v = u.data[k][i];
        if (v == null) continue;
        const d = Math.abs((v as number) - y);
        if (d < best) (best = d), (focused = k);
      }
      if (focused > 0) {
        const id = data!.runIds[focused - 1];
        const v = u.data[focused][i];
        text += " · " + (props.current.names[id] || id) + ": " + (v == null ? "–" : fmtNum(v as number));
      }
      el.textContent = text; // text only: run names are user strings
    }
    plot.current = new UPlot(opts, cols as uPlot.AlignedData, plotEl.current);
    if (p.range) plot.current.setScale("x", { min: p.range[0], max: p.range[1] });
    const ms = performance.now() - t0;
    recordDraw("compare:" + p.metric, keep, ms);
    setDrawn({ runs: data.runIds.length, buckets: keep, phase: data.phase, key: data.key });
    // a coarse draw is the first complete chart; the full one follows (or is this one)
    p.onDrawn?.("coarse");
    if (data.phase === "full") p.onDrawn?.("full");
    if (zoomPending.current && data.phase === "full") {
      zoomPending.current = false;
      void perf.endAfterFrame("chart_zoom");
    }
  }, [data, p.line, p.log, p.smoothing, UPlot]);

  useEffect(() => () => plot.current?.destroy(), []);

  // the last draw, while it answers the current request (an older one stays on screen
  // until the new answer comes, but is not described as this request's chart)
  const current = drawn && drawn.key === reqKey ? drawn : null;
  let logHidden = 0;
  if (data && p.log) for (const a of p.line === "mean" ? data.avg : data.last) logHidden += logGaps(a).hidden;
  return (
    <div
      class="overlay mchart"
      ref={box}
      data-testid="compare-chart"
      data-metric={p.metric}
      data-runs={current ? String(current.runs) : undefined}
      data-buckets={current ? String(current.buckets) : undefined}
      data-phase={current ? current.phase : undefined}
    >
      <div class="mchart-head">
        <span class="mchart-title">{p.metric}</span>
        {loading && <span class="muted mchart-note">{data ? "refining…" : "loading…"}</span>}
        {data && (
          <span class="muted mchart-note">
            {data.runIds.length} of {p.runIds.length} runs have points{p.range ? " in this range" : ""}
          </span>
        )}
        {logHidden > 0 && (
          <span class="mchart-warn" data-testid="log-hidden" title="a log axis cannot draw values <= 0 (counted per bucket of each run's line)">
            {logHidden} bucket{logHidden === 1 ? "" : "s"} ≤ 0 hidden
          </span>
        )}
        {p.range && (
          <button class="mchart-reset" onClick={() => p.onRange(null)}>
            reset zoom
          </button>
        )}
      </div>
      <div class="readout" ref={readout} />
      {err || uplotErr ? <ErrorView error={err || uplotErr} /> : null}
      <div ref={plotEl} class="mchart-plot" />
    </div>
  );
}
