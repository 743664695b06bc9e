"""The same REST script against a real `mlflow server` and metricflow, compared field by field.

Ids and server-assigned timestamps are replaced by symbols before comparing;
for errors only the HTTP status and `error_code` are compared (messages are
prose). Everything else, including which fields are present, must be equal.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

import pytest
import requests

SERVER_TIMES = {"creation_time", "last_update_time", "creation_timestamp",
                "last_updated_timestamp", "creation_timestamp_ms", "last_updated_timestamp_ms"}
API = "/api/2.0/mlflow"
_FLOAT_MAX = 1.7976931348623157e308
ART = "/api/2.0/mlflow-artifacts/artifacts"


class Recorder:
    """Runs calls against one server and keeps (label, status, body) per call."""

    def __init__(self, base: str) -> None:
        self.base, self.http = base, requests.Session()
        self.calls: list[tuple[str, int, Any]] = []
        self.ids: dict[str, str] = {}
        self.exps: dict[str, str] = {}

    def __call__(self, label: str, method: str, path: str, params: Any = None,
                 body: Any = None, data: bytes | None = None) -> Any:
        r = self.http.request(method, self.base + path, params=params, json=body, data=data,
                              timeout=60)
        try:
            out: Any = r.json() if r.content else {}
        except ValueError:
            out = {"raw": r.content.decode(errors="replace")}
        if r.status_code >= 400:
            out = {"error_code": out.get("error_code")}
        self.calls.append((label, r.status_code, out))
        return out

    def name(self, value: str, symbol: str) -> str:
        self.ids[value] = symbol
        return value

    def normalized(self) -> list[tuple[str, int, Any]]:
        return [(label, status, self._norm(body, "")) for label, status, body in self.calls]

    def _norm(self, v: Any, key: str) -> Any:
        if isinstance(v, dict):
            if "version" in v and "source" in v:
                # Accepted difference: MLflow leaves a model version's user_id empty without
                # its auth app; metricflow records the caller (tests/integration/registry/
                # test_registry_actor.py), as it does for runs and the audit log.
                v = {k: x for k, x in v.items() if k != "user_id"}
            return {k: self._norm(x, k) for k, x in v.items()}
        if isinstance(v, list):
            items = [self._norm(x, key) for x in v]
            if key == "latest_versions":
                # not an ordered list: MLflow's own get and search return it in different orders
                items.sort(key=lambda x: int(x["version"]))
            if items and all(isinstance(x, dict) and ("key" in x or "path" in x or "alias" in x)
                             for x in items):
                items.sort(key=lambda x: json.dumps(x, sort_keys=True))
            return items
        if key in SERVER_TIMES:
            return "<time>"
        if key == "next_page_token":
            return "<token>"
        if isinstance(v, str):
            if key == "experiment_id" and v in self.exps:
                return self.exps[v]
            for exp, sym in self.exps.items():
                v = v.replace(f"mlflow-artifacts:/{exp}/", f"mlflow-artifacts:/{sym}/")
                v = re.sub(rf"^mlflow-artifacts:/{exp}$", f"mlflow-artifacts:/{sym}", v)
            for real, sym in self.ids.items():
                v = v.replace(real, sym)
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        if isinstance(v, float) and abs(v) == _FLOAT_MAX:
            # Accepted difference: MLflow's SQL store clamps +-Inf to +-DBL_MAX; metricflow
            # keeps infinities (sent as "Infinity"/"-Infinity", which the client parses).
            return "Infinity" if v > 0 else "-Infinity"
        return v


def scenario(c: Recorder, sfx: str) -> None:
    """Experiments, runs, metrics, params, tags, search, registry and artifact listings."""
    c("default experiment", "GET", f"{API}/experiments/get", {"experiment_id": "0"})
    exp = c("create experiment", "POST", f"{API}/experiments/create",
            body={"name": f"cmp{sfx}", "tags": [{"key": "team", "value": "a"}]})["experiment_id"]
    c.exps[exp] = "<exp1>"
    c("duplicate experiment", "POST", f"{API}/experiments/create", body={"name": f"cmp{sfx}"})
    c("get by name", "GET", f"{API}/experiments/get-by-name", {"experiment_name": f"cmp{sfx}"})
    c("missing by name", "GET", f"{API}/experiments/get-by-name", {"experiment_name": "nope"})
    c("set exp tag", "POST", f"{API}/experiments/set-experiment-tag",
      body={"experiment_id": exp, "key": "stage", "value": "dev"})
    c("del exp tag", "POST", f"{API}/experiments/delete-experiment-tag",
      body={"experiment_id": exp, "key": "team"})
    c("rename exp", "POST", f"{API}/experiments/update",
      body={"experiment_id": exp, "new_name": f"cmp2{sfx}"})
    c("search exps", "POST", f"{API}/experiments/search",
      body={"filter": f"name = 'cmp2{sfx}'", "max_results": 10})
    c("get exp", "GET", f"{API}/experiments/get", {"experiment_id": exp})
    tags = [{"key": "mlflow.user", "value": "alice"}, {"key": "k", "value": "v"},
            {"key": "mlflow.source.name", "value": "cmp.py"},
            {"key": "mlflow.source.type", "value": "LOCAL"}]
    run1 = c("create run", "POST", f"{API}/runs/create",
             body={"experiment_id": exp, "run_name": "r1", "user_id": "alice",
                   "start_time": 1000, "tags": tags})["run"]["info"]["run_id"]
    c.name(run1, "<run1>")
    pts = [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 2000 + s, "step": s}
           for s in range(6)]
    pts += [{"key": "odd", "value": "NaN", "timestamp": 3000, "step": 0},
            {"key": "odd", "value": "Infinity", "timestamp": 3001, "step": 1},
            {"key": "neg", "value": "-Infinity", "timestamp": 3002, "step": 0}]
    c("log batch", "POST", f"{API}/runs/log-batch",
      body={"run_id": run1, "metrics": pts, "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "t", "value": "1"}]})
    c("log metric", "POST", f"{API}/runs/log-metric",
      body={"run_id": run1, "key": "acc", "value": 0.75, "timestamp": 4000, "step": 2})
    c("log param", "POST", f"{API}/runs/log-parameter",
      body={"run_id": run1, "key": "depth", "value": "3"})
    c("param change", "POST", f"{API}/runs/log-parameter",
      body={"run_id": run1, "key": "lr", "value": "0.2"})
    c("too many params", "POST", f"{API}/runs/log-batch",
      body={"run_id": run1, "params": [{"key": f"p{i}", "value": "x"} for i in range(101)]})
    c("tag overwrite", "POST", f"{API}/runs/set-tag",
      body={"run_id": run1, "key": "t", "value": "2"})
    c("set tag", "POST", f"{API}/runs/set-tag", body={"run_id": run1, "key": "x", "value": "y"})
    c("delete tag", "POST", f"{API}/runs/delete-tag", body={"run_id": run1, "key": "x"})
    c("delete missing tag", "POST", f"{API}/runs/delete-tag",
      body={"run_id": run1, "key": "never"})
    c("get run", "GET", f"{API}/runs/get", {"run_id": run1})
    c("missing run", "GET", f"{API}/runs/get", {"run_id": "f" * 32})
    c("history", "GET", f"{API}/metrics/get-history", {"run_id": run1, "metric_key": "loss"})
    c("history nan", "GET", f"{API}/metrics/get-history", {"run_id": run1, "metric_key": "odd"})
    c("history page", "GET", f"{API}/metrics/get-history",
      {"run_id": run1, "metric_key": "loss", "max_results": 4})
    c("bulk interval", "GET", f"{API}/metrics/get-history-bulk-interval",
      {"run_ids": [run1], "metric_key": "loss", "max_results": 3})
    run2 = c("create child", "POST", f"{API}/runs/create",
             body={"experiment_id": exp, "run_name": "r2", "user_id": "alice",
                   "start_time": 1500, "tags": [{"key": "mlflow.parentRunId", "value": run1}]}
             )["run"]["info"]["run_id"]
    c.name(run2, "<run2>")
    c("finish child", "POST", f"{API}/runs/update",
      body={"run_id": run2, "status": "FINISHED", "end_time": 5000})
    c("search all", "POST", f"{API}/runs/search", body={"experiment_ids": [exp]})
    c("search filter", "POST", f"{API}/runs/search",
      body={"experiment_ids": [exp], "filter": "metrics.loss < 0.5 AND params.lr = '0.1'"})
    c("search order", "POST", f"{API}/runs/search",
      body={"experiment_ids": [exp], "order_by": ["attributes.start_time ASC"]})
    c("search page", "POST", f"{API}/runs/search",
      body={"experiment_ids": [exp], "max_results": 1})
    c("delete run", "POST", f"{API}/runs/delete", body={"run_id": run2})
    c("search deleted", "POST", f"{API}/runs/search",
      body={"experiment_ids": [exp], "run_view_type": "DELETED_ONLY"})
    c("log to deleted", "POST", f"{API}/runs/log-metric",
      body={"run_id": run2, "key": "a", "value": 1, "timestamp": 1})
    c("restore run", "POST", f"{API}/runs/restore", body={"run_id": run2})
    # artifacts through the proxy
    root = f"{ART}/{exp}/{run1}/artifacts"
    c("put a", "PUT", f"{root}/a.txt", data=b"hello")
    c("put b", "PUT", f"{root}/dir/b.txt", data=b"world!")
    c("list root", "GET", ART, {"path": f"{exp}/{run1}/artifacts"})
    c("list dir", "GET", ART, {"path": f"{exp}/{run1}/artifacts/dir"})
    c("list file", "GET", ART, {"path": f"{exp}/{run1}/artifacts/a.txt"})
    c("list run api", "GET", f"{API}/artifacts/list", {"run_id": run1})
    c("list run api dir", "GET", f"{API}/artifacts/list", {"run_id": run1, "path": "dir"})
    c("download", "GET", f"{root}/dir/b.txt")
    # registry
    c("create model", "POST", f"{API}/registered-models/create",
      body={"name": f"cmp-model{sfx}", "tags": [{"key": "o", "value": "1"}],
            "description": "d"})
    c("duplicate model", "POST", f"{API}/registered-models/create",
      body={"name": f"cmp-model{sfx}"})
    src = f"mlflow-artifacts:/{exp}/{run1}/artifacts/dir"
    c("create v1", "POST", f"{API}/model-versions/create",
      body={"name": f"cmp-model{sfx}", "source": src, "run_id": run1,
            "tags": [{"key": "a", "value": "b"}]})
    c("create v2", "POST", f"{API}/model-versions/create",
      body={"name": f"cmp-model{sfx}", "source": src, "run_id": run1})
    c("update model", "PATCH", f"{API}/registered-models/update",
      body={"name": f"cmp-model{sfx}", "description": "new"})
    c("model tag", "POST", f"{API}/registered-models/set-tag",
      body={"name": f"cmp-model{sfx}", "key": "x", "value": "y"})
    c("del model tag", "DELETE", f"{API}/registered-models/delete-tag",
      body={"name": f"cmp-model{sfx}", "key": "o"})
    c("update v1", "PATCH", f"{API}/model-versions/update",
      body={"name": f"cmp-model{sfx}", "version": "1", "description": "first"})
    c("v1 tag", "POST", f"{API}/model-versions/set-tag",
      body={"name": f"cmp-model{sfx}", "version": "1", "key": "k", "value": "v"})
    c("del v1 tag", "DELETE", f"{API}/model-versions/delete-tag",
      body={"name": f"cmp-model{sfx}", "version": "1", "key": "a"})
    c("stage v1", "POST", f"{API}/model-versions/transition-stage",
      body={"name": f"cmp-model{sfx}", "version": "1", "stage": "Staging",
            "archive_existing_versions": False})
    c("latest", "POST", f"{API}/registered-models/get-latest-versions",
      body={"name": f"cmp-model{sfx}", "stages": ["Staging"]})
    c("set alias", "POST", f"{API}/registered-models/alias",
      body={"name": f"cmp-model{sfx}", "alias": "champion", "version": "2"})
    c("get alias", "GET", f"{API}/registered-models/alias",
      {"name": f"cmp-model{sfx}", "alias": "champion"})
    c("get model", "GET", f"{API}/registered-models/get", {"name": f"cmp-model{sfx}"})
    c("get v1", "GET", f"{API}/model-versions/get", {"name": f"cmp-model{sfx}", "version": "1"})
    c("download uri", "GET", f"{API}/model-versions/get-download-uri",
      {"name": f"cmp-model{sfx}", "version": "1"})
    c("search versions", "GET", f"{API}/model-versions/search",
      {"filter": f"name='cmp-model{sfx}'"})
    c("search models", "GET", f"{API}/registered-models/search",
      {"filter": f"name='cmp-model{sfx}'"})
    c("rename model", "POST", f"{API}/registered-models/rename",
      body={"name": f"cmp-model{sfx}", "new_name": f"cmp-model2{sfx}"})
    c("del alias", "DELETE", f"{API}/registered-models/alias",
      body={"name": f"cmp-model2{sfx}", "alias": "champion"})
    c("del v2", "DELETE", f"{API}/model-versions/delete",
      body={"name": f"cmp-model2{sfx}", "version": "2"})
    c("missing v2", "GET", f"{API}/model-versions/get",
      {"name": f"cmp-model2{sfx}", "version": "2"})
    c("del model", "DELETE", f"{API}/registered-models/delete", body={"name": f"cmp-model2{sfx}"})
    c("missing model", "GET", f"{API}/registered-models/get", {"name": f"cmp-model2{sfx}"})
    c("delete exp", "POST", f"{API}/experiments/delete", body={"experiment_id": exp})
    c("deleted exp", "GET", f"{API}/experiments/get", {"experiment_id": exp})
    c("restore exp", "POST", f"{API}/experiments/restore", body={"experiment_id": exp})


def test_rest_responses_match_reference_server(reference, mf_live):
    ref, mine = Recorder(reference.uri), Recorder(mf_live.uri)
    sfx = f"-{uuid.uuid4().hex[:8]}"  # the metricflow server is shared with other tests
    scenario(ref, sfx)
    scenario(mine, sfx)
    a, b = ref.normalized(), mine.normalized()
    assert [x[0] for x in a] == [x[0] for x in b]
    diffs = [f"{la}: reference {sa} {json.dumps(ja, sort_keys=True)}\n"
             f"{' ' * len(la)}  metricflow {sb} {json.dumps(jb, sort_keys=True)}"
             for (la, sa, ja), (_, sb, jb) in zip(a, b) if (sa, ja) != (sb, jb)]
    assert not diffs, f"{len(diffs)} of {len(a)} responses differ:\n" + "\n".join(diffs)


def test_client_views_match_reference_server(reference, mf_live):
    """The mlflow client's own objects (search_runs DataFrame, history) match too."""
    import mlflow
    from mlflow import MlflowClient

    frames, histories = [], []
    name = f"df-compare-{uuid.uuid4().hex[:8]}"
    for live in (reference, mf_live):
        client = MlflowClient(tracking_uri=live.uri)
        exp = client.create_experiment(name)
        for i in range(3):
            r = client.create_run(exp, start_time=100 + i, run_name=f"run{i}")
            client.log_param(r.info.run_id, "i", str(i))
            for s in range(4):
                client.log_metric(r.info.run_id, "m", i * 10 + s, timestamp=10 + s, step=s)
            client.set_terminated(r.info.run_id, end_time=1000)
        mlflow.set_tracking_uri(live.uri)
        df = mlflow.search_runs([exp], order_by=["params.i ASC"])
        frames.append(df.drop(columns=["run_id", "experiment_id", "artifact_uri"]))
        first = client.search_runs([exp], "params.i = '0'")[0].info.run_id
        histories.append([(m.key, m.value, m.timestamp, m.step)
                          for m in client.get_metric_history(first, "m")])
    ref_df, mf_df = frames
    assert sorted(ref_df.columns) == sorted(mf_df.columns)
    assert ref_df[sorted(ref_df.columns)].astype(str).to_dict("records") == \
        mf_df[sorted(ref_df.columns)].astype(str).to_dict("records")
    assert histories[0] == histories[1]


@pytest.fixture(autouse=True)
def _restore_tracking_uri():  # type: ignore[no-untyped-def]
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)
