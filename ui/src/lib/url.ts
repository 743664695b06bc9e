// Hash-route state: every view's state lives in the query string of the hash,
// e.g. #/experiments/1?q=metrics.loss<1&sort=-metrics.loss&cols=m:loss,p:lr
// User actions push a history entry; typing replaces the current one.
import { useLayoutEffect, useState } from "preact/hooks";

export interface Route {
  path: string;
  /** path split on "/", decoded, without empty parts */
  parts: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  let h = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!h.startsWith("/")) h = "/" + h;
  const qi = h.indexOf("?");
  const path = qi >= 0 ? h.slice(0, qi) : h;
  const query = qi >= 0 ? h.slice(qi + 1) : "";
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { path, parts, params: new URLSearchParams(query) };
}

export function buildHash(path: string, params?: URLSearchParams | Record<string, string | undefined | null>): string {
  let q = "";
  if (params instanceof URLSearchParams) q = params.toString();
  else if (params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
    q = u.toString();
  }
  // keep list separators and key paths readable in shared links (URLSearchParams reads them back as is)
  q = q.replace(/%2C/gi, ",").replace(/%2F/gi, "/").replace(/%3A/gi, ":");
  return "#" + path + (q ? "?" + q : "");
}

export function currentRoute(): Route {
  return parseHash(location.hash);
}

const listeners = new Set<() => void>();
let routeChanges = 0;
function notify() {
  routeChanges++;
  for (const l of listeners) l();
}
if (typeof window !== "undefined") window.addEventListener("hashchange", notify);

/** Has the user moved to another route since the page loaded? (cold vs in-app navigation) */
export function navigated(): boolean {
  return routeChanges > 0;
}

export function navigate(hash: string, opts: { replace?: boolean } = {}): void {
  if (!hash.startsWith("#")) hash = "#" + hash;
  if (hash === location.hash) return;
  if (opts.replace) {
    history.replaceState(history.state, "", hash);
    notify(); // replaceState fires no hashchange
  } else {
    location.hash = hash; // pushes an entry and fires hashchange
  }
}

/** Change some query params of the current route; null/"" removes a param. */
export function setParams(changes: Record<string, string | null | undefined>, opts: { replace?: boolean } = {}): void {
  const r = currentRoute();
  const p = new URLSearchParams(r.params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") p.delete(k);
    else p.set(k, v);
  }
  navigate(buildHash(r.path, p), opts);
}

export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(currentRoute);
  const [seen] = useState(() => location.hash);
  // A layout effect, and a look at the hash as it subscribes: a route change made before
  // then (a first render's request answered 401 at once: #/signin) is not missed.
  useLayoutEffect(() => {
    const l = () => setRoute(currentRoute());
    listeners.add(l);
    if (location.hash !== seen) l();
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** Comma lists in the URL ("a,b,c"); "," and "%" inside an item are escaped as %2C / %25. */
export function splitList(v: string | null): string[] {
  if (!v) return [];
  return v.split(",").filter(Boolean).map((s) => s.replace(/%2C/gi, ",").replace(/%25/g, "%"));
}

export function joinList(items: string[]): string {
  return items.map((s) => s.replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
}

export function runLink(experimentId: string, runId: string): string {
  return "#/experiments/" + encodeURIComponent(experimentId) + "/runs/" + encodeURIComponent(runId);
}

export function experimentLink(experimentId: string): string {
  return "#/experiments/" + encodeURIComponent(experimentId);
}
