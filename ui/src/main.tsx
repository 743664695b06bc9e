import { render } from "preact";
import { App } from "./app";
import { loadUplot } from "./charts/uplot";
import type { Early } from "./lib/early";
import { currentRoute } from "./lib/url";
import "./styles.css";

declare global {
  interface Window {
    __mf: { ready: boolean; lastDraw: { metric: string; buckets: number; ms: number }[]; [k: string]: any };
  }
}
window.__mf = window.__mf || { ready: false, lastDraw: [] };

// uPlot (charts/uplot.ts): a page with charts starts loading it now, while its data is on
// the way; any other loads it once the page has settled, so a chart opened later is not
// kept waiting for it. (The same chart routes as boot.ts, which imports nothing.)
const parts = currentRoute().parts;
if ((parts[0] === "experiments" && parts[2] === "runs") || parts[0] === "compare") void loadUplot().catch(() => undefined);
else setTimeout(() => void loadUplot().catch(() => undefined), 3000);

// On a cold load boot.ts's early answers usually arrive while this bundle runs, but the
// page sees them only in tasks after it: rendered at once, its first frame showed an empty
// page and its data came a frame later. So the first render waits for the page's main
// answer (at most FIRST_RENDER_WAIT_MS) and shows the data in its first frame. Only that
// one: the keys behind the runs table's column picker often came last, and waiting for
// every answer held the first rows back until the timeout (~85 ms of a ~200 ms load).
const FIRST_RENDER_WAIT_MS = 100;
const mount = () => render(<App />, document.getElementById("app")!);
const early = Object.values((window as unknown as { __mfEarly?: Record<string, Early> }).__mfEarly || {})
  .filter((e) => e.main).map((e) => e.answer);
if (early.length) {
  const late = new Promise((r) => setTimeout(r, FIRST_RENDER_WAIT_MS));
  void Promise.race([Promise.allSettled(early), late]).then(mount);
} else mount();
