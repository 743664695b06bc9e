#!/usr/bin/env bash
# Warm what the local service launchers need, so the first test does not pay for it:
# Apache Kafka jars (Maven Central -> .cache/devservices), PostgreSQL (apt, if missing),
# a check that moto's server imports, iproute2 and Chromium (the UI's browser tests).
# Idempotent; safe to run on every CI start.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"
# The network-partition fault tests need iproute2's `ip` (netns, veth); install it as
# PostgreSQL is, from Debian's packages, if this machine lacks it.
if ! command -v ip >/dev/null && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
# The web UI's browser tests (tests/integration/ui) drive Debian's Chromium through
# Playwright for Python (a dev extra); Playwright's own browser download is never used.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
exec "$PY" -m metricflow.devservices --install-only kafka postgres s3
