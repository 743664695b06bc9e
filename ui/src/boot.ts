// Early requests. On a cold load of the two views people open most (an experiment's runs
// table and a run page, each in its default state: no query in the URL), this small
// script starts the requests that page is about to make. It is its own entry, run before
// the app's bundle, so they start while that bundle is still being fetched, parsed and
// run (~100 ms here, a third of a cold load). lib/api.ts uses such an answer when the page then makes the identical
// request (method, path and body) within EARLY_MS, and asks the server otherwise.
// tests/integration/ui/test_browser_early.py checks that the pages still make exactly
// these requests. No imports: nothing here waits for another file.

const EARLY_MS = 5000;
const SAFE_ID = /^[0-9A-Za-z_-]{1,64}$/;

interface Early {
  at: number;
  res: Promise<Response>;
}

const w = window as unknown as { __mfEarly?: Record<string, Early>; __mfEarlyMs?: number; __mf?: unknown };
const early: Record<string, Early> = (w.__mfEarly = {});
w.__mfEarlyMs = EARLY_MS;
// (the app's bundle, if it ran first, has made its requests: then nothing is asked early)
const appStarted = w.__mf !== undefined;

function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)mf_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

/** Starts a request now, or once `after` has settled (so that it does not compete with
 * the one the first paint waits for). */
function start(method: "GET" | "POST", path: string, body?: unknown, after?: Promise<unknown>): Promise<Response> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (text !== undefined) headers["Content-Type"] = "application/json";
  const csrf = method === "POST" ? csrfToken() : "";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const go = () => fetch(path, { method, headers, body: text, credentials: "same-origin" });
  const res = after ? after.then(go, go) : go();
  res.catch(() => undefined); // a failed early request is simply asked again
  early[method + " " + path + " " + (text || "")] = { at: performance.now(), res };
  return res;
}

const hash = location.hash.replace(/^#\/?/, "");
const parts = appStarted || hash.includes("?") ? [] : hash.split("/").filter(Boolean);
if (parts[0] === "experiments" && parts.length === 2 && SAFE_ID.test(parts[1])) {
  const exp = parts[1];
  const rows = start("POST", "/ui-api/v1/runs/window", {
    experiment_ids: [exp], filter: "", order_by: "attributes.start_time DESC", offset: 0,
    limit: 100, columns: [], with_total: true, top_level: true,
  });
  start("GET", "/api/v1/experiments/get?experiment_id=" + exp);
  // the keys (three queries) only feed the column picker and the default columns: asked
  // once the first rows have come, they no longer share the server with them
  start("GET", "/ui-api/v1/keys?experiment_ids=" + exp, undefined, rows);
} else if (parts[0] === "experiments" && parts.length === 4 && parts[2] === "runs"
           && SAFE_ID.test(parts[1]) && SAFE_ID.test(parts[3])) {
  start("POST", "/api/v1/runs/search", {
    experiment_ids: [parts[1]], filter: "attributes.run_id = '" + parts[3] + "'",
    view_type: "all", max_results: 1,
  });
  start("GET", "/api/v1/experiments/get?experiment_id=" + parts[1]);
}
