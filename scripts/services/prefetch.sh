#!/usr/bin/env bash
# Warm what the local service launchers need, so the first test does not pay for it:
# Apache Kafka jars (Maven Central -> .cache/devservices), PostgreSQL (apt, if missing),
# and a check that moto's server imports. Idempotent; safe to run on every CI start.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"
exec "$PY" -m metricflow.devservices --install-only kafka postgres s3
