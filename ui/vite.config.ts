import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The built UI is package data of the Python package: the server serves
// src/metricflow/ui/static/ at "/" (see src/metricflow/ui/__init__.py).
export default defineConfig({
  plugins: [preact()],
  base: "./",
  build: {
    outDir: "../src/metricflow/ui/static",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    // no inline <script>/<style> (CSP: script-src 'self'; style-src 'self')
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
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
