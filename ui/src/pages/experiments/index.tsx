// Experiments: every readable experiment with its run count and last activity
// (GET /ui-api/v1/experiments), searchable by name or id; open one or several
// experiments' runs table. State in the URL: ?q=<search>&sel=<ids>.
import { useEffect, useMemo, useState } from "preact/hooks";
import { get } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { fmtAgo, fmtCount, fmtTime } from "../../lib/format";
import { experimentLink, Route, setParams, splitList } from "../../lib/url";

const MAX_ROWS = 500; // the list is sorted by last activity; search narrows the rest

interface Exp {
  experiment_id: string;
  name: string;
  run_count: number;
  last_activity: number | null;
  creation_time: number;
  lifecycle_stage: string;
}

export function ExperimentsPage({ route }: { route: Route }) {
  const q = route.params.get("q") || "";
  const sel = splitList(route.params.get("sel"));
  const [all, setAll] = useState<Exp[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [text, setText] = useState(q);

  useEffect(() => {
    const ctrl = new AbortController();
    get<{ experiments: Exp[] }>("/ui-api/v1/experiments", {}, ctrl.signal).then(
      (r) => {
        setAll(r.experiments);
        window.__mf.ready = true;
      },
      (e) => {
        if (e.name !== "AbortError") setError(e);
      },
    );
    return () => ctrl.abort();
  }, []);
  useEffect(() => setText(q), [q]);

  const shown = useMemo(() => {
    if (!all) return [];
    const n = q.toLowerCase();
    return n ? all.filter((e) => e.name.toLowerCase().includes(n) || e.experiment_id === q) : all;
  }, [all, q]);

  const toggle = (id: string) => {
    const s = new Set(sel);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setParams({ sel: [...s].join(",") }, { replace: true });
  };

  if (error) return <ErrorView error={error} />;
  return (
    <div class="experiments">
      <h1>Experiments</h1>
      <div class="toolbar">
        <input
          type="search"
          placeholder="Search experiments by name or id"
          value={text}
          data-testid="exp-search"
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setText(v);
            setParams({ q: v }, { replace: true });
          }}
        />
        <span class="muted">{all ? `${shown.length} of ${all.length}` : "loading…"}</span>
        <span class="spacer" />
        {sel.length > 0 && (
          <a class="button primary" href={"#/runs?e=" + sel.map(encodeURIComponent).join(",")} data-testid="open-selected">
            Runs of {sel.length} experiment{sel.length > 1 ? "s" : ""}
          </a>
        )}
      </div>
      <table class="plain" data-testid="experiments-table">
        <thead>
          <tr>
            <th class="check" />
            <th>Name</th>
            <th>ID</th>
            <th class="num">Runs</th>
            <th>Last activity</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {shown.slice(0, MAX_ROWS).map((e) => (
            <tr key={e.experiment_id} data-testid="exp-row" data-experiment-id={e.experiment_id}>
              <td class="check">
                <input type="checkbox" checked={sel.includes(e.experiment_id)} onChange={() => toggle(e.experiment_id)} aria-label="select" />
              </td>
              <td>
                <a href={experimentLink(e.experiment_id)}>{e.name}</a>
              </td>
              <td class="muted">{e.experiment_id}</td>
              <td class="num">{fmtCount(e.run_count)}</td>
              <td title={fmtTime(e.last_activity)}>{fmtAgo(e.last_activity)}</td>
              <td>{fmtTime(e.creation_time)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {all && shown.length === 0 && <div class="muted">No experiment matches “{q}”.</div>}
      {shown.length > MAX_ROWS && (
        <div class="muted">Showing the {MAX_ROWS} most recently active of {shown.length.toLocaleString("en-US")}; search to narrow them down.</div>
      )}
    </div>
  );
}
