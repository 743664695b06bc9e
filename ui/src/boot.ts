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

function start(method: "GET" | "POST", path: string, body?: unknown): void {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (text !== undefined) headers["Content-Type"] = "application/json";
  const csrf = method === "POST" ? csrfToken() : "";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = fetch(path, { method, headers, body: text, credentials: "same-origin" });
  res.catch(() => undefined); // a failed early request is simply asked again
  early[method + " " + path + " " + (text || "")] = { at: performance.now(), res };
}

const hash = location.hash.replace(/^#\/?/, "");
const parts = appStarted || hash.includes("?") ? [] : hash.split("/").filter(Boolean);
if (parts[0] === "experiments" && parts.length === 2 && SAFE_ID.test(parts[1])) {
  const exp = parts[1];
  start("POST", "/ui-api/v1/runs/window", {
    experiment_ids: [exp], filter: "", order_by: "attributes.start_time DESC", offset: 0,
    limit: 100, columns: [], with_total: true, top_level: true,
  });
  start("GET", "/api/v1/experiments/get?experiment_id=" + exp);
  // (Asked after the rows, it made no difference beyond the noise to the first rows, and
  // the default columns it feeds then came later, often after the user's first action.)
  start("GET", "/ui-api/v1/keys?experiment_ids=" + exp);
} else if (parts[0] === "experiments" && parts.length === 4 && parts[2] === "runs"
           && SAFE_ID.test(parts[1]) && SAFE_ID.test(parts[3])) {
  start("POST", "/api/v1/runs/search", {
    experiment_ids: [parts[1]], filter: "attributes.run_id = '" + parts[3] + "'",
    view_type: "all", max_results: 1,
  });
  start("GET", "/api/v1/experiments/get?experiment_id=" + parts[1]);
}
