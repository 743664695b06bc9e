// Typed calls for the run, compare, artifact and registry pages (C1b).
// Every call goes through lib/api.ts (credentials, CSRF, ApiError).
import { ApiError, earlyJson, get, post, readCookie, request } from "./api";

/** JSON carries NaN/Inf as strings ("nan", "inf", "-inf"); numbers otherwise. */
export type Num = number | string;

export function num(v: Num | null | undefined): number {
  if (typeof v === "number") return v;
  if (v === null || v === undefined) return NaN;
  const s = String(v).toLowerCase();
  if (s === "inf" || s === "infinity" || s === "+inf") return Infinity;
  if (s === "-inf" || s === "-infinity") return -Infinity;
  return NaN;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  parent_run_id: string | null;
  lifecycle_stage: string;
  artifact_uri: string;
}

export interface MetricSummary {
  last_value: Num;
  last_step: number;
  last_timestamp: number;
  min_value: Num;
  max_value: Num;
  count: number | null;
}

export interface RunDoc {
  info: RunInfo;
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, MetricSummary>;
}

export const getRun = (runId: string, signal?: AbortSignal) =>
  get<RunDoc>("/api/v1/runs/" + encodeURIComponent(runId), undefined, signal);

export interface SeriesPoint {
  step: number;
  timestamp: number;
  value: Num;
}

/** One run's downsampled metric (server/_http.py series_to_json): non-empty buckets only. */
export interface SeriesJson {
  run_id: string;
  key: string;
  step_lo: number;
  step_hi: number;
  bucket: number[];
  count: number[];
  step_first: number[];
  step_last: number[];
  nan_count: number[];
  inf_count: number[];
  min: Num[];
  max: Num[];
  avg: Num[];
  last: Num[];
  first_point: SeriesPoint | null;
  last_point: SeriesPoint | null;
}

export interface DownsampleReq {
  run_ids: string[];
  key: string;
  buckets: number;
  step_min?: number | null;
  step_max?: number | null;
  /** false: no first_point / last_point (they place steps on a time axis only) */
  ends?: boolean;
}

interface DownsampleWaiter {
  key: string;
  resolve: (series: SeriesJson[]) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
}

const downsampleBatches = new Map<string, { req: DownsampleReq; waiters: DownsampleWaiter[] }>();

/**
 * One metric's buckets. The requests of one task that differ only in their key go out as
 * one request (`keys`): a browser opens ~6 connections per server, so a run page's 10
 * charts, one request each, waited for each other's answers. A request alone is sent as
 * it was made. Aborting one caller's signal rejects its promise; the shared request is
 * cancelled when every caller has aborted.
 */
export function downsample(req: DownsampleReq, signal?: AbortSignal): Promise<SeriesJson[]> {
  const early = takeEarlySeries(req, signal);
  if (early) {
    return early.then((series) => {
      if (signal?.aborted) throw aborted();
      return series ? series.filter((s) => s.key === req.key) : downsampleNow(req, signal);
    });
  }
  return downsampleNow(req, signal);
}

function downsampleNow(req: DownsampleReq, signal?: AbortSignal): Promise<SeriesJson[]> {
  const group = JSON.stringify([req.run_ids, req.buckets, req.step_min ?? null, req.step_max ?? null, req.ends ?? true]);
  return new Promise((resolve, reject) => {
    let batch = downsampleBatches.get(group);
    if (!batch) {
      batch = { req, waiters: [] };
      downsampleBatches.set(group, batch);
      queueMicrotask(() => sendDownsample(group));
    }
    batch.waiters.push({ key: req.key, resolve, reject, signal });
  });
}

interface EarlySeries {
  at: number;
  run: string;
  /** the server's answer (its `buckets` names each key's count), null if it failed */
  answer: Promise<{ series: SeriesJson[]; buckets: Record<string, number> } | null>;
  /** keys a chart has already taken */
  taken: string[];
}

/** Longest a chart waits for boot.ts's answer before it asks itself (it normally comes
 * within a few hundred ms: the request left at navigation). */
export const EARLY_SERIES_WAIT_MS = 3000;

/**
 * A chart's first buckets from boot.ts's early request (a cold load of a run page), taken
 * once per key: the same run, every step, no time anchors, and a bucket count within a
 * factor of two of the chart's own (one bucket per two pixels to two per pixel). Null
 * (asynchronously) when boot.ts's answer has no such buckets, its request failed, it took
 * longer than EARLY_SERIES_WAIT_MS from navigation, or the caller has been cancelled
 * meanwhile: the chart then asks itself. Until that answer, such a chart waits for it
 * (which keys boot.ts asked for is known only from the answer).
 */
function takeEarlySeries(req: DownsampleReq, signal?: AbortSignal): Promise<SeriesJson[] | null> | null {
  const w = globalThis as unknown as { __mfEarlySeries?: EarlySeries; __mf?: { earlyTaken?: string[] } };
  const e = w.__mfEarlySeries;
  if (!e || req.run_ids.length !== 1 || req.run_ids[0] !== e.run || req.ends !== false) return null;
  if (req.step_min != null || req.step_max != null) return null;
  const left = e.at + EARLY_SERIES_WAIT_MS - performance.now();
  if (left <= 0) return null;
  const late = new Promise<null>((r) => setTimeout(() => r(null), left));
  return Promise.race([e.answer, late]).then((a) => {
    const n = a && a.buckets[req.key];
    if (!a || !n || signal?.aborted || e.taken.includes(req.key)) return null;
    if (n < Math.ceil(req.buckets / 2) || n > 2 * req.buckets) return null;
    e.taken.push(req.key);
    if (w.__mf) (w.__mf.earlyTaken = w.__mf.earlyTaken || []).push("downsample " + req.key);
    return a.series.filter((s) => s.key === req.key);
  });
}

const aborted = () => new DOMException("The request was aborted", "AbortError");

function sendDownsample(group: string): void {
  const batch = downsampleBatches.get(group)!;
  downsampleBatches.delete(group);
  const live = batch.waiters.filter((w) => !w.signal?.aborted);
  batch.waiters.filter((w) => w.signal?.aborted).forEach((w) => w.reject(aborted()));
  if (!live.length) return;
  const ac = new AbortController();
  let open = live.length;
  for (const w of live) {
    w.signal?.addEventListener("abort", () => {
      w.reject(aborted());
      if (--open === 0) ac.abort();
    }, { once: true });
  }
  const keys = Array.from(new Set(live.map((w) => w.key)));
  const { key: _one, ...rest } = batch.req;
  const body = keys.length === 1 ? { ...batch.req, key: keys[0] } : { ...rest, keys };
  post<{ series: SeriesJson[] }>("/api/v1/metrics/downsample", body, ac.signal).then(
    (r) => live.forEach((w) => w.resolve(r.series.filter((s) => s.key === w.key))),
    (e) => live.forEach((w) => w.reject(e)),
  );
}

export interface CompareTable {
  run_ids: string[];
  metrics: Record<string, { last: Num[]; min: Num[]; max: Num[]; present: boolean[] }>;
  params: Record<string, { values: string[]; present: boolean[] }>;
}

export const compareRuns = (run_ids: string[], metric_keys: string[] = [], param_keys: string[] = [], signal?: AbortSignal) =>
  post<CompareTable>("/api/v1/runs/compare", { run_ids, metric_keys, param_keys }, signal);

export const searchRuns = (
  body: { experiment_ids?: string[]; filter?: string; order_by?: string[]; max_results?: number; page_token?: string; view_type?: string },
  signal?: AbortSignal,
) => post<{ runs: RunDoc[]; next_page_token: string | null }>("/api/v1/runs/search", body, signal);

/**
 * One run for the run page, fast: a search by id answers from pre-aggregated rows
 * (metric summaries without point counts), while GET /api/v1/runs/{id} counts every
 * point (~1 s for 10M points). A run the search does not return (missing, or not
 * readable) is asked for by id, so the page shows that answer's 404 or 403.
 */
export async function findRun(runId: string, signal?: AbortSignal, experimentId?: string): Promise<RunDoc> {
  const body = findRunBody(runId, experimentId);
  if (body) {
    const r = await searchRuns(body, signal);
    if (r.runs.length && r.runs[0].info.run_id === runId) return r.runs[0];
  }
  return getRun(runId, signal);
}

/** `findRun`'s answer if boot.ts's identical search has already arrived with the run (a
 * cold load: the page then shows the run in its first render); else undefined. */
export function foundRun(runId: string, experimentId?: string): RunDoc | undefined {
  const body = findRunBody(runId, experimentId);
  const r = body ? earlyJson<{ runs: RunDoc[] }>("POST", "/api/v1/runs/search", body) : undefined;
  const run = r && Array.isArray(r.runs) ? r.runs[0] : undefined;
  return run && run.info && run.info.run_id === runId ? run : undefined;
}

function findRunBody(runId: string, experimentId?: string) {
  const safe = /^[0-9a-zA-Z_-]{1,64}$/;
  if (!safe.test(runId)) return null;
  // The page's experiment (from its URL) scopes the search to that experiment's range of
  // the runs index (where the run id is then a primary-key lookup: ~22 -> ~5 ms at 1M
  // runs); a run not found there is asked for by id. boot.ts sends the same body.
  const scoped = experimentId !== undefined && safe.test(experimentId);
  return {
    ...(scoped ? { experiment_ids: [experimentId] } : {}),
    filter: "attributes.run_id = '" + runId + "'", view_type: "all", max_results: 1,
  };
}

export interface RunRef {
  name: string;
  experimentId: string;
  /** the run is deleted (in the trash) */
  deleted: boolean;
}

/** Names and experiments of runs (for labels and run links), by search in chunks the
 * filter's length limit allows; runs the caller may not read are simply absent. */
export async function lookupRuns(ids: string[], signal?: AbortSignal, onChunk?: (part: Record<string, RunRef>) => void): Promise<Record<string, RunRef>> {
  const out: Record<string, RunRef> = {};
  const CHUNK = 200;
  const safe = ids.filter((r) => /^[0-9a-zA-Z_-]{1,64}$/.test(r));
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < safe.length; i += CHUNK) {
    const chunk = safe.slice(i, i + CHUNK);
    const filter = "attributes.run_id IN (" + chunk.map((r) => "'" + r + "'").join(",") + ")";
    jobs.push(
      searchRuns({ filter, max_results: CHUNK, view_type: "all" }, signal).then((r) => {
        const part: Record<string, RunRef> = {};
        for (const x of r.runs)
          part[x.info.run_id] = { name: x.info.run_name || x.info.run_id.slice(0, 8), experimentId: x.info.experiment_id, deleted: x.info.lifecycle_stage === "deleted" };
        Object.assign(out, part);
        onChunk?.(part);
      }),
    );
  }
  await Promise.all(jobs);
  return out;
}

/** Overlay of many runs' one metric (POST /ui-api/v1/compare/series, binary), over the
 * buckets that hold a point of some run (empty buckets are not sent). */
export interface OverlayData {
  runIds: string[];
  /** bucket count asked for */
  buckets: number;
  /** buckets sent (K) */
  columns: number;
  stepLo: number;
  stepHi: number;
  /** per sent bucket: its number in [0, buckets) */
  bucket: Float64Array;
  /** per sent bucket: the largest step_last over runs */
  x: Float64Array;
  /** per run, per sent bucket: NaN where the run has no point in the bucket */
  last: Float64Array[];
  avg: Float64Array[];
  min: Float64Array[];
  max: Float64Array[];
}

export async function overlaySeries(req: DownsampleReq, signal?: AbortSignal): Promise<OverlayData> {
  const headers: Record<string, string> = { Accept: "application/octet-stream", "Content-Type": "application/json" };
  const csrf = readCookie("mf_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let res: Response;
  try {
    res = await fetch("/ui-api/v1/compare/series", { method: "POST", headers, body: JSON.stringify(req), credentials: "same-origin", signal });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK", "the server did not answer (" + String((e as Error).message) + ")");
  }
  if (!res.ok) {
    let data: any = {};
    try {
      data = await res.json();
    } catch {
      /* not JSON */
    }
    if (res.status === 401 && !location.hash.startsWith("#/signin")) location.hash = "#/signin?next=" + encodeURIComponent(location.hash.slice(1) || "/");
    throw new ApiError(res.status, String(data.error_code || "HTTP_" + res.status), String(data.message || data.detail || res.statusText), data);
  }
  return decodeOverlay(await res.arrayBuffer());
}

/** Layout (src/metricflow/ui/_api_compare.py): u32 LE header length, header JSON (utf-8),
 * zero padding to 8, then float64 LE blocks of K = header.columns values: bucket numbers,
 * x, then for each run last, avg, min, max. */
export function decodeOverlay(buf: ArrayBuffer): OverlayData {
  const dv = new DataView(buf);
  const hlen = dv.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, hlen)));
  const off = (4 + hlen + 7) & ~7;
  const K: number = header.columns;
  const runIds: string[] = header.run_ids;
  const all = new Float64Array(buf, off, K * (2 + 4 * runIds.length));
  const last: Float64Array[] = [], avg: Float64Array[] = [], min: Float64Array[] = [], max: Float64Array[] = [];
  for (let i = 0; i < runIds.length; i++) {
    const o = K * (2 + 4 * i);
    last.push(all.subarray(o, o + K));
    avg.push(all.subarray(o + K, o + 2 * K));
    min.push(all.subarray(o + 2 * K, o + 3 * K));
    max.push(all.subarray(o + 3 * K, o + 4 * K));
  }
  return {
    runIds,
    buckets: header.buckets,
    columns: K,
    stepLo: header.step_lo,
    stepHi: header.step_hi,
    bucket: all.subarray(0, K),
    x: all.subarray(K, 2 * K),
    last,
    avg,
    min,
    max,
  };
}

export interface TailChunk {
  run_id: string;
  key: string;
  steps: number[];
  timestamps: number[];
  values: Num[];
}

/** Live tail (POST /api/v1/metrics/tail, NDJSON). Calls onChunk per data line until
 * the signal aborts or the stream ends; resolves with the last error line, if any. */
export async function tail(
  body: { run_ids: string[]; keys?: string[]; from_start?: boolean; poll_interval_ms?: number },
  onChunk: (c: TailChunk) => void,
  signal: AbortSignal,
): Promise<{ error_code: string; message: string } | null> {
  const headers: Record<string, string> = { "Content-Type": "application/json", Accept: "application/x-ndjson" };
  const csrf = readCookie("mf_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch("/api/v1/metrics/tail", { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin", signal });
  if (!res.ok || !res.body) {
    let data: any = {};
    try {
      data = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, String(data.error_code || "HTTP_" + res.status), String(data.message || res.statusText), data);
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const obj = JSON.parse(line);
      if (obj.heartbeat) continue;
      if (obj.error_code) return obj;
      onChunk(obj as TailChunk);
    }
  }
}

// ---------------------------------------------------------------- artifacts

export interface ArtifactFile {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export const listArtifacts = (runId: string, path: string, signal?: AbortSignal) =>
  get<{ root_uri?: string; files?: ArtifactFile[] }>("/api/2.0/mlflow/artifacts/list", { run_id: runId, path }, signal).then(
    (r) => r.files || [],
  );

/** Same-origin download URL of a run's artifact (MLflow artifact proxy). */
export function artifactUrl(experimentId: string, runId: string, path: string): string {
  const enc = path.split("/").map(encodeURIComponent).join("/");
  return (
    "/api/2.0/mlflow-artifacts/artifacts/" + encodeURIComponent(experimentId) + "/" + encodeURIComponent(runId) + "/artifacts/" + enc
  );
}

// ---------------------------------------------------------------- registry

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  run_id: string;
  description: string;
  status: string;
  status_message: string;
  current_stage: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  tags: Record<string, string>;
  aliases: string[];
  user_id: string;
  run_link: string;
  row_version: number;
}

export interface RegisteredModel {
  name: string;
  description: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  tags: Record<string, string>;
  aliases: Record<string, string>;
  latest_versions: ModelVersion[];
  row_version: number;
}

export interface AuditEntry {
  id: number;
  timestamp: number;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  comment: string;
  model_name: string;
  version: string;
}

export const searchModels = (filter: string, page_token?: string | null, signal?: AbortSignal) =>
  post<{ registered_models: RegisteredModel[]; next_page_token: string | null }>(
    "/api/v1/registered-models/search",
    { filter, max_results: 100, order_by: ["name ASC"], page_token: page_token || null },
    signal,
  );

export const getModel = (name: string, signal?: AbortSignal) =>
  get<{ registered_model: RegisteredModel }>("/api/v1/registered-models/get", { name }, signal).then((r) => r.registered_model);

export function sqlString(s: string): string {
  return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

export const searchVersions = (name: string, page_token?: string | null, signal?: AbortSignal) =>
  post<{ model_versions: ModelVersion[]; next_page_token: string | null }>(
    "/api/v1/model-versions/search",
    { filter: "name = " + sqlString(name), max_results: 1000, order_by: ["version_number DESC"], page_token: page_token || null },
    signal,
  );

export const auditLog = (model_name: string, page_token?: string | null, signal?: AbortSignal) =>
  get<{ entries: AuditEntry[]; next_page_token: string | null }>(
    "/api/v1/audit-log/search",
    { model_name, max_results: 200, page_token: page_token || undefined },
    signal,
  );

export const setAlias = (name: string, alias: string, version: string) =>
  post("/api/v1/registered-models/alias", { name, alias, version });

export const deleteAlias = (name: string, alias: string) =>
  request("/api/v1/registered-models/alias?" + new URLSearchParams({ name, alias }).toString(), { method: "DELETE" });

export const transitionStage = (name: string, version: string, stage: string, archive_existing_versions: boolean) =>
  post<{ model_version: ModelVersion }>("/api/v1/model-versions/transition-stage", { name, version, stage, archive_existing_versions });
