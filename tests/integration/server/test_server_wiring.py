"""The embedded server wires artifacts, the registry and HTTP onto one data set."""

from __future__ import annotations

import json
import urllib.request

import metricflow as mf


def test_artifact_then_register_then_resolve(embedded_server, tmp_path):
    mf.set_tracking_uri(f"grpc://{embedded_server.target}")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 10_000)
    with mf.start_run(run_name="trainer") as run:
        mf.log_artifact(str(model), "model")
        mf.log_dict({"lr": 0.1}, "config.json")
    client = mf.get_client()
    rid = run.run.run_id
    names = sorted(a.path for a in client.list_artifacts(rid))
    assert names == ["config.json", "model"]
    mv = mf.register_model(f"runs:/{rid}/model", "wiring-model")
    assert str(mv.version) == "1" and mv.status == "READY"
    client.set_registered_model_alias("wiring-model", "champion", 1)
    assert str(client.get_model_version_by_alias("wiring-model", "champion").version) == "1"
    # a source whose files are not uploaded yet registers READY (as MLflow)
    later = client.create_model_version("wiring-model", f"runs:/{rid}/nothing-here", run_id=rid)
    assert later.status == "READY"
    out = tmp_path / "dl"
    client.download_artifacts(rid, "model", str(out))
    assert (out / "model" / "model.bin").read_bytes() == model.read_bytes() or \
        (out / "model.bin").read_bytes() == model.read_bytes()


def test_http_front_end_serves_runs_registry_and_metrics(embedded_server, client):
    rid = client.create_run("0", run_name="http").run_id
    client.log_metric(rid, "loss", float("nan"), step=1)
    client.flush()
    base = f"http://127.0.0.1:{embedded_server.server.http_port}"
    body = json.load(urllib.request.urlopen(f"{base}/api/v1/runs/{rid}"))
    assert body["info"]["run_name"] == "http"
    prom = urllib.request.urlopen(f"{base}/metrics").read().decode()
    assert "metricflow_ingest_points_total" in prom
    assert "metricflow_artifacts_logical_bytes" in prom
    # the control plane's event bus (webhooks, alerts): the run's creation was queued
    figures = dict(line.rsplit(" ", 1) for line in prom.splitlines()
                   if line.startswith("metricflow_events_"))
    assert float(figures["metricflow_events_emitted_total"]) >= 1, figures
    assert float(figures["metricflow_events_dropped_total"]) == 0, figures
    assert "metricflow_events_queued" in figures
    exps = json.load(urllib.request.urlopen(f"{base}/api/v1/experiments/get?experiment_id=0"))
    assert json.dumps(exps).count("Default") >= 1
