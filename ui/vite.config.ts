import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// src/boot.ts is an entry of its own, named in index.html ahead of the app's bundle: module
// scripts run in document order, so it runs first, as soon as it (1 KB) has arrived, while
// the bundle may still be fetched and parsed. (`async` would let a cached bundle run first.)
const bootScript = {
  name: "metricflow-boot-script",
  apply: "build",
  transformIndexHtml: {
    order: "post",
    handler(_html: string, ctx: any) {
      const boot: any = Object.values(ctx.bundle || {}).find((c: any) => c.type === "chunk" && c.isEntry && c.name === "boot");
      if (!boot) throw new Error("no boot chunk in the bundle");
      return [{ tag: "script", attrs: { type: "module", crossorigin: true, src: "./" + boot.fileName }, injectTo: "head-prepend" }];
    },
  },
};

// uPlot is its own chunk, imported on first use (src/charts/uplot.ts). index.html names it
// in a <meta name="mf-uplot">: boot.ts preloads it on a route with charts, so the browser
// fetches and compiles it beside the app's bundle there, and nowhere else.
const nameUplot = {
  name: "metricflow-name-uplot",
  apply: "build",
  transformIndexHtml: {
    order: "post",
    handler(_html: string, ctx: any) {
      const chunk: any = Object.values(ctx.bundle || {}).find(
        (c: any) => c.type === "chunk" && c.isDynamicEntry && (c.moduleIds || Object.keys(c.modules || {})).some((id: string) => /[\\/]uplot[\\/]/.test(id)),
      );
      if (!chunk) throw new Error("no uPlot chunk in the bundle");
      return [{ tag: "meta", attrs: { name: "mf-uplot", content: "./" + chunk.fileName }, injectTo: "head" }];
    },
  },
};

// The built UI is package data of the Python package: the server serves
// src/metricflow/ui/static/ at "/" (see src/metricflow/ui/__init__.py).
export default defineConfig({
  plugins: [preact(), bootScript, nameUplot],
  base: "./",
  build: {
    outDir: "../src/metricflow/ui/static",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    // no inline <script>/<style> (CSP: script-src 'self'; style-src 'self')
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: { input: { index: "index.html", boot: "src/boot.ts" } },
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:5000",
      "/ui-api": "http://127.0.0.1:5000",
      "/ajax-api": "http://127.0.0.1:5000",
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
} as any);
