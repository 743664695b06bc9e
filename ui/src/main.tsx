import { render } from "preact";
import { App } from "./app";
import { loadUplot } from "./charts/uplot";
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

render(<App />, document.getElementById("app")!);
