import { render } from "preact";
import { App } from "./app";
import "./styles.css";

declare global {
  interface Window {
    __mf: { ready: boolean; lastDraw: { metric: string; buckets: number; ms: number }[]; [k: string]: any };
  }
}
window.__mf = window.__mf || { ready: false, lastDraw: [] };

render(<App />, document.getElementById("app")!);
