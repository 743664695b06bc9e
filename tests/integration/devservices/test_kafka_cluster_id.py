"""A cluster id that starts with '-' (1 in 64 random ids) must not break formatting."""

from __future__ import annotations

import metricflow.devservices._kafka as kafka


def test_dash_leading_cluster_id_formats_and_starts(monkeypatch):
    monkeypatch.setattr(kafka, "_kafka_uuid", lambda: "-AnnjUsXTxSxoZooINW_qQ")
    with kafka.KafkaBroker() as broker:
        assert broker.running and broker.bootstrap.startswith("127.0.0.1:")
