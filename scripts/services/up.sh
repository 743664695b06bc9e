#!/usr/bin/env bash
# Start real local services for development or benchmarks and keep them up until Ctrl-C.
# Prints `export METRICFLOW_TEST_...=...` lines; in another shell, paste them (or
# `source` a file you redirected stdout to) and the test fixtures use these services.
#   scripts/services/up.sh kafka postgres s3 > /tmp/mf-services.env
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"
if [ "$#" -eq 0 ]; then set -- kafka postgres s3; fi
exec "$PY" -m metricflow.devservices "$@"
