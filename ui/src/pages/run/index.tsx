// Run page (#/experiments/<id>/runs/<run_id>): header, charts (one per metric, lazily
// drawn), params/tags/metric summaries, artifacts. View state lives in the hash query:
//   tab=charts|details|artifacts  x=step|wall|rel  line=last|mean  log=1  sm=0..0.99
//   mq=<metric filter>  z.<metric>=lo:hi (zoom in steps, per chart)  a=<artifact path>
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { fmtNum, fmtRange, LineMode, parseRange, XMode } from "../../charts/data";
import { MetricChart } from "../../charts/MetricChart";
import { get } from "../../lib/api";
import { findRun, foundRun, getRun, num, RunDoc, tail } from "../../lib/api_runs";
import { ErrorView } from "../../lib/errors";
import { fmtTime } from "../../lib/format";
import * as perf from "../../lib/perf";
import { experimentLink, navigated, Route, runLink, setParams } from "../../lib/url";
import { ArtifactBrowser } from "../artifacts/index";
import "./run.css";

const MAX_CHARTS = 60;

export function RunPage(props: { route: Route; experimentId: string; runId: string }) {
  const { route, runId } = props;
  const q = route.params;
  const tab = q.get("tab") || "charts";
  // a cold load whose run (boot.ts's search) arrived before the app ran shows it at once
  const [run, setRun] = useState<RunDoc | null>(() => foundRun(runId, props.experimentId) || null);
  const [err, setErr] = useState<unknown>(null);
  const mountedWith = useRef(run);

  // a layout effect: the run's request (or boot.ts's answer to it) is taken in the commit
  // that mounts the page, not after its first frame
  useLayoutEffect(() => {
    // from navigation start on a cold load (the user's request), else from this route change
    if (!navigated()) perf.startAtNavigation("run_charts");
    else perf.start("run_charts");
    const had = mountedWith.current;
    mountedWith.current = null;
    if (had && had.info.run_id === runId) return;
    const ac = new AbortController();
    setRun(null);
    setErr(null);
    findRun(runId, ac.signal, props.experimentId).then(setRun, (e) => {
      if ((e as Error).name !== "AbortError") {
        setErr(e);
        void perf.endAfterFrame("run_charts");
      }
    });
    return () => ac.abort();
  }, [runId]);

  if (err) return <ErrorView error={err} />;
  if (!run) return <div class="loading">Loading run…</div>;
  const info = run.info;
  const expId = info.experiment_id || props.experimentId;
  return (
    <div class="runpage">
      <RunHeader run={run} />
      <div class="tabs" role="tablist">
        {(["charts", "details", "artifacts"] as const).map((t) => (
          <button role="tab" aria-selected={tab === t} class={tab === t ? "tab on" : "tab"} onClick={() => setParams({ tab: t === "charts" ? null : t })}>
            {t === "charts" ? "Charts" : t === "details" ? "Params, tags, metrics" : "Artifacts"}
          </button>
        ))}
      </div>
      {tab === "charts" && <ChartsTab run={run} setRun={setRun} params={q} />}
      {tab === "details" && <DetailsTab run={run} params={q} />}
      {tab === "artifacts" && <ArtifactBrowser experimentId={expId} runId={runId} route={route} />}
    </div>
  );
}

function fmtWhen(ms: number | null | undefined): string {
  return fmtTime(ms) || "–";
}

function fmtDur(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  return Math.floor(m / 60) + "h " + (m % 60) + "m";
}

function RunHeader({ run }: { run: RunDoc }) {
  const i = run.info;
  const [expName, setExpName] = useState<string | null>(null);
  useEffect(() => {
    const ctrl = new AbortController();
    setExpName(null);
    get<{ experiment: { name: string } }>("/api/v1/experiments/get", { experiment_id: i.experiment_id }, ctrl.signal).then(
      (r) => setExpName(r.experiment.name),
      () => undefined, // the id stays shown
    );
    return () => ctrl.abort();
  }, [i.experiment_id]);
  const end = i.end_time || (i.status === "RUNNING" ? Date.now() : null);
  return (
    <div class="runhead">
      <div class="crumbs">
        <a href={experimentLink(i.experiment_id)} data-testid="crumb-experiment">{expName ?? `Experiment ${i.experiment_id}`}</a> <span class="muted">/</span> <span class="muted">run</span>
      </div>
      <h1>
        <span data-testid="run-name">{i.run_name || i.run_id}</span>{" "}
        <span class={"status st-" + i.status.toLowerCase()}>{i.status}</span>
      </h1>
      <div class="runmeta">
        <span>
          <span class="muted">id</span> <code>{i.run_id}</code>
        </span>
        <span>
          <span class="muted">user</span> {i.user_id || "–"}
        </span>
        <span>
          <span class="muted">started</span> {fmtWhen(i.start_time)}
        </span>
        {end ? (
          <span>
            <span class="muted">duration</span> {fmtDur(end - i.start_time)}
          </span>
        ) : null}
        {i.parent_run_id ? (
          <span>
            <span class="muted">parent</span> <a href={runLink(i.experiment_id, i.parent_run_id)}>{i.parent_run_id.slice(0, 12)}</a>
          </span>
        ) : null}
        {i.lifecycle_stage !== "active" ? <span class="status st-failed">{i.lifecycle_stage}</span> : null}
      </div>
    </div>
  );
}

// ------------------------------------------------------------------ charts

function ChartsTab({ run, setRun, params }: { run: RunDoc; setRun: (r: RunDoc) => void; params: URLSearchParams }) {
  const x = (["step", "wall", "rel"].includes(params.get("x") || "") ? params.get("x") : "step") as XMode;
  const line = (params.get("line") === "mean" ? "mean" : "last") as LineMode;
  const log = params.get("log") === "1";
  const sm = Math.max(0, Math.min(0.99, Number(params.get("sm")) || 0));
  const mq = params.get("mq") || "";
  const runId = run.info.run_id;

  const [extraKeys, setExtraKeys] = useState<string[]>([]);
  const [refresh, setRefresh] = useState<Record<string, number>>({});
  const [smLocal, setSmLocal] = useState(sm);
  useEffect(() => setSmLocal(sm), [sm]);

  const keys = useMemo(() => {
    const all = Array.from(new Set([...Object.keys(run.metrics), ...extraKeys])).sort();
    const f = mq.toLowerCase();
    return f ? all.filter((k) => k.toLowerCase().includes(f)) : all;
  }, [run, extraKeys, mq]);
  const shown = keys.slice(0, MAX_CHARTS);

  // run_charts: from navigation until every chart that was on screen has drawn
  const pending = useRef<{ requested: Set<string>; drawn: Set<string>; done: boolean }>({ requested: new Set(), drawn: new Set(), done: false });
  useEffect(() => {
    if (shown.length === 0) void perf.endAfterFrame("run_charts");
    // charts on screen register within the first frames; the measure ends after they draw
  }, []);
  const onDrawn = (m: string) => {
    const pd = pending.current;
    pd.drawn.add(m);
    if (!pd.done && perf.isPending("run_charts")) {
      const vis = visibleCharts();
      if (vis.every((k) => pd.drawn.has(k))) {
        pd.done = true;
        window.__mf.runCharts = { drawn: pd.drawn.size, visible: vis.length };
        void perf.endAfterFrame("run_charts");
      }
    }
  };

  // live tail while RUNNING: new points re-fetch the affected (unzoomed) charts, at most every 2 s
  const running = run.info.status === "RUNNING";
  useEffect(() => {
    if (!running) return;
    const ac = new AbortController();
    const dirty = new Set<string>();
    const known = new Set(Object.keys(run.metrics));
    const live: Record<string, { v: number; step: number }> = {};
    tail({ run_ids: [runId], keys: [], from_start: false, poll_interval_ms: 1000 }, (c) => {
      dirty.add(c.key);
      const n = c.values.length;
      if (n) live[c.key] = { v: num(c.values[n - 1]), step: c.steps[n - 1] };
    }, ac.signal).catch(() => {});
    const flush = setInterval(() => {
      if (!dirty.size) return;
      const ks = Array.from(dirty);
      dirty.clear();
      const fresh = ks.filter((k) => !known.has(k));
      if (fresh.length) {
        fresh.forEach((k) => known.add(k));
        setExtraKeys((old) => Array.from(new Set([...old, ...fresh])));
      }
      setRefresh((old) => {
        const out = { ...old };
        for (const k of ks) out[k] = (out[k] || 0) + 1;
        return out;
      });
      window.__mf.liveTail = { ...(window.__mf.liveTail || {}), ...live };
    }, 2000);
    const poll = setInterval(() => {
      findRun(runId, undefined, run.info.experiment_id).then((r) => {
        if (r.info.status !== "RUNNING") setRun(r);
      }, () => {});
    }, 5000);
    return () => {
      ac.abort();
      clearInterval(flush);
      clearInterval(poll);
    };
  }, [runId, running]);

  const onRange = (metric: string, r: [number, number] | null) => setParams({ ["z." + metric]: fmtRange(r) });

  return (
    <div>
      <div class="chart-controls">
        <span class="seg" title="x axis">
          {(["step", "wall", "rel"] as const).map((m) => (
            <button class={x === m ? "on" : ""} onClick={() => setParams({ x: m === "step" ? null : m })}>
              {m === "step" ? "Step" : m === "wall" ? "Wall time" : "Relative time"}
            </button>
          ))}
        </span>
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
        <label title="exponential moving average over the drawn buckets">
          Smoothing
          <input
            type="range"
            min="0"
            max="0.99"
            step="0.01"
            value={smLocal}
            onInput={(e) => setSmLocal(Number((e.target as HTMLInputElement).value))}
            onChange={(e) => setParams({ sm: Number((e.target as HTMLInputElement).value) > 0 ? (e.target as HTMLInputElement).value : null })}
          />
          <span class="num smval">{smLocal.toFixed(2)}</span>
        </label>
        <input
          type="search"
          placeholder="Filter metrics"
          value={mq}
          onInput={(e) => setParams({ mq: (e.target as HTMLInputElement).value }, { replace: true })}
        />
        {running && <span class="live" title="new points are fetched as they arrive">● live</span>}
        <span class="muted hint">drag to zoom · shift+drag to pan · double click to reset</span>
      </div>
      {keys.length === 0 && <div class="muted">This run has no metrics{mq ? " matching the filter" : ""}.</div>}
      <div class="chart-grid">
        {shown.map((k, i) => (
          <MetricChart
            key={k}
            runId={runId}
            metric={k}
            runStartMs={run.info.start_time}
            span={run.metrics[k] ? run.metrics[k].last_step + 1 : undefined}
            x={x}
            line={line}
            log={log}
            smoothing={smLocal}
            range={parseRange(params.get("z." + k))}
            onRange={onRange}
            syncKey={"run:" + runId}
            refresh={refresh[k] || 0}
            colorIndex={0}
            onDrawn={onDrawn}
          />
        ))}
      </div>
      {keys.length > shown.length && (
        <div class="muted more">
          {keys.length - shown.length} more metrics: narrow the filter to see them ({keys.length} in all).
        </div>
      )}
    </div>
  );
}

/** Metric names of the charts now within the viewport. */
function visibleCharts(): string[] {
  const out: string[] = [];
  const h = window.innerHeight;
  document.querySelectorAll<HTMLElement>('[data-testid="chart"]').forEach((el) => {
    const r = el.getBoundingClientRect();
    if (r.bottom > -150 && r.top < h + 150) out.push(el.dataset.metric || "");
  });
  return out;
}

// ------------------------------------------------------------------ details

const MAX_ROWS = 2000;

function DetailsTab({ run, params }: { run: RunDoc; params: URLSearchParams }) {
  // exact point counts: GET /api/v1/runs/{id} counts every point, so only on this tab
  const [counts, setCounts] = useState<Record<string, number | null> | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    getRun(run.info.run_id, ac.signal).then(
      (r) => setCounts(Object.fromEntries(Object.entries(r.metrics).map(([k, s]) => [k, s.count]))),
      () => setCounts({}),
    );
    return () => ac.abort();
  }, [run.info.run_id]);
  const f = (params.get("dq") || "").toLowerCase();
  const match = (k: string, v = "") => !f || k.toLowerCase().includes(f) || v.toLowerCase().includes(f);
  const ps = Object.entries(run.params).filter(([k, v]) => match(k, v)).sort((a, b) => a[0].localeCompare(b[0]));
  const ts = Object.entries(run.tags).filter(([k, v]) => match(k, v)).sort((a, b) => a[0].localeCompare(b[0]));
  const ms = Object.entries(run.metrics).filter(([k]) => match(k)).sort((a, b) => a[0].localeCompare(b[0]));
  return (
    <div class="details">
      <div class="toolbar">
        <input type="search" placeholder="Filter keys and values" value={params.get("dq") || ""} onInput={(e) => setParams({ dq: (e.target as HTMLInputElement).value }, { replace: true })} />
      </div>
      <div class="detail-cols">
        <section>
          <h2>Params ({ps.length})</h2>
          <KV rows={ps} testid="params-table" />
        </section>
        <section>
          <h2>Tags ({ts.length})</h2>
          <KV rows={ts} testid="tags-table" />
        </section>
      </div>
      <section>
        <h2>Metrics ({ms.length})</h2>
        <table class="plain" data-testid="metrics-table">
          <thead>
            <tr>
              <th>key</th>
              <th class="num">last</th>
              <th class="num">step</th>
              <th class="num">min</th>
              <th class="num">max</th>
              <th class="num">points</th>
              <th>last logged</th>
            </tr>
          </thead>
          <tbody>
            {ms.slice(0, MAX_ROWS).map(([k, s]) => (
              <tr>
                <td>
                  <a href={"#" + location.hash.slice(1).split("?")[0] + "?mq=" + encodeURIComponent(k)}>{k}</a>
                </td>
                <td class="num">{fmtNum(num(s.last_value))}</td>
                <td class="num">{s.last_step}</td>
                <td class="num">{fmtNum(num(s.min_value))}</td>
                <td class="num">{fmtNum(num(s.max_value))}</td>
                <td class="num">{counts === null ? "…" : counts[k] ?? s.count ?? "–"}</td>
                <td>{fmtWhen(s.last_timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {ms.length > MAX_ROWS && <div class="muted">first {MAX_ROWS} of {ms.length}; filter to see the rest</div>}
      </section>
    </div>
  );
}

function KV({ rows, testid }: { rows: [string, string][]; testid: string }) {
  if (!rows.length) return <div class="muted">none</div>;
  return (
    <>
      <table class="plain kv" data-testid={testid}>
        <tbody>
          {rows.slice(0, MAX_ROWS).map(([k, v]) => (
            <tr>
              <td class="k">{k}</td>
              <td class="v">{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > MAX_ROWS && <div class="muted">first {MAX_ROWS} of {rows.length}; filter to see the rest</div>}
    </>
  );
}
