// Runs table over one or many experiments (#/experiments/<id>, #/runs?e=1,2,3).
// URL state: q (filter), sort + dir, cols (chosen metric/param/tag columns),
// sel (selected run ids), nest=0 (flat list), group + gm (group by a param,
// summarize a metric), row (first visible row). Rows are fetched by window.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, earlyJson, get, post } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { fmtCount, fmtDuration, fmtNum, fmtTime } from "../../lib/format";
import { useHold } from "../../lib/hold";
import { endAfterFrame, isPending, start, startAtNavigation } from "../../lib/perf";
import { joinList, navigated, Route, runLink, setParams, splitList } from "../../lib/url";
import { displayCount, Expansion, RunRow, slotAt, WindowAnswer, WindowCache } from "./cache";
import { fieldText, Kind } from "./filter";
import { FilterBox, Keys } from "./filterbox";
import { GroupTable } from "./groupby";
import { ColRef, ColumnPicker } from "./picker";
import { Column, Grid } from "./table";

const BLOCK = 100;
const WINDOW_PATH = "/ui-api/v1/runs/window";
const MARGIN = 20; // rows fetched beyond the visible ones
const LIVE_MS = 3000;
const DEFAULT_SORT = "attributes.start_time";
const EMPTY_KEYS: Keys = { metrics: [], params: [], tags: [] };

interface View {
  row: RunRow;
  depth: number;
  top: number; // top-level index (depth 0) or -1
}

export function parseCol(s: string): ColRef | null {
  const i = s.indexOf(".");
  if (i < 0) return null;
  const kind = s.slice(0, i);
  if (kind !== "metrics" && kind !== "params" && kind !== "tags") return null;
  return { kind, key: s.slice(i + 1) };
}

export function RunsPage({ route, experimentIds }: { route: Route; experimentIds: string[] }) {
  const P = route.params;
  const q = P.get("q") || "";
  const sortField = P.get("sort") || DEFAULT_SORT;
  const asc = P.get("dir") === "asc";
  const colsParam = P.get("cols");
  const cols = useMemo(() => splitList(colsParam).map(parseCol).filter((c): c is ColRef => c !== null), [colsParam]);
  const sel = splitList(P.get("sel"));
  const nest = P.get("nest") !== "0";
  const group = P.get("group") || "";
  const gm = P.get("gm") || "";
  const exps = experimentIds;
  const expKey = exps.join(",");

  const [draft, setDraft] = useState(q);
  useEffect(() => setDraft(q), [q]);
  const [keys, setKeys] = useState<Keys>(EMPTY_KEYS);
  const [keysError, setKeysError] = useState<unknown>(null);
  const [picker, setPicker] = useState(false);
  const [, setTick] = useState(0);
  const [jump, setJump] = useState<{ row: number } | null>(null);
  const jumpTarget = useRef<number | null>(null);
  const range = useRef<[number, number]>([0, 0]);
  const initialRow = useRef(Number(P.get("row") || 0) || 0);

  // perf: cold navigation to the first rows (from navigation start when this is the first page)
  useLayoutEffect(() => {
    if (!navigated()) startAtNavigation("table_first_rows");
    else start("table_first_rows");
  }, []);

  // ------------------------------------------------------------- experiment names / access
  // A run search is filtered, never refused, so a hidden experiment would just look empty:
  // its GET answers 403 (or 404, like a missing one) and the page says so.
  // (It, and the keys below, wait for the first rows: lib/hold.ts.)
  const hold = useHold();
  const [expInfo, setExpInfo] = useState<{ names: Record<string, string>; errors: unknown[] }>({ names: {}, errors: [] });
  useEffect(() => {
    const ctrl = new AbortController();
    const names: Record<string, string> = {};
    const errors: unknown[] = [];
    Promise.all((exps.length <= 5 ? exps : []).map((id) =>
      get<{ experiment: { name: string } }>("/api/v1/experiments/get", { experiment_id: id }, ctrl.signal).then(
        (r) => { names[id] = r.experiment.name; },
        (e) => { if (e.name !== "AbortError") errors.push(e); },
      ))).then(() => hold.later(() => !ctrl.signal.aborted && setExpInfo({ names, errors })));
    return () => ctrl.abort();
  }, [expKey]);

  // ------------------------------------------------------------- keys
  useEffect(() => {
    // another experiment set's keys (or error) must not stand in for these meanwhile
    setKeys(EMPTY_KEYS);
    setKeysError(null);
    const ctrl = new AbortController();
    get<Keys>("/ui-api/v1/keys", { experiment_ids: expKey }, ctrl.signal).then(
      (k) => hold.later(() => !ctrl.signal.aborted && setKeys(k)),
      (e) => e.name !== "AbortError" && setKeysError(e),
    );
    return () => ctrl.abort();
  }, [expKey]);

  // default columns (first metrics and params) when the URL names none
  // default columns when the URL names none: the params that vary across the latest runs
  // (a sweep's variables) and the metrics most of them logged, from one sample window;
  // the first keys in name order if that sample fails
  useEffect(() => {
    if (colsParam !== null || (keys.metrics.length === 0 && keys.params.length === 0)) return;
    const ctrl = new AbortController();
    const fallback = () => [...keys.metrics.slice(0, 4).map((k) => "metrics." + k), ...keys.params.slice(0, 3).map((k) => "params." + k)];
    const ms = keys.metrics.slice(0, 250);
    const ps = keys.params.slice(0, 250);
    post<WindowAnswer>(WINDOW_PATH, {
      experiment_ids: exps, filter: "", order_by: "", offset: 0, limit: 200, with_total: false, top_level: false,
      columns: [...ms.map((k) => fieldText("metrics", k)), ...ps.map((k) => fieldText("params", k))],
    }, ctrl.signal).then(
      (w) => {
        const score = (kind: "metrics" | "params", k: string) => {
          const seen = new Set<string>();
          let n = 0;
          for (const r of w.rows) {
            const v = (r[kind] as Record<string, unknown>)[k];
            if (v === undefined || v === null) continue;
            n++;
            seen.add(String(v));
          }
          return { n, distinct: seen.size };
        };
        const rank = (kind: "metrics" | "params", list: string[]) =>
          list
            .map((k, i) => ({ k, i, ...score(kind, k) }))
            .filter((x) => x.n > 0)
            .sort((a, b) => Number(b.distinct > 1) - Number(a.distinct > 1) || b.n - a.n || a.i - b.i)
            .map((x) => x.k);
        // params: only those that differ between the sampled runs (a constant one says
        // nothing a column could compare); metrics: those that vary first
        const varying = new Set(ps.filter((k) => score("params", k).distinct > 1));
        const d = [...rank("metrics", ms).slice(0, 4).map((k) => "metrics." + k),
                   ...rank("params", ps).filter((k) => varying.has(k)).slice(0, 3).map((k) => "params." + k)];
        setParams({ cols: joinList(d.length ? d : fallback()) }, { replace: true });
      },
      (e) => e.name !== "AbortError" && setParams({ cols: joinList(fallback()) }, { replace: true }),
    );
    return () => ctrl.abort();
  }, [keys, colsParam]);

  // ------------------------------------------------------------- window cache
  const colTexts = cols.map((c) => fieldText(c.kind, c.key));
  const orderBy = sortField + (asc ? " ASC" : " DESC");
  const shape = JSON.stringify([expKey, q, orderBy, colTexts, nest]);
  const rowsKey = JSON.stringify([expKey, q, orderBy, nest]);
  const lastCache = useRef<{ cache: WindowCache; rowsKey: string } | null>(null);
  const cache = useMemo(() => {
    const body = (offset: number, limit: number, withTotal: boolean) => ({
      experiment_ids: exps, filter: q, order_by: orderBy, offset, limit,
      columns: colTexts, with_total: withTotal, top_level: nest,
    });
    const fetcher = (offset: number, limit: number, withTotal: boolean, signal: AbortSignal) =>
      post<WindowAnswer>(WINDOW_PATH, body(offset, limit, withTotal), signal);
    const c = new WindowCache(fetcher, BLOCK);
    // a cold load whose first rows (boot.ts) arrived before the app ran shows them in
    // its first render
    const ready = earlyJson<WindowAnswer>("POST", WINDOW_PATH, body(0, BLOCK, true));
    if (ready && Array.isArray(ready.rows)) c.seed(0, ready);
    // Only the columns changed (a column picked, or the default columns a cold load sets
    // after its first rows): the same runs in the same order, so they stay on screen
    // while the rows with the new columns load (they were blanked for a round trip).
    const prev = lastCache.current;
    if (prev && prev.rowsKey === rowsKey) c.standInFor(prev.cache);
    lastCache.current = { cache: c, rowsKey };
    return c;
  }, [shape]);
  // a layout effect: the first window (boot.ts's answer on a cold load) is asked for in
  // the commit that mounts the table, not after its first frame
  useLayoutEffect(() => {
    const un = cache.subscribe(() => setTick((t) => t + 1));
    const [a, b] = range.current;
    void cache.ensure(a, Math.max(b, a + 40));
    return () => {
      un();
      cache.dispose();
    };
  }, [cache]);

  // ------------------------------------------------------------- nesting
  const [expansions, setExpansions] = useState<Expansion[]>([]);
  useEffect(() => setExpansions([]), [shape]);
  const toggleExpand = (top: number, row: RunRow) => {
    const open = expansions.find((e) => e.runId === row.run_id);
    if (open) {
      setExpansions(expansions.filter((e) => e !== open));
      return;
    }
    const exp: Expansion = { parentIndex: top, runId: row.run_id, children: [] };
    const next = [...expansions, exp].sort((a, b) => a.parentIndex - b.parentIndex);
    setExpansions(next);
    post<WindowAnswer>(WINDOW_PATH, {
      experiment_ids: exps, filter: `tags.mlflow.parentRunId = '${row.run_id.replace(/'/g, "''")}'`,
      order_by: orderBy, offset: 0, limit: 1000, columns: colTexts, with_total: false, top_level: false,
    }).then((ans) => {
      exp.children = ans.rows;
      setExpansions((cur) => (cur.includes(exp) ? [...cur] : cur));
    }, () => undefined);
  };

  // While the first window of a new column set or sort loads, the same runs match: keep the
  // last total (and row count), so the scroll position survives a column change. A new
  // filter, experiment set or nesting starts from nothing.
  const countKey = JSON.stringify([expKey, q, nest]);
  const last = useRef<{ key: string; total: number; count: number } | null>(null);
  const known = last.current && last.current.key === countKey && !cache.error ? last.current : null;
  const total = cache.total ?? (known ? known.total : null);
  const count = cache.total === null ? (known ? known.count : 0) : nest ? displayCount(cache.total, expansions) : cache.total;
  if (cache.total !== null) last.current = { key: countKey, total: cache.total, count };
  const rowAt = (v: number): View | undefined => {
    if (!nest || expansions.length === 0) {
      const r = cache.get(v);
      return r && { row: r, depth: 0, top: v };
    }
    const s = slotAt(v, expansions);
    if (s.kind === "top") {
      const r = cache.get(s.index);
      return r && { row: r, depth: 0, top: s.index };
    }
    const r = s.parent.children[s.index];
    return r && { row: r, depth: 1, top: -1 };
  };
  const topIndex = (v: number) => (nest && expansions.length ? (slotAt(v, expansions) as any).index ?? v : v);

  // ------------------------------------------------------------- live updates
  useEffect(() => {
    const t = setInterval(() => {
      if (document.hidden) return;
      const [a, b] = range.current;
      let running = false;
      for (let i = a; i < b && !running; i++) running = rowAt(i)?.row.status === "RUNNING";
      if (running) void cache.refresh(topIndex(a), topIndex(Math.max(a, b - 1)) + 1);
    }, LIVE_MS);
    return () => clearInterval(t);
  });

  // ------------------------------------------------------------- actions
  const submitFilter = (v: string) => {
    if (v === q) return;
    start("table_requery");
    setJump({ row: 0 });
    setParams({ q: v, row: null });
  };
  const onSort = (c: Column<View>) => {
    start("table_requery");
    setJump({ row: 0 });
    const same = c.sortField === sortField;
    setParams({ sort: c.sortField === DEFAULT_SORT ? null : c.sortField!, dir: same ? (asc ? null : "asc") : null, row: null });
  };
  const scrollToRow = (n: number) => {
    start("table_deep_scroll");
    jumpTarget.current = n;
    setJump({ row: n });
  };
  window.__mf.scrollToRow = scrollToRow;
  window.__mf.table = { total: () => cache.total ?? (known ? known.total : null), shape };

  const toggleSel = (id: string) => {
    const s = new Set(sel);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setParams({ sel: joinList([...s]) }, { replace: true });
  };
  const toggleCol = (c: ColRef) => {
    const has = cols.some((x) => x.kind === c.kind && x.key === c.key);
    const next = has ? cols.filter((x) => !(x.kind === c.kind && x.key === c.key)) : [...cols, c];
    start("table_requery");
    setParams({ cols: joinList(next.map((x) => x.kind + "." + x.key)) || "" }, { replace: true });
  };

  const onRange = (a: number, b: number) => {
    range.current = [a, b];
    void cache.ensure(topIndex(a) - MARGIN, topIndex(Math.max(a, b - 1)) + 1 + MARGIN);
  };
  useEffect(() => {
    // ?row= follows the first visible row without adding history entries
    const t = setTimeout(() => {
      const cur = Number(route.params.get("row") || 0);
      if (range.current[0] !== cur && cache.total !== null) setParams({ row: range.current[0] ? String(range.current[0]) : null }, { replace: true });
    }, 400);
    return () => clearTimeout(t);
  });

  const onRendered = (a: number, b: number) => {
    if (cache.total === null) return;
    const done = cache.total === 0 || cache.covers(topIndex(a), topIndex(Math.max(a, b - 1)) + 1);
    if (!done) return;
    hold.release();
    window.__mf.ready = true;
    if (isPending("table_first_rows")) void endAfterFrame("table_first_rows");
    if (isPending("table_requery")) void endAfterFrame("table_requery");
    if (isPending("table_deep_scroll") && jumpTarget.current !== null && a <= jumpTarget.current && jumpTarget.current < Math.max(b, a + 1)) {
      jumpTarget.current = null;
      void endAfterFrame("table_deep_scroll");
    }
  };

  useEffect(() => {
    if (cache.error || group) hold.release(); // (a grouped view shows no rows: nothing to wait for)
  });

  // ------------------------------------------------------------- columns
  const multi = exps.length !== 1;
  const columns: Column<View>[] = [
    {
      id: "select", label: "", width: 34, cls: "sel",
      render: (v) => (
        <input type="checkbox" checked={sel.includes(v.row.run_id)} onChange={() => toggleSel(v.row.run_id)} aria-label="select run" />
      ),
    },
    {
      id: "run_name", label: "Run", width: 280, sortField: "attributes.run_name", sortId: "attributes.run_name",
      render: (v) => (
        <span class={"runname depth" + v.depth}>
          {v.depth === 0 && nest && (v.row.child_count || 0) > 0 ? (
            <button class="expander" data-testid="expand-children" onClick={() => toggleExpand(v.top, v.row)} title={`${v.row.child_count} child runs`}>
              {expansions.some((e) => e.runId === v.row.run_id) ? "▾" : "▸"} {v.row.child_count}
            </button>
          ) : (
            <span class="expander-pad" />
          )}
          <a href={runLink(v.row.experiment_id, v.row.run_id)} title={v.row.run_id}>
            {v.row.run_name || v.row.run_id.slice(0, 12)}
          </a>
        </span>
      ),
    },
    {
      id: "status", label: "Status", width: 104, sortField: "attributes.status", sortId: "attributes.status",
      render: (v) => <span class={"status " + v.row.status.toLowerCase()}>{v.row.status}</span>,
    },
    {
      id: "start_time", label: "Created", width: 170, sortField: "attributes.start_time", sortId: "attributes.start_time",
      render: (v) => fmtTime(v.row.start_time),
    },
    {
      id: "duration", label: "Duration", width: 96, align: "num", sortField: "attributes.end_time", sortId: "attributes.end_time",
      title: "Duration (sorts by end time)",
      render: (v) => fmtDuration(v.row.start_time, v.row.end_time, v.row.status),
    },
    {
      id: "user_id", label: "User", width: 100, sortField: "attributes.user_id", sortId: "attributes.user_id",
      render: (v) => v.row.user_id,
    },
  ];
  if (multi)
    columns.push({
      id: "experiment_id", label: "Experiment", width: 90, sortField: "attributes.experiment_id", sortId: "attributes.experiment_id",
      render: (v) => v.row.experiment_id,
    });
  for (const c of cols) {
    const label = (c.kind === "metrics" ? "" : c.kind === "params" ? "param " : "tag ") + c.key;
    columns.push({
      id: c.kind + "." + c.key, label, title: c.kind + "." + c.key, width: c.kind === "metrics" ? 110 : 120,
      align: c.kind === "metrics" ? "num" : undefined,
      sortField: fieldText(c.kind as Kind, c.key), sortId: c.kind + "." + c.key,
      render: (v) => (c.kind === "metrics" ? fmtNum(v.row.metrics[c.key]) : (v.row[c.kind] as Record<string, string>)[c.key] ?? ""),
    });
  }

  const err = cache.error;
  const filterErr = err instanceof ApiError && err.status === 400 && (err.field === "filter" || err.position !== undefined)
    ? { message: err.message, position: err.position } : null;
  const nameOf = (id: string) => expInfo.names[id] ?? id;
  const title = exps.length === 0 ? "Runs of every experiment" : exps.length === 1 ? `Runs of ${nameOf(exps[0])}`
    : exps.length <= 5 ? `Runs of ${exps.map(nameOf).join(", ")}` : `Runs of ${exps.length} experiments`;
  const denied = expInfo.errors.find((e) => e instanceof ApiError && e.status === 403);
  const missing = expInfo.errors.find((e) => e instanceof ApiError && e.status === 404);
  if (denied || (missing && total === 0)) return <ErrorView error={denied || missing} />;

  return (
    <div class="runs">
      <div class="runs-head">
        <h1>{title}</h1>
        <span class="muted" data-testid="runs-total">{err ? (filterErr ? "invalid filter" : "not counted (error)") : total === null ? "counting…" : `${fmtCount(total)} ${nest ? "top-level " : ""}run${total === 1 ? "" : "s"}`}</span>
      </div>
      <FilterBox value={draft} keys={keys} error={draft === q ? filterErr : null} onEdit={(v) => setDraft(v)} onSubmit={submitFilter} />
      <div class="toolbar">
        <button onClick={() => setPicker(!picker)} data-testid="column-picker-open">
          Columns ({cols.length})
        </button>
        <label class="inline">
          <input type="checkbox" checked={nest} onChange={() => setParams({ nest: nest ? "0" : null })} data-testid="nest-toggle" /> Nest child runs
        </label>
        <label class="inline">
          Group by param{" "}
          <select value={group} data-testid="group-param" onChange={(e) => setParams({ group: (e.currentTarget as HTMLSelectElement).value || null })}>
            <option value="">—</option>
            {keys.params.slice(0, 2000).map((k) => <option value={k}>{k}</option>)}
          </select>
        </label>
        {group && (
          <label class="inline">
            metric{" "}
            <select value={gm} data-testid="group-metric" onChange={(e) => setParams({ gm: (e.currentTarget as HTMLSelectElement).value || null })}>
              <option value="">—</option>
              {keys.metrics.slice(0, 2000).map((k) => <option value={k}>{k}</option>)}
            </select>
          </label>
        )}
        <span class="spacer" />
        <GotoRow total={total} onGo={scrollToRow} />
        {sel.length > 0 && (
          <>
            <button onClick={() => setParams({ sel: null }, { replace: true })}>Clear selection</button>
            <a class="button primary" data-testid="compare-link" href={"#/compare?runs=" + sel.map(encodeURIComponent).join(",")}>
              Compare {sel.length} run{sel.length > 1 ? "s" : ""}
            </a>
          </>
        )}
      </div>
      {picker && (
        <ColumnPicker keys={keys} chosen={cols} onToggle={toggleCol} onClear={() => setParams({ cols: "" }, { replace: true })} onClose={() => setPicker(false)} />
      )}
      {keysError ? <ErrorView error={keysError} /> : null}
      {err && !filterErr ? <ErrorView error={err} /> : null}
      {group ? (
        <GroupTable experimentIds={exps} filter={q} param={group} metric={gm} onPick={(f) => setParams({ q: f, group: null, gm: null })} />
      ) : (
        <Grid<View>
          count={count}
          columns={columns}
          rowAt={rowAt}
          rowClass={(v) => (v.depth ? "child" : "") + (sel.includes(v.row.run_id) ? " selected" : "")}
          sort={{ field: sortField, asc }}
          onSort={onSort}
          onRange={onRange}
          jump={jump}
          onRendered={onRendered}
          initialRow={initialRow.current}
        />
      )}
      {total === 0 && !group && <div class="muted empty">No run matches{q ? " this filter" : ""}.</div>}
    </div>
  );
}

function GotoRow({ total, onGo }: { total: number | null; onGo: (n: number) => void }) {
  const [v, setV] = useState("");
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        const n = Math.max(0, Math.floor(Number(v.replace(/[,_ ]/g, "")) || 0));
        onGo(total === null ? n : Math.min(n, Math.max(0, total - 1)));
      }}
    >
      <input class="goto" type="text" inputMode="numeric" placeholder="Go to row" value={v} data-testid="goto-row" onInput={(e) => setV((e.currentTarget as HTMLInputElement).value)} />
    </form>
  );
}
