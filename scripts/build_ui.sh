#!/usr/bin/env bash
# Build the web UI (ui/ -> src/metricflow/ui/static/) with this machine's Node.js and npm.
# A machine without them gets Debian's nodejs and npm packages first (as root: CI runs as
# root; otherwise through sudo when available). Idempotent: `make` reruns it only when a
# file under ui/ changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "build_ui: node/npm not found; installing Debian's nodejs and npm" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "build_ui: Node.js >= 18 is needed to build the UI (Vite 5); found $(node --version)" >&2
  exit 1
fi
cd ui
npm ci --no-audit --no-fund --loglevel=error
npm run build
test -f ../src/metricflow/ui/static/index.html
echo "build_ui: built src/metricflow/ui/static/ ($(du -sk ../src/metricflow/ui/static | cut -f1) KiB)"
