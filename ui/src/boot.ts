// Early requests. On a cold load of the two views people open most (an experiment's runs
// table and a run page, each in its default state: no query in the URL), this small
// script starts the requests that page is about to make. It is its own entry, a classic
// script at the head of index.html (ui/vite.config.ts wraps it in a function), run as soon
// as it has arrived, so they start while the app's bundle and stylesheet are still being
// fetched, parsed and run (~100 ms here, a third of a cold load). It runs while the
// document is still being parsed: it reads only what comes before it (the viewport and
// mf-uplot metas). lib/api.ts uses such an answer when the page then makes the identical
// request (method, path and body) within EARLY_MS, and asks the server otherwise.
// tests/integration/ui/test_browser_early.py checks that the pages still make exactly
// these requests. No imports but erased type ones: nothing here waits for another file.

const EARLY_MS = 5000;
const SAFE_ID = /^[0-9A-Za-z_-]{1,64}$/;

import type { Answer, Early } from "./lib/early";

const w = window as unknown as { __mfEarly?: Record<string, Early>; __mfEarlyMs?: number; __mf?: unknown };
const early: Record<string, Early> = (w.__mfEarly = {});
w.__mfEarlyMs = EARLY_MS;
// (the app's bundle, if it ran first, has made its requests: then nothing is asked early)
const appStarted = w.__mf !== undefined;

function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)mf_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function send(method: "GET" | "POST", path: string, text?: string): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (text !== undefined) headers["Content-Type"] = "application/json";
  const csrf = method === "POST" ? csrfToken() : "";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = fetch(path, { method, headers, body: text, credentials: "same-origin" });
  res.catch(() => undefined); // a failed early request is simply asked again
  return res;
}

function start(method: "GET" | "POST", path: string, body?: unknown, main = false): void {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const answer = send(method, path, text).then((r) =>
    r.text().then((t) => ({ ok: r.ok, status: r.status, statusText: r.statusText, text: t })));
  const e: Early = { at: performance.now(), answer, main };
  answer.then((a) => (e.done = a), () => undefined); // a failed early request is asked again
  early[method + " " + path + " " + (text || "")] = e;
}

const hash = location.hash.replace(/^#\/?/, "");
const parts = appStarted || hash.includes("?") ? [] : hash.split("/").filter(Boolean);
if (parts[0] === "experiments" && parts.length === 2 && SAFE_ID.test(parts[1])) {
  const exp = parts[1];
  start("POST", "/ui-api/v1/runs/window", {
    experiment_ids: [exp], filter: "", order_by: "attributes.start_time DESC", offset: 0,
    limit: 100, columns: [], with_total: true, top_level: true,
  }, true);
  start("GET", "/api/v1/experiments/get?experiment_id=" + exp);
  // (Asked after the rows, it made no difference beyond the noise to the first rows, and
  // the default columns it feeds then came later, often after the user's first action.)
  start("GET", "/ui-api/v1/keys?experiment_ids=" + exp);
} else if (parts[0] === "experiments" && parts.length === 4 && parts[2] === "runs"
           && SAFE_ID.test(parts[1]) && SAFE_ID.test(parts[3])) {
  const run = parts[3];
  start("POST", "/api/v1/runs/search", {
    experiment_ids: [parts[1]], filter: "attributes.run_id = '" + run + "'",
    view_type: "all", max_results: 1,
  }, true);
  start("GET", "/api/v1/experiments/get?experiment_id=" + parts[1]);
  chartsEarly(run);
}
const path = hash.split("?")[0].split("/").filter(Boolean);
if (!appStarted && ((path[0] === "experiments" && path[2] === "runs") || path[0] === "compare")) preloadCharts();

// The charts' library (charts/uplot.ts; index.html names its chunk): fetched and compiled
// now, beside the app's bundle, which imports it as soon as it runs. Other pages never
// load it before they have settled.
function preloadCharts(): void {
  const href = document.querySelector('meta[name="mf-uplot"]')?.getAttribute("content");
  if (!href) return;
  const link = document.createElement("link");
  link.rel = "modulepreload";
  link.crossOrigin = "";
  link.href = href;
  document.head.appendChild(link);
}

// The run page's first charts: the buckets of the charts likely on screen, asked for now
// with the run's lookup, not after the app's bundle has run, the run has arrived and the
// charts are laid out (a cold load's main thread is busy with the bundle, ~150-250 ms
// here). The server picks each chart's bucket count for the width (`px`) as the page
// does, and says which; lib/api_runs.ts `downsample` takes a chart's series from this
// answer when its own count is within a factor of two (as bucketsFor allows too). The
// estimates follow the run page's layout (charts.css .chart-grid: columns of at least
// 420 px, 10 px gaps, in a page padded 16 px; chart rows 269 px apart from y ~203): a
// wrong guess costs a request whose answer goes unused and the charts' wait for it (at
// most api_runs.ts EARLY_SERIES_WAIT_MS), never a wrong chart.
function chartsEarly(run: string): void {
  const grid = document.documentElement.clientWidth - 32;
  const cols = Math.max(1, Math.floor((grid + 10) / 430));
  const px = Math.max(1, Math.floor((grid - 10 * (cols - 1)) / cols) - 2 - 70); // borders, y axis (MetricChart PLOT_PAD)
  const rows = Math.max(1, Math.ceil((window.innerHeight - 203) / 269));
  const body = { run_ids: [run], run_keys: Math.min(cols * rows, 60), px, step_min: null, step_max: null, ends: false };
  const answer = send("POST", "/api/v1/metrics/downsample", JSON.stringify(body))
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  (window as unknown as { __mfEarlySeries?: unknown }).__mfEarlySeries = { at: performance.now(), run, answer, taken: [] };
}
