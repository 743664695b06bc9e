// uPlot, loaded on first use rather than with the app's bundle. Evaluating uPlot's module
// makes the page's first Intl call (its number and date formatters), which costs a new
// renderer 15-35 ms here while ICU starts: pages without charts (the runs table, a cold
// load's first page) no longer pay it, and a chart page loads it while its data is on the
// way (main.tsx starts it at once on such a route). On those routes boot.ts preloads the
// chunk (index.html names it, see vite.config.ts), so the import costs no extra round trip.
import { useEffect, useState } from "preact/hooks";
import type uPlotT from "uplot";

export type UPlot = typeof uPlotT;

let loaded: UPlot | null = null;
let loading: Promise<UPlot> | null = null;

export function loadUplot(): Promise<UPlot> {
  if (!loading) {
    loading = import("uplot").then((m) => (loaded = m.default));
    loading.catch(() => (loading = null)); // a failed fetch is tried again by the next caller
  }
  return loading;
}

/** The uPlot class once loaded (null until then: the component renders again then), or
 * why it could not be loaded (a network error, or a page older than the server's build
 * whose chunk is gone): a chart shows that rather than staying blank. */
export function useUplot(): { U: UPlot | null; err: Error | null } {
  // (the setter takes a function: uPlot is a class, which it would call)
  const [u, setU] = useState<UPlot | null>(() => loaded);
  const [err, setErr] = useState<Error | null>(null);
  useEffect(() => {
    if (u) return;
    let live = true;
    loadUplot().then(
      (m) => live && setU(() => m),
      (e) => live && setErr(new Error("The chart library did not load (reload the page): " + String((e as Error)?.message || e))),
    );
    return () => {
      live = false;
    };
  }, []);
  return { U: u, err };
}
