// Compare page (#/compare?runs=a,b,c): an overlay chart of one metric of up to 1,000
// runs, a parallel-coordinates plot of params against that metric, a scatter of one param
// against it, and a param/metric diff table. View state in the hash query:
//   runs=<ids>  m=<metric>  line=last|mean  log=1  sm=0..0.99  z=lo:hi (overlay zoom)
//   pc=<param,...> (parallel-coordinates axes)  pb=<axis>~lo~hi|... (brushes, 0..1)
//   sx=<param> (scatter x)  diff=all (every key, not only those that differ)
import { useEffect, useMemo, useState } from "preact/hooks";
import { fmtNum, fmtRange, LineMode, parseRange } from "../../charts/data";
import "../../charts/charts.css";
import { CompareTable, compareRuns, lookupRuns, num, RunRef } from "../../lib/api_runs";
import { ErrorView } from "../../lib/errors";
import * as perf from "../../lib/perf";
import { navigate, navigated, Route, runLink, setParams, splitList } from "../../lib/url";
import { Axis, numericAxis, paramAxis, varyingParams } from "./axes";
import { Brushes, ParCoords, Scatter } from "./canvasplots";
import { Overlay } from "./overlay";
import "./compare.css";

export const MAX_RUNS = 1000;
type RunName = RunRef;

export function ComparePage({ route }: { route: Route }) {
  const q = route.params;
  const allIds = splitList(q.get("runs"));
  const runIds = useMemo(() => Array.from(new Set(allIds)).slice(0, MAX_RUNS), [q.get("runs")]);
  const runsKey = runIds.join(",");
  // The overlay goes first: with a metric in the URL, the run lookup below is made once
  // the first chart is drawn (or failed), and the runs x params table once it is refined,
  // so they do not compete with it on the server.
  const metricInUrl = !!q.get("m");
  const [firstDrawn, setFirstDrawn] = useState(false);
  const [chartDone, setChartDone] = useState(false);
  useEffect(() => {
    if (runIds.length === 0) return;
    for (const m of ["compare", "compare_full"]) {
      if (!navigated()) perf.startAtNavigation(m);
      else perf.start(m);
    }
    setFirstDrawn(false);
    setChartDone(false);
  }, [runsKey]);

  // One light search per 200 runs gives the names and experiments (labels, run links)
  // and finds the runs that are missing, deleted or not readable: those would fail or
  // mislead the page's requests, so the page then compares the others and lists these.
  const [usable, setUsable] = useState<string[] | null>(null);
  const [names, setNames] = useState<Record<string, RunName>>({});
  const wantLookup = runIds.length > 0 && (!metricInUrl || firstDrawn);
  useEffect(() => {
    setUsable(null);
  }, [runsKey]);
  useEffect(() => {
    if (!wantLookup) return;
    const ac = new AbortController();
    lookupRuns(runIds, ac.signal, (part) => setNames((old) => ({ ...old, ...part }))).then(
      (found) => {
        const ok = runIds.filter((id) => found[id] && !found[id].deleted);
        setUsable(ok.length === runIds.length ? null : ok);
      },
      () => undefined,
    );
    return () => ac.abort();
  }, [runsKey, wantLookup]);
  const ids = usable ?? runIds;
  const idsKey = ids.join(",");
  const missing = usable ? runIds.filter((id) => !usable.includes(id)) : [];
  const [table, setTable] = useState<CompareTable | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    setTable(null);
    setErr(null);
  }, [idsKey]);
  const wantTable = ids.length > 0 && (!metricInUrl || chartDone);
  useEffect(() => {
    if (!wantTable) return;
    const ac = new AbortController();
    compareRuns(ids, [], [], ac.signal).then(setTable, (e) => (e as Error).name !== "AbortError" && setErr(e));
    return () => ac.abort();
  }, [idsKey, wantTable]);
  // compare: the first complete chart (every run; coarse when the span needs raw points
  // for full resolution); compare_full: the chart at the wanted resolution
  const onChartDrawn = (phase: "coarse" | "full") => {
    setFirstDrawn(true);
    if (phase === "coarse") {
      void perf.endAfterFrame("compare");
      // the table and names wait for the refined chart, but not for long
      setTimeout(() => setChartDone(true), 1500);
    } else {
      setChartDone(true);
      void perf.endAfterFrame("compare_full");
    }
  };
  const labelOf = (id: string) => (names[id] ? names[id].name : id.slice(0, 8));
  const nameMap = useMemo(() => Object.fromEntries(ids.map((id) => [id, labelOf(id)])), [names, idsKey]);
  if (runIds.length === 0) return <EmptyCompare />;

  const metricKeys = table ? Object.keys(table.metrics).sort() : [];
  const metric = q.get("m") || (table ? pickMetric(metricKeys) : "");
  const line = (q.get("line") === "mean" ? "mean" : "last") as LineMode;
  const log = q.get("log") === "1";
  const sm = Math.max(0, Math.min(0.99, Number(q.get("sm")) || 0));

  const open = (id: string) => {
    const n = names[id];
    navigate(runLink(n ? n.experimentId : "0", id));
  };

  return (
    <div class="compare">
      <h1>
        Compare {runIds.length} run{runIds.length === 1 ? "" : "s"}
        {allIds.length > MAX_RUNS && <span class="muted"> (first {MAX_RUNS} of {allIds.length})</span>}
      </h1>
      {missing.length > 0 && (
        <div class="error" role="alert" data-testid="compare-missing">
          {missing.length} of {runIds.length} runs are not shown (missing, deleted or not readable): {missing.slice(0, 20).join(", ")}
          {missing.length > 20 ? ", …" : ""}
        </div>
      )}
      {err ? <ErrorView error={err} /> : null}
      <div class="chart-controls">
        <label>
          Metric{" "}
          <select value={metric} onChange={(e) => setParams({ m: (e.target as HTMLSelectElement).value, z: null })} data-testid="compare-metric">
            {!metricKeys.includes(metric) && metric && <option value={metric}>{metric}</option>}
            {metricKeys.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <span class="seg" title="line through each bucket">
          {(["last", "mean"] as const).map((m) => (
            <button class={line === m ? "on" : ""} onClick={() => setParams({ line: m === "last" ? null : m })}>
              {m === "last" ? "Last" : "Mean"}
            </button>
          ))}
        </span>
        <label>
          <input type="checkbox" checked={log} onChange={(e) => setParams({ log: (e.target as HTMLInputElement).checked ? "1" : null })} /> Log scale
        </label>
        <label>
          Smoothing{" "}
          <input
            type="range"
            min="0"
            max="0.99"
            step="0.01"
            value={sm}
            onChange={(e) => setParams({ sm: Number((e.target as HTMLInputElement).value) > 0 ? (e.target as HTMLInputElement).value : null })}
          />
          <span class="num smval">{sm.toFixed(2)}</span>
        </label>
        <span class="muted hint">drag to zoom · shift+drag to pan · double click to reset · hover a line for its run</span>
      </div>
      {metric ? (
        <Overlay
          runIds={ids}
          metric={metric}
          names={nameMap}
          line={line}
          log={log}
          smoothing={sm}
          range={parseRange(q.get("z"))}
          onRange={(r) => setParams({ z: fmtRange(r) })}
          onDrawn={onChartDrawn}
        />
      ) : table ? (
        <div class="muted">These runs have no metrics.</div>
      ) : (
        <div class="loading">Loading…</div>
      )}
      {table && <Sweep table={table} metric={metric} params={q} labels={ids.map(labelOf)} onPick={(i) => open(ids[i])} />}
      {table && <DiffTable table={table} runIds={ids} labelOf={labelOf} names={names} all={q.get("diff") === "all"} />}
    </div>
  );
}

/** The ids among `ids` of active runs the caller may read (runs/search, 200 at a time). */
function pickMetric(keys: string[]): string {
  return keys.find((k) => /(^|[/._])loss$/i.test(k)) || keys[0] || "";
}

function EmptyCompare() {
  const [text, setText] = useState("");
  return (
    <div class="compare">
      <h1>Compare runs</h1>
      <p class="muted">Select runs in an experiment's runs table and press Compare, or paste run ids (comma, space or newline separated).</p>
      <textarea class="ids" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} rows={4} />
      <div>
        <button
          class="primary"
          onClick={() => {
            const ids = text.split(/[\s,]+/).filter(Boolean).slice(0, MAX_RUNS);
            if (ids.length) setParams({ runs: ids.join(",") });
          }}
        >
          Compare
        </button>
      </div>
    </div>
  );
}

// ------------------------------------------------------------ sweep plots

function parseBrushes(s: string | null): Brushes {
  const out: Brushes = {};
  for (const part of (s || "").split("|")) {
    const [k, a, b] = part.split("~");
    if (k && Number.isFinite(Number(a)) && Number.isFinite(Number(b))) out[k] = [Number(a), Number(b)];
  }
  return out;
}

function fmtBrushes(b: Brushes): string | null {
  const parts = Object.entries(b).map(([k, [lo, hi]]) => k + "~" + lo.toFixed(3) + "~" + hi.toFixed(3));
  return parts.length ? parts.join("|") : null;
}

function Sweep({ table, metric, params, labels, onPick }: { table: CompareTable; metric: string; params: URLSearchParams; labels: string[]; onPick: (i: number) => void }) {
  const varying = useMemo(() => varyingParams(table.params), [table]);
  const allParams = useMemo(() => Object.keys(table.params).sort(), [table]);
  const pcParam = params.get("pc");
  const chosen = (pcParam !== null ? splitList(pcParam) : varying.slice(0, 8)).filter((k) => table.params[k]);
  const sx = params.get("sx") || chosen[0] || varying[0] || allParams[0] || "";
  const brushes = parseBrushes(params.get("pb"));

  const metricVals = useMemo(() => {
    const col = table.metrics[metric];
    return table.run_ids.map((_, i) => (col && col.present[i] ? num(col.last[i]) : null)).map((v) => (v === null || Number.isFinite(v) ? v : null));
  }, [table, metric]);
  const metricAxis = useMemo<Axis | null>(() => (table.metrics[metric] ? numericAxis("metric:" + metric, metric + " (last)", metricVals) : null), [metricVals, metric]);
  const axes = useMemo(() => chosen.map((k) => paramAxis(k, table.params[k].values, table.params[k].present)), [table, chosen.join(",")]);
  const sxAxis = useMemo(() => (table.params[sx] ? paramAxis(sx, table.params[sx].values, table.params[sx].present) : null), [table, sx]);

  const toggle = (k: string) => {
    const next = chosen.includes(k) ? chosen.filter((x) => x !== k) : [...chosen, k];
    setParams({ pc: next.join(",") || "," });
  };

  return (
    <div class="sweep">
      <section>
        <h2>Parallel coordinates</h2>
        <div class="axis-picker">
          <span class="muted">axes:</span>
          {allParams.slice(0, 200).map((k) => (
            <label class={"chip" + (chosen.includes(k) ? " on" : "")}>
              <input type="checkbox" checked={chosen.includes(k)} onChange={() => toggle(k)} />
              {k}
            </label>
          ))}
          {allParams.length > 200 && <span class="muted">… {allParams.length - 200} more params</span>}
          {Object.keys(brushes).length > 0 && <button onClick={() => setParams({ pb: null })}>clear brushes</button>}
        </div>
        {axes.length + (metricAxis ? 1 : 0) < 2 ? (
          <div class="muted">Choose at least one param (and a metric) to draw.</div>
        ) : (
          <ParCoords axes={axes} metric={metricAxis} labels={labels} metricValues={metricVals} brushes={brushes} onBrush={(b) => setParams({ pb: fmtBrushes(b) }, { replace: true })} onPick={onPick} />
        )}
        <div class="muted hint">drag along an axis to keep a range · click an axis to clear it · click a line to open its run</div>
      </section>
      <section>
        <h2>
          Scatter:{" "}
          <select value={sx} onChange={(e) => setParams({ sx: (e.target as HTMLSelectElement).value })} data-testid="scatter-param">
            {allParams.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>{" "}
          against {metric || "–"}
        </h2>
        <Scatter x={sxAxis} y={metricAxis} xValues={table.run_ids.map((_, i) => (table.params[sx]?.present[i] ? table.params[sx].values[i] : null))} yValues={metricVals} labels={labels} onPick={onPick} />
      </section>
    </div>
  );
}

// ------------------------------------------------------------ diff table

const MAX_COLS = 50;

function DiffTable({ table, runIds, labelOf, names, all }: { table: CompareTable; runIds: string[]; labelOf: (id: string) => string; names: Record<string, RunName>; all: boolean }) {
  const cols = table.run_ids.slice(0, MAX_COLS);
  const rows = useMemo(() => {
    const out: { kind: "param" | "metric"; key: string; cells: string[]; differs: boolean }[] = [];
    for (const k of Object.keys(table.params).sort()) {
      const c = table.params[k];
      const cells = cols.map((_, i) => (c.present[i] ? c.values[i] : "–"));
      const distinct = new Set(table.run_ids.map((_, i) => (c.present[i] ? c.values[i] : "\u0000")));
      out.push({ kind: "param", key: k, cells, differs: distinct.size > 1 });
    }
    for (const k of Object.keys(table.metrics).sort()) {
      const c = table.metrics[k];
      const cells = cols.map((_, i) => (c.present[i] ? fmtNum(num(c.last[i])) : "–"));
      const distinct = new Set(table.run_ids.map((_, i) => (c.present[i] ? String(c.last[i]) : "\u0000")));
      out.push({ kind: "metric", key: k, cells, differs: distinct.size > 1 });
    }
    return out;
  }, [table]);
  const shown = all ? rows : rows.filter((r) => r.differs);
  return (
    <section class="diff">
      <h2>
        Params and metrics{" "}
        <label class="muted small">
          <input type="checkbox" checked={!all} onChange={(e) => setParams({ diff: (e.target as HTMLInputElement).checked ? null : "all" })} /> only keys that differ
        </label>
      </h2>
      {runIds.length > MAX_COLS && <div class="muted">First {MAX_COLS} runs shown as columns; the plots above use all {runIds.length}.</div>}
      <div class="diff-wrap">
        <table class="plain diff-table" data-testid="diff-table">
          <thead>
            <tr>
              <th>key</th>
              {cols.map((id) => (
                <th title={id}>
                  <a href={runLink(names[id]?.experimentId || "0", id)}>{labelOf(id)}</a>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr class={r.differs ? "differs" : ""}>
                <td class="k">
                  <span class="muted">{r.kind === "param" ? "param " : "metric "}</span>
                  {r.key}
                </td>
                {r.cells.map((c) => (
                  <td class={r.kind === "metric" ? "num" : ""}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {shown.length === 0 && <div class="muted">No {all ? "" : "differing "}params or metrics.</div>}
      </div>
    </section>
  );
}
