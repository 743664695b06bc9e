// Overlay of one metric of up to 1,000 runs on one uPlot chart, from one binary request
// (POST /ui-api/v1/compare/series). Buckets line up across runs (one shared step range).
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ema, fmtNum, LineMode, plotColumn, zoomRange } from "../../charts/data";
import { color, cursor, recordDraw, selectHook, uPlot, xAxis, xScale, yAxis, yScale } from "../../charts/plot";
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
  onDrawn?: () => void;
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

export function Overlay(p: OverlayProps) {
  const box = useRef<HTMLDivElement>(null);
  const plotEl = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const props = useRef(p);
  props.current = p;
  const [data, setData] = useState<OverlayData | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [drawn, setDrawn] = useState<{ runs: number; buckets: number } | null>(null);
  const [width, setWidth] = useState(0);
  const zoomPending = useRef(false);
  const height = 360;

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
  useEffect(() => {
    if (!width || !p.metric || p.runIds.length === 0) return;
    const ac = new AbortController();
    setLoading(true);
    overlaySeries({ run_ids: p.runIds, key: p.metric, buckets: overlayBuckets(width - 70, p.runIds.length), step_min: lo, step_max: hi }, ac.signal).then(
      (d) => {
        setLoading(false);
        setErr(null);
        setData(d);
      },
      (e) => {
        if ((e as Error).name === "AbortError") return;
        setLoading(false);
        setErr(e);
        p.onDrawn?.();
      },
    );
    return () => ac.abort();
  }, [width, runsKey, p.metric, lo, hi]);

  useEffect(() => {
    if (!data || !plotEl.current) return;
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
    const series: uPlot.Series[] = [{}];
    data.runIds.forEach((id, i) =>
      series.push({ label: p.names[id] || id.slice(0, 8), stroke: color(i), width: many ? 1 : 1.5, points: { show: false }, spanGaps: true }),
    );
    const opts: uPlot.Options = {
      width: box.current!.clientWidth || 800,
      height,
      series,
      scales: { x: xScale("step"), y: yScale(p.log) },
      axes: [xAxis("step"), yAxis()],
      cursor: { ...cursor(null, ia), points: { show: false }, focus: { prox: 12 } },
      focus: { alpha: 0.25 },
      legend: { show: false },
      hooks: {
        setSelect: [selectHook(ia)],
        setCursor: [(u) => showReadout(u)],
        setSeries: [
          (u, i, o) => {
            if (o && (o as any).focus !== undefined) focused = i == null ? -1 : i;
            showReadout(u);
          },
        ],
      },
    };
    let focused = -1;
    function showReadout(u: uPlot) {
      const el = readout.current;
      if (!el) return;
      const i = u.cursor.idx;
      if (i == null || i < 0) {
        el.textContent = "";
        return;
      }
      const x = u.data[0][i];
      let text = "step " + fmtNum(x as number);
      if (focused > 0) {
        const id = data!.runIds[focused - 1];
        const v = u.data[focused][i];
        text += " · " + (props.current.names[id] || id) + ": " + (v == null ? "–" : fmtNum(v as number));
      }
      el.textContent = text; // text only: run names are user strings
    }
    plot.current = new uPlot(opts, cols as uPlot.AlignedData, plotEl.current);
    if (p.range) plot.current.setScale("x", { min: p.range[0], max: p.range[1] });
    const ms = performance.now() - t0;
    recordDraw("compare:" + p.metric, keep, ms);
    setDrawn({ runs: data.runIds.length, buckets: keep });
    p.onDrawn?.();
    if (zoomPending.current) {
      zoomPending.current = false;
      void perf.endAfterFrame("chart_zoom");
    }
  }, [data, p.line, p.log, p.smoothing, p.names]);

  useEffect(() => () => plot.current?.destroy(), []);

  return (
    <div
      class="overlay mchart"
      ref={box}
      data-testid="compare-chart"
      data-metric={p.metric}
      data-runs={drawn ? String(drawn.runs) : undefined}
      data-buckets={drawn ? String(drawn.buckets) : undefined}
    >
      <div class="mchart-head">
        <span class="mchart-title">{p.metric}</span>
        {loading && <span class="muted mchart-note">loading…</span>}
        {data && (
          <span class="muted mchart-note">
            {data.runIds.length} of {p.runIds.length} runs have points{p.range ? " in this range" : ""}
          </span>
        )}
        {p.range && (
          <button class="mchart-reset" onClick={() => p.onRange(null)}>
            reset zoom
          </button>
        )}
      </div>
      <div class="readout" ref={readout} />
      {err ? <ErrorView error={err} /> : null}
      <div ref={plotEl} class="mchart-plot" />
    </div>
  );
}
