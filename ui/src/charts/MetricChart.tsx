// One metric of one run: the server's downsampled buckets (one per pixel of width),
// drawn as a min/max band plus the bucket's last (or mean) value, optionally smoothed.
// Drawn only once scrolled into view; zoom/pan re-bucket from the server.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { downsample } from "../lib/api_runs";
import { ErrorView } from "../lib/errors";
import * as perf from "../lib/perf";
import { Buckets, bucketsFor, chartColumns, fmtNum, hasIsolated, LineMode, logGaps, stepOfX, toBuckets, XMode, zoomRange, xOfStep } from "./data";
import { color, cursor, recordDraw, selectHook, uPlot, xAxis, xScale, yAxis, yScale } from "./plot";
import { useUplot } from "./uplot";
import { whenVisible } from "./visible";
import "./charts.css";

export interface MetricChartProps {
  runId: string;
  metric: string;
  runStartMs: number;
  x: XMode;
  line: LineMode;
  log: boolean;
  smoothing: number;
  /** zoom in steps, null = every step */
  range: [number, number] | null;
  onRange: (metric: string, r: [number, number] | null) => void;
  syncKey: string;
  /** steps the chart spans unzoomed (an estimate is fine: it only picks the bucket count) */
  span?: number;
  /** bumped by the live tail: fetch again */
  refresh: number;
  colorIndex?: number;
  onDrawn?: (metric: string) => void;
  height?: number;
}

const PLOT_PAD = 70; // y axis + padding, px

export function MetricChart(p: MetricChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plotEl = useRef<HTMLDivElement>(null);
  const plot = useRef<{ u: uPlot; key: string } | null>(null);
  const props = useRef(p);
  props.current = p;
  const [visible, setVisible] = useState(false);
  const [buckets, setBuckets] = useState<Buckets | null>(null);
  const showPoints = !!buckets && hasIsolated(p.line === "mean" ? buckets.avg : buckets.last, !!p.log);
  const [drawn, setDrawn] = useState<number | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [width, setWidth] = useState(0);
  const zoomPending = useRef(false);
  const height = p.height || 200;
  const { U: UPlot, err: uplotErr } = useUplot();
  useEffect(() => {
    if (uplotErr) p.onDrawn?.(p.metric); // nothing will be drawn: the page is done waiting
  }, [uplotErr]);

  // Layout effects from here to the draw: a chart on screen asks for its buckets in the
  // commit that mounts it and draws in the commit that receives them, not one frame later
  // each time (a passive effect waits for the next frame: 30-70 ms of a cold load here).
  useLayoutEffect(() => whenVisible(box.current!, () => setVisible(true)), []);

  useLayoutEffect(() => {
    const el = box.current!;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (plot.current && w > 0) plot.current.u.setSize({ width: w, height });
      // fetch again only when the bucket count would change noticeably
      setWidth((old) => (Math.abs(w - old) > old * 0.2 ? w : old));
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const everTimeAxis = useRef(false);
  everTimeAxis.current ||= p.x !== "step";
  const timeAxis = everTimeAxis.current;
  const lo = p.range ? p.range[0] : null;
  const hi = p.range ? p.range[1] : null;
  useLayoutEffect(() => {
    if (!visible || width <= 0) return;
    const ac = new AbortController();
    setLoading(true);
    const span = lo !== null && hi !== null ? hi - lo + 1 : p.span;
    // the exact first and last points only anchor a time axis (one lookup less on the
    // server); once this chart has shown one, it keeps asking for them
    const ends = timeAxis ? undefined : false;
    downsample({ run_ids: [p.runId], key: p.metric, buckets: bucketsFor(width - PLOT_PAD, span, lo ?? 0), step_min: lo, step_max: hi, ends }, ac.signal).then(
      (series) => {
        setErr(null);
        setLoading(false);
        const s = series.find((x) => x.run_id === p.runId);
        setBuckets(s ? toBuckets(s) : { ...EMPTY, stepLo: lo ?? 0, stepHi: hi ?? 0 });
      },
      (e) => {
        if ((e as Error).name === "AbortError") return;
        setLoading(false);
        setErr(e);
        p.onDrawn?.(p.metric);
      },
    );
    return () => ac.abort();
  }, [visible, width > 0 ? bucketsFor(width - PLOT_PAD) : 0, p.runId, p.metric, lo, hi, p.refresh, timeAxis]);

  useLayoutEffect(() => {
    if (!buckets || !plotEl.current || !UPlot) return;
    // buckets asked for a step axis carry no time anchors: a time axis waits for its own
    if (p.x !== "step" && buckets.n > 0 && buckets.anchors.length === 0) return;
    const t0 = performance.now();
    const cols = chartColumns(buckets, { x: p.x, line: p.line, log: p.log, smoothing: p.smoothing, runStartMs: p.runStartMs });
    // The line shows its points when some would draw no segment: a metric logged once,
    // isolated points, or (on a log axis, where values <= 0 are gaps) points between gaps.
    const pts = showPoints ? { show: true, size: 5 } : { show: false };
    const key = [p.x, p.log, cols.smoothed, p.line, p.syncKey, pts.show].join("|");
    const w = box.current!.clientWidth || 600;
    if (plot.current && plot.current.key === key) {
      plot.current.u.setData(cols.data as uPlot.AlignedData, true);
    } else {
      plot.current?.u.destroy();
      const c = color(p.colorIndex || 0);
      const ia = { onXRange: (r: [number, number] | null) => onXRange(r) };
      const series: uPlot.Series[] = [
        {},
        // the band's edges are drawn too, so a one-bucket spike is a visible line, not a hairline of fill
        { label: "min", stroke: edge(c), width: 1, points: { show: false }, value: (_u, v) => (v == null ? "–" : fmtNum(v)) },
        { label: "max", stroke: edge(c), width: 1, points: { show: false }, value: (_u, v) => (v == null ? "–" : fmtNum(v)) },
        {
          label: p.line === "mean" ? "mean" : "last",
          stroke: cols.smoothed ? fade(c) : c,
          width: cols.smoothed ? 1 : 1.5,
          points: pts,
          spanGaps: !p.log,
          value: (_u, v) => (v == null ? "–" : fmtNum(v)),
        },
      ];
      if (cols.smoothed) series.push({ label: "EMA", stroke: c, width: 2, points: pts, spanGaps: !p.log, value: (_u, v) => (v == null ? "–" : fmtNum(v)) });
      const opts: uPlot.Options = {
        width: w,
        height,
        series,
        bands: [{ series: [2, 1], fill: bandFill(c) }],
        scales: { x: xScale(p.x), y: yScale(p.log) },
        axes: [xAxis(p.x), yAxis()],
        cursor: cursor(p.syncKey, ia),
        legend: { show: true, live: true },
        hooks: { setSelect: [selectHook(ia)] },
      };
      plot.current = { u: new UPlot(opts, cols.data as uPlot.AlignedData, plotEl.current), key };
    }
    const u = plot.current.u;
    if (p.range && buckets.n > 0) {
      const a = buckets.anchors;
      u.setScale("x", { min: xOfStep(p.range[0], p.x, a, p.runStartMs), max: xOfStep(p.range[1], p.x, a, p.runStartMs) });
    }
    const ms = performance.now() - t0;
    recordDraw(p.metric, buckets.n, ms);
    setDrawn(buckets.n);
    p.onDrawn?.(p.metric);
    if (zoomPending.current) {
      zoomPending.current = false;
      void perf.endAfterFrame("chart_zoom");
    }
  }, [buckets, p.x, p.line, p.log, p.smoothing, p.syncKey, UPlot]);

  useEffect(() => () => plot.current?.u.destroy(), []);

  function onXRange(r: [number, number] | null) {
    const cur = props.current;
    const b = buckets0.current;
    if (r === null) {
      if (!cur.range) return;
      perf.start("chart_zoom");
      zoomPending.current = true;
      cur.onRange(cur.metric, null);
      return;
    }
    const a = b ? b.anchors : [];
    const z = zoomRange(stepOfX(r[0], cur.x, a, cur.runStartMs), stepOfX(r[1], cur.x, a, cur.runStartMs));
    if (!z) return;
    perf.start("chart_zoom");
    zoomPending.current = true;
    cur.onRange(cur.metric, z);
  }
  const buckets0 = useRef<Buckets | null>(null);
  buckets0.current = buckets;

  const nonFinite = buckets ? buckets.nanCount + buckets.infCount : 0;
  const logHidden = buckets && p.log ? logGaps(p.line === "mean" ? buckets.avg : buckets.last).hidden : 0;
  return (
    <div class="mchart" ref={box} data-testid="chart" data-metric={p.metric} data-buckets={drawn === null ? undefined : String(drawn)}
      data-points={showPoints ? "shown" : undefined}>
      <div class="mchart-head">
        <span class="mchart-title" title={p.metric}>{p.metric}</span>
        {loading && <span class="muted mchart-note">loading…</span>}
        {nonFinite > 0 && (
          <span class="mchart-warn" title="NaN and Inf points cannot be drawn; they are counted here">
            {buckets!.nanCount > 0 ? buckets!.nanCount + " NaN" : ""}
            {buckets!.nanCount > 0 && buckets!.infCount > 0 ? ", " : ""}
            {buckets!.infCount > 0 ? buckets!.infCount + " ±Inf" : ""}
          </span>
        )}
        {logHidden > 0 && (
          <span class="mchart-warn" data-testid="log-hidden" title="a log axis cannot draw values <= 0 (counted per bucket of the line)">
            {logHidden} bucket{logHidden === 1 ? "" : "s"} ≤ 0 hidden
          </span>
        )}
        {p.range && (
          <button class="mchart-reset" title="show every step (double click the chart)" onClick={() => onXRange(null)}>
            reset zoom
          </button>
        )}
      </div>
      {err || uplotErr ? <ErrorView error={err || uplotErr} /> : null}
      {buckets && buckets.n === 0 && <div class="muted mchart-empty">no points in this range</div>}
      <div ref={plotEl} class="mchart-plot" />
      {!buckets && !err && <div class="mchart-placeholder" />}
    </div>
  );
}

const EMPTY: Buckets = {
  n: 0,
  stepLo: 0,
  stepHi: 0,
  stepFirst: new Float64Array(0),
  stepLast: new Float64Array(0),
  count: new Float64Array(0),
  min: new Float64Array(0),
  max: new Float64Array(0),
  avg: new Float64Array(0),
  last: new Float64Array(0),
  nanCount: 0,
  infCount: 0,
  anchors: [],
};

function fade(c: string): string {
  return c.startsWith("#") ? c + "66" : c;
}

function edge(c: string): string {
  return c.startsWith("#") ? c + "59" : c;
}

function bandFill(c: string): string {
  return c.startsWith("#") ? c + "33" : c;
}
