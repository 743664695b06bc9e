// Experiments: the readable experiments with their run count and last activity
// (GET /ui-api/v1/experiments, pages of PAGE, most recently updated first), searched
// by name or id on the server; open one or several experiments' runs table.
// State in the URL: ?q=<search>&sel=<ids>.
import { useEffect, useRef, useState } from "preact/hooks";
import { get } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { fmtAgo, fmtCount, fmtTime } from "../../lib/format";
import { experimentLink, Route, setParams, splitList } from "../../lib/url";

const PAGE = 500;

interface Exp {
  experiment_id: string;
  name: string;
  run_count: number;
  last_activity: number | null;
  creation_time: number;
  lifecycle_stage: string;
}

interface Page {
  experiments: Exp[];
  next_page_token: string | null;
}

export function ExperimentsPage({ route }: { route: Route }) {
  const q = route.params.get("q") || "";
  const sel = splitList(route.params.get("sel"));
  const [shown, setShown] = useState<Exp[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [text, setText] = useState(q);
  const ctrl = useRef<AbortController | null>(null);

  const load = (token: string, append: boolean) => {
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setLoading(true);
    const params: Record<string, string> = { max_results: String(PAGE) };
    if (q) params.q = q;
    if (token) params.page_token = token;
    get<Page>("/ui-api/v1/experiments", params, c.signal).then(
      (r) => {
        setShown((old) => (append && old ? [...old, ...r.experiments] : r.experiments));
        setNext(r.next_page_token);
        setLoading(false);
        window.__mf.ready = true;
      },
      (e) => {
        if (e.name !== "AbortError") {
          setError(e);
          setLoading(false);
        }
      },
    );
  };

  useEffect(() => {
    // typing replaces the URL's q; ask the server once the typing pauses
    const t = window.setTimeout(() => load("", false), shown === null ? 0 : 200);
    return () => window.clearTimeout(t);
  }, [q]);
  useEffect(() => () => ctrl.current?.abort(), []);
  useEffect(() => setText(q), [q]);

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
        <span class="muted">{shown === null ? "loading…" : `${fmtCount(shown.length)}${next ? "+" : ""} shown`}</span>
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
          {(shown || []).map((e) => (
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
      {shown && shown.length === 0 && !loading && <div class="muted">No experiment matches “{q}”.</div>}
      {next && (
        <button type="button" disabled={loading} onClick={() => load(next, true)} data-testid="exp-more">
          {loading ? "Loading…" : `Load ${PAGE} more`}
        </button>
      )}
    </div>
  );
}
