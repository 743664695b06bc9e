// Fetch wrapper for every UI request: same-origin credentials (the mf_session cookie),
// X-CSRF-Token from the readable mf_csrf cookie on state-changing requests, and JSON
// errors as a typed ApiError. A 401 sends the user to #/signin (tokens never go in URLs).
import type { Answer, Early } from "./early";

export class ApiError extends Error {
  status: number;
  code: string;
  /** parser position for filter errors (the /ui-api answers carry it), else undefined */
  position?: number;
  field?: string;
  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    if (typeof extra.position === "number") this.position = extra.position;
    if (typeof extra.field === "string") this.field = extra.field;
  }
}

export function readCookie(name: string): string {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

type Json = Record<string, any>;

export interface RequestOpts {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** do not redirect to #/signin on 401 (the sign-in page itself) */
  noRedirect?: boolean;
}

let onUnauthorized: (() => void) | null = () => {
  if (!location.hash.startsWith("#/signin")) {
    const back = location.hash.slice(1) || "/";
    location.hash = "#/signin?next=" + encodeURIComponent(back);
  }
};

export function setUnauthorizedHandler(fn: (() => void) | null): void {
  onUnauthorized = fn;
}


function earlyKey(method: string, path: string, body: string | undefined): string {
  return method + " " + path + " " + (body || "");
}

/** The answer boot.ts started for this exact request, if it is young enough (taken once). */
function takeEarly(key: string): Early | null {
  const w = window as unknown as { __mfEarly?: Record<string, Early>; __mfEarlyMs?: number; __mf?: { earlyTaken?: string[] } };
  const e = w.__mfEarly && w.__mfEarly[key];
  if (!e) return null;
  delete w.__mfEarly![key];
  if (performance.now() - e.at > (w.__mfEarlyMs || 0)) return null;
  if (w.__mf) (w.__mf.earlyTaken = w.__mf.earlyTaken || []).push(key);
  return e;
}

/** The parsed JSON of boot.ts's answer to this exact request, if it has already arrived
 * and succeeded (taken: the request is then not made); else undefined, and nothing is
 * taken. A page that mounts after its data arrived renders it in its first commit. */
export function earlyJson<T = Json>(method: string, path: string, body?: unknown): T | undefined {
  const key = earlyKey(method.toUpperCase(), path, body === undefined ? undefined : JSON.stringify(body));
  const w = window as unknown as { __mfEarly?: Record<string, Early> };
  const done = w.__mfEarly && w.__mfEarly[key] && w.__mfEarly[key].done;
  if (!done || !done.ok || !done.text) return undefined;
  let data: T;
  try {
    data = JSON.parse(done.text) as T;
  } catch {
    return undefined;
  }
  return takeEarly(key) ? data : undefined;
}

/** Forget boot.ts's answers not yet taken. */
function dropEarly(): void {
  const w = window as unknown as { __mfEarly?: Record<string, Early>; __mfEarlySeries?: unknown };
  w.__mfEarly = {};
  delete w.__mfEarlySeries;
}

async function fetched(path: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(path, init);
  return { ok: res.ok, status: res.status, statusText: res.statusText, text: await res.text() };
}

export async function request<T = Json>(path: string, opts: RequestOpts = {}): Promise<T> {
  const method = (opts.method || "GET").toUpperCase();
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  if (method !== "GET" && method !== "HEAD") {
    const csrf = readCookie("mf_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  let res: Answer;
  try {
    const early = takeEarly(earlyKey(method, path, body as string | undefined));
    res = (early && (early.done || (await early.answer.catch(() => null))))
      || (await fetched(path, { method, headers, body, credentials: "same-origin", signal: opts.signal }));
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK", "the server did not answer (" + String((e as Error).message) + ")");
  }
  const text = res.text;
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const code = (data && (data.error_code || data.code)) || "HTTP_" + res.status;
    const message = (data && (data.message || data.detail)) || res.statusText || "request failed";
    const err = new ApiError(res.status, String(code), typeof message === "string" ? message : JSON.stringify(message), data || {});
    if (res.status === 401) dropEarly(); // asked without a session: not answers to use after sign-in
    if (res.status === 401 && !opts.noRedirect && onUnauthorized) onUnauthorized();
    throw err;
  }
  return data as T;
}

export const get = <T = Json>(path: string, params?: Record<string, string | number | undefined | null>, signal?: AbortSignal) =>
  request<T>(params ? path + "?" + qs(params) : path, { signal });

export const post = <T = Json>(path: string, body: unknown, signal?: AbortSignal) =>
  request<T>(path, { method: "POST", body, signal });

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  return u.toString();
}
