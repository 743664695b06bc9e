// Hand-written canvas plots of the compare page: parallel coordinates (params against a
// metric, lines coloured by the metric, drag on an axis to brush a range) and a scatter of
// one param against a metric. Canvas text is drawn with fillText: never parsed as HTML.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { fmtNum } from "../../charts/data";
import { recordDraw } from "../../charts/plot";
import { Axis, ramp } from "./axes";

function setupCanvas(c: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  c.style.width = w + "px";
  c.style.height = h + "px";
  const ctx = c.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** The content-box width of an element whose only wide child is the canvas we size:
 * the canvas is absolutely positioned in a sizer, so it never widens what it measures. */
function useWidth(ref: { current: HTMLElement | null }): number {
  const [w, setW] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current!;
    setW(Math.floor(el.getBoundingClientRect().width));
    const ro = new ResizeObserver((es) => setW(Math.floor(es[0].contentRect.width)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return w;
}

const PAD = { l: 40, r: 70, t: 34, b: 20 };

export type Brushes = Record<string, [number, number]>;

export interface ParCoordsProps {
  axes: Axis[];
  /** the metric axis (last, colours the lines) */
  metric: Axis | null;
  labels: string[];
  /** raw metric values, for the hover readout */
  metricValues: (number | null)[];
  brushes: Brushes;
  onBrush: (b: Brushes) => void;
  onPick: (i: number) => void;
}

export function ParCoords(p: ParCoordsProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const width = useWidth(wrap);
  const height = 340;
  const all = p.metric ? [...p.axes, p.metric] : p.axes;
  const n = p.labels.length;
  const xs = (k: number) => PAD.l + (all.length <= 1 ? 0 : (k * (width - PAD.l - PAD.r)) / (all.length - 1));
  const ys = (t: number) => PAD.t + (1 - t) * (height - PAD.t - PAD.b);
  const [hover, setHover] = useState(-1);
  const drag = useRef<{ axis: string; y0: number } | null>(null);

  const inBrush = (i: number) => {
    for (const a of all) {
      const b = p.brushes[a.key];
      if (!b) continue;
      const v = a.pos[i];
      if (v === null || v < b[0] || v > b[1]) return false;
    }
    return true;
  };

  useEffect(() => {
    if (!width || !canvas.current) return;
    const t0 = performance.now();
    const ctx = setupCanvas(canvas.current, width, height);
    ctx.clearRect(0, 0, width, height);
    const line = (i: number, style: string, w: number) => {
      ctx.strokeStyle = style;
      ctx.lineWidth = w;
      ctx.beginPath();
      let pen = false;
      for (let k = 0; k < all.length; k++) {
        const v = all[k].pos[i];
        if (v === null) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(xs(k), ys(v));
        else ctx.moveTo(xs(k), ys(v));
        pen = true;
      }
      ctx.stroke();
    };
    const on: number[] = [];
    for (let i = 0; i < n; i++) {
      if (inBrush(i)) on.push(i);
      else line(i, "rgba(160,168,180,0.25)", 1);
    }
    // best-coloured lines last; a run without the metric is grey
    on.sort((a, b) => (p.metric?.pos[a] ?? -1) - (p.metric?.pos[b] ?? -1));
    for (const i of on) {
      const m = p.metric ? p.metric.pos[i] : null;
      line(i, m === null ? "rgba(120,120,120,0.6)" : ramp(m), n > 300 ? 1 : 1.5);
    }
    if (hover >= 0) line(hover, "#111", 3);
    // axes
    ctx.font = "11px system-ui, sans-serif";
    all.forEach((a, k) => {
      const x = xs(k);
      ctx.strokeStyle = "#6b7385";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, ys(0));
      ctx.lineTo(x, ys(1));
      ctx.stroke();
      const b = p.brushes[a.key];
      if (b) {
        ctx.fillStyle = "rgba(37,99,235,0.18)";
        ctx.fillRect(x - 7, ys(b[1]), 14, ys(b[0]) - ys(b[1]));
      }
      ctx.fillStyle = "#1d2330";
      ctx.textAlign = k === 0 ? "left" : k === all.length - 1 ? "right" : "center";
      const title = a.label.length > 24 ? a.label.slice(0, 23) + "…" : a.label;
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.fillText(title, x, 14);
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#6b7385";
      ctx.textAlign = "left";
      for (const t of a.ticks) ctx.fillText(t.label, x + 4, ys(t.at) + 4);
    });
    recordDraw("parcoords", n, performance.now() - t0);
  }, [width, p.axes, p.metric, p.brushes, hover, n]);

  const nearest = (mx: number, my: number): number => {
    if (all.length < 2) return -1;
    const seg = Math.max(0, Math.min(all.length - 2, Math.floor(((mx - PAD.l) / (width - PAD.l - PAD.r)) * (all.length - 1))));
    const x0 = xs(seg),
      x1 = xs(seg + 1);
    const f = Math.max(0, Math.min(1, (mx - x0) / (x1 - x0 || 1)));
    let best = -1,
      bd = 8;
    for (let i = 0; i < n; i++) {
      const a = all[seg].pos[i],
        b = all[seg + 1].pos[i];
      if (a === null || b === null || !inBrush(i)) continue;
      const d = Math.abs(ys(a + (b - a) * f) - my);
      if (d < bd) (bd = d), (best = i);
    }
    return best;
  };
  const axisAt = (mx: number): Axis | null => {
    for (let k = 0; k < all.length; k++) if (Math.abs(mx - xs(k)) < 10) return all[k];
    return null;
  };
  const pos = (e: MouseEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const tOf = (y: number) => Math.max(0, Math.min(1, 1 - (y - PAD.t) / (height - PAD.t - PAD.b)));

  return (
    <div class="canvasplot" data-testid="parcoords" data-lines={String(n)} data-axes={String(all.length)}>
      <div class="readout" ref={readout} />
      <div class="sizer" ref={wrap} />
      <canvas
        ref={canvas}
        class="hand"
        onMouseDown={(e) => {
          const [mx, my] = pos(e);
          const a = axisAt(mx);
          if (a) drag.current = { axis: a.key, y0: my };
        }}
        onMouseMove={(e) => {
          const [mx, my] = pos(e);
          if (drag.current) {
            const d = drag.current;
            if (Math.abs(my - d.y0) > 3) {
              const lo = tOf(Math.max(my, d.y0)),
                hi = tOf(Math.min(my, d.y0));
              p.onBrush({ ...p.brushes, [d.axis]: [lo, hi] });
            }
            return;
          }
          const i = nearest(mx, my);
          if (i !== hover) setHover(i);
          if (readout.current) {
            if (i < 0) readout.current.textContent = "";
            else {
              const m = p.metric ? p.metric.pos[i] : null;
              const v = p.metricValues[i];
              readout.current.textContent = p.labels[i] + (p.metric && m !== null ? " · " + p.metric.label + " " + (v === null || v === undefined ? "–" : fmtNum(v)) : "");
            }
          }
        }}
        onMouseUp={(e) => {
          const d = drag.current;
          drag.current = null;
          const [mx, my] = pos(e);
          if (d && Math.abs(my - d.y0) <= 3) {
            // a click on an axis clears its brush
            const rest = { ...p.brushes };
            delete rest[d.axis];
            p.onBrush(rest);
            return;
          }
          if (!d) {
            const i = nearest(mx, my);
            if (i >= 0) p.onPick(i);
          }
        }}
        onMouseLeave={() => {
          drag.current = null;
          setHover(-1);
        }}
      />
    </div>
  );
}

export interface ScatterProps {
  x: Axis | null;
  y: Axis | null;
  xValues: (string | null)[];
  yValues: (number | null)[];
  labels: string[];
  onPick: (i: number) => void;
}

export function Scatter(p: ScatterProps) {
  const box = useRef<HTMLDivElement>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const width = useWidth(wrap);
  const height = 300;
  const pad = { l: 64, r: 16, t: 10, b: 40 };
  const n = p.labels.length;
  const jitter = useRef<number[]>([]);
  if (jitter.current.length !== n) jitter.current = Array.from({ length: n }, (_, i) => (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.5);
  const px = (i: number): number | null => {
    const v = p.x?.pos[i];
    if (v === null || v === undefined) return null;
    const cat = p.x!.kind === "cat" ? (jitter.current[i] || 0) / Math.max(2, (p.x!.cats?.length || 1) * 1.5) : 0;
    return pad.l + (v + cat) * (width - pad.l - pad.r);
  };
  const py = (i: number): number | null => {
    const v = p.y?.pos[i];
    return v === null || v === undefined ? null : pad.t + (1 - v) * (height - pad.t - pad.b);
  };
  useEffect(() => {
    if (!width || !canvas.current) return;
    const ctx = setupCanvas(canvas.current, width, height);
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#dde2ea";
    ctx.strokeRect(pad.l, pad.t, width - pad.l - pad.r, height - pad.t - pad.b);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7385";
    if (p.y) {
      ctx.textAlign = "right";
      for (const t of p.y.ticks) ctx.fillText(t.label, pad.l - 4, pad.t + (1 - t.at) * (height - pad.t - pad.b) + 4);
    }
    if (p.x) {
      ctx.textAlign = "center";
      for (const t of p.x.ticks) ctx.fillText(t.label, pad.l + t.at * (width - pad.l - pad.r), height - pad.b + 14);
      ctx.fillStyle = "#1d2330";
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.fillText(p.x.label, pad.l + (width - pad.l - pad.r) / 2, height - 6);
    }
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      const x = px(i),
        y = py(i);
      if (x === null || y === null) continue;
      ctx.fillStyle = p.y ? ramp(p.y.pos[i] ?? 0) : "#2563eb";
      ctx.beginPath();
      ctx.arc(x, y, n > 300 ? 2.5 : 3.5, 0, Math.PI * 2);
      ctx.fill();
      drawn++;
    }
    box.current!.dataset.points = String(drawn);
  }, [width, p.x, p.y, n]);

  const nearest = (mx: number, my: number) => {
    let best = -1,
      bd = 64;
    for (let i = 0; i < n; i++) {
      const x = px(i),
        y = py(i);
      if (x === null || y === null) continue;
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bd) (bd = d), (best = i);
    }
    return best;
  };
  const pos = (e: MouseEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  return (
    <div class="canvasplot" data-testid="scatter" ref={box}>
      <div class="readout" ref={readout} />
      <div class="sizer" ref={wrap} />
      <canvas
        ref={canvas}
        class="hand"
        onMouseMove={(e) => {
          const [mx, my] = pos(e);
          const i = nearest(mx, my);
          if (readout.current)
            readout.current.textContent =
              i < 0 ? "" : p.labels[i] + " · " + (p.x?.label || "") + " = " + (p.xValues[i] ?? "–") + " · " + (p.y?.label || "") + " = " + (p.yValues[i] === null ? "–" : fmtNum(p.yValues[i]!));
        }}
        onClick={(e) => {
          const [mx, my] = pos(e);
          const i = nearest(mx, my);
          if (i >= 0) p.onPick(i);
        }}
      />
    </div>
  );
}
