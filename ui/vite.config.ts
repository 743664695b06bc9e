import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

/** The built chunk `pick` chooses (what: for the error when there is none). */
function chunkOf(ctx: any, what: string, pick: (c: any) => boolean): any {
  const chunk = Object.values(ctx.bundle || {}).find((c: any) => c.type === "chunk" && pick(c));
  if (!chunk) throw new Error(`no ${what} chunk in the bundle`);
  return chunk;
}

// src/boot.ts is an entry of its own, named in index.html ahead of everything else as a
// classic script: it runs as soon as it (2 KB) has arrived, while the app's bundle and
// stylesheet may still be fetched. (As a module it waited, like every module script, for
// the document's end and for the stylesheet, and its requests left 40-50 ms later than
// its file had arrived; `async` would let a cached bundle run first.) bootAsClassic wraps
// its chunk in a function, so its names stay out of the page's global scope.
const bootAsClassic = {
  name: "metricflow-boot-classic",
  apply: "build",
  renderChunk(code: string, chunk: any) {
    if (!(chunk.isEntry && chunk.name === "boot")) return null;
    // (no static or dynamic imports, exports, import.meta or top-level await: each fails
    // in a classic script, or resolves against the document instead of the chunk)
    if (/^\s*(import|export)\b|\bimport\s*[.(]|^\s*await\b/m.test(code) || chunk.imports.length
        || chunk.dynamicImports.length || chunk.exports.length)
      throw new Error("src/boot.ts must import and export nothing: it runs as a classic script");
    return { code: `(() => {\n"use strict";\n${code}\n})();\n`, map: null };
  },
};

// uPlot is its own chunk, imported on first use (src/charts/uplot.ts). index.html names it
// in a <meta name="mf-uplot">, ahead of boot.ts (which reads it while the document is still
// being parsed): boot.ts preloads it on a route with charts, so the browser fetches and
// compiles it beside the app's bundle there, and nowhere else. Both go right after the
// viewport's meta (boot.ts measures the viewport: a phone lays a page out 980 px wide
// until it has read that tag) and before the stylesheet (which boot.ts must not wait for).
const VIEWPORT_META = /<meta name="viewport"[^>]*>/;
const bootTags = {
  name: "metricflow-boot-tags",
  apply: "build",
  transformIndexHtml: {
    order: "post",
    handler: (html: string, ctx: any) => {
      const ids = (c: any): string[] => c.moduleIds || Object.keys(c.modules || {});
      const uplot = chunkOf(ctx, "uPlot", (c) => c.isDynamicEntry && ids(c).some((id) => /[\\/]uplot[\\/]/.test(id)));
      const boot = chunkOf(ctx, "boot", (c) => c.isEntry && c.name === "boot");
      const meta = html.match(VIEWPORT_META);
      const sheet = html.indexOf('<link rel="stylesheet"');
      if (!meta || meta.index === undefined || sheet < meta.index)
        throw new Error("index.html needs its viewport <meta> ahead of the stylesheet: update bootTags in ui/vite.config.ts");
      const at = meta.index + meta[0].length;
      const tags = `\n    <meta name="mf-uplot" content="./${uplot.fileName}">\n    <script src="./${boot.fileName}"></script>`;
      return html.slice(0, at) + tags + html.slice(at);
    },
  },
};

// uPlot makes its number formatter and reads the local time zone when its module runs: the
// page's first Intl calls, which cost a new renderer 15-35 ms here (ICU starting), on the
// run page's critical path. This makes both lazy (made at their first use, which a chart
// with our own axis and legend formatters reaches only for a wall-time axis or the x
// readout). The build fails if uPlot's source no longer has the lines it rewrites.
const LAZY_INTL: [string, string][] = [
  [
    "const numFormatter = new Intl.NumberFormat(domEnv ? nav.language : 'en-US');\nconst fmtNum = val => numFormatter.format(val);",
    "let numFormatter = null;\nconst fmtNum = val => (numFormatter || (numFormatter = new Intl.NumberFormat(domEnv ? nav.language : 'en-US'))).format(val);",
  ],
  [
    "const localTz = new Intl.DateTimeFormat().resolvedOptions().timeZone;",
    "let localTz0 = null;\nconst localTz = () => localTz0 || (localTz0 = new Intl.DateTimeFormat().resolvedOptions().timeZone);",
  ],
  ["else if (tz == localTz)", "else if (tz == localTz())"],
];
let lazyIntlApplied = 0;
const lazyIntl = {
  name: "metricflow-uplot-lazy-intl",
  apply: "build",
  buildStart() {
    lazyIntlApplied = 0;
  },
  buildEnd(error?: Error) {
    if (!error && lazyIntlApplied !== 1) throw new Error(`uPlot's ESM build was rewritten ${lazyIntlApplied} times, not once: update lazyIntl in ui/vite.config.ts`);
  },
  transform(code: string, id: string) {
    if (!/[\\/]uplot[\\/]dist[\\/]uPlot\.esm\.js$/.test(id)) return null;
    lazyIntlApplied++;
    let out = code;
    for (const [from, to] of LAZY_INTL) {
      const n = out.split(from).length - 1;
      if (n !== 1) throw new Error(`uPlot's source changed (${n} copies of ${JSON.stringify(from.slice(0, 40))}): update LAZY_INTL in ui/vite.config.ts`);
      out = out.replace(from, to);
    }
    if (/\blocalTz\b(?!\(|0| = \(\))/.test(out)) throw new Error("uPlot uses localTz elsewhere: update LAZY_INTL in ui/vite.config.ts");
    return { code: out, map: null };
  },
};

// The built UI is package data of the Python package: the server serves
// src/metricflow/ui/static/ at "/" (see src/metricflow/ui/__init__.py).
export default defineConfig({
  plugins: [preact(), bootTags, bootAsClassic, lazyIntl],
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
