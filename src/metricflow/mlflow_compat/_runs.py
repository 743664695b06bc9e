"""MLflow run routes: create/get/update/delete/restore/search and the logging calls.

Every write becomes a TrackingCore request (ingest protobufs), so runs logged
through MLflow are stored exactly like runs logged by metricflow's client.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import numpy as np

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import decode_metrics, encode_metrics
from metricflow.artifacts import LocalBlobStore
from metricflow.auth import caller
from metricflow.errors import InvalidArgument, InvalidState, NotFound
from metricflow.mlflow_compat._context import Compat, check_run
from metricflow.mlflow_compat._convert import run_info_json, run_json, view_type
from metricflow.mlflow_compat._numbers import json_double, json_int64
from metricflow.mlflow_compat._routing import Args, MlflowRoutes
from metricflow.mlflow_compat._strings import MAX_RUN_NAME, check_length, string_arg
from metricflow.store.metadata import dataset_inputs_from_mlflow

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"


def _parent_id(value: str) -> str:
    """The `mlflow.parentRunId` tag as a parent link when it is a run id, else no link."""
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else ""


def _run_id(a: Args) -> str:
    return a.required("run_id", "run_uuid")


def metric_columns(items: list[Any], prefix: str = "metrics[{i}]."
                   ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MLflow metric objects -> (keys, key_index, steps, timestamps, values) numpy columns.

    Each value is read as proto3 JSON reads MLflow's `double value`, `int64 timestamp`
    and `int64 step` (`_numbers.py`): a wrong type is refused, never coerced. `prefix`
    names the fields in errors ("" for log-metric's top-level fields).
    """
    fast = _metric_columns_fast(items)
    if fast is not None:
        return fast
    n = len(items)
    values = np.empty(n, np.float64)
    ts = np.empty(n, np.int64)
    steps = np.empty(n, np.int64)
    for i, m in enumerate(items):
        at = prefix.format(i=i)
        if not isinstance(m, dict) or not isinstance(m.get("key"), str):
            raise InvalidArgument(f"{at.rstrip('.') or 'the metric'} must be an object with "
                                  "a string 'key'", field=f"{at}key")
        for f in ("value", "timestamp"):
            if m.get(f) is None:
                raise InvalidArgument(f"Missing value for required parameter '{at}{f}'.",
                                      field=f"{at}{f}")
        values[i] = json_double(m["value"], f"{at}value")
        # MLflow: "Timestamp must be a nonnegative long (64-bit integer)".
        ts[i] = json_int64(m["timestamp"], f"{at}timestamp", minimum=0)
        step = m.get("step")
        steps[i] = 0 if step is None else json_int64(step, f"{at}step")
    raw_keys = np.array([m["key"] for m in items], dtype=object)
    keys, key_index = np.unique(raw_keys, return_inverse=True)
    return [str(k) for k in keys], key_index.astype(np.int32), steps, ts, values


def _metric_columns_fast(items: list[Any]
                         ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray] | None:
    """metric_columns for the usual request (plain JSON numbers, string keys): each
    field is gathered in one pass into a numpy column. None when any item needs the
    per-item checks (a string number, a missing or wrong-typed field, a value out of
    range), which then name the offending field."""
    try:
        keys = [m["key"] for m in items]
        vals = [m["value"] for m in items]
        ts = [m["timestamp"] for m in items]
        steps = [m.get("step") for m in items]
    except (KeyError, TypeError, AttributeError):
        return None
    if not (all(type(k) is str for k in keys)  # exact types: bool is not a number
            and all(type(v) is float or type(v) is int for v in vals)
            and all(type(t) is int for t in ts)
            and all(type(s) is int or s is None for s in steps)):
        return None
    try:
        values = np.array(vals, dtype=np.float64)
        tsa = np.array(ts, dtype=np.int64)
        sta = np.array([0 if s is None else s for s in steps], dtype=np.int64)
    except OverflowError:  # an integer beyond 64 bits
        return None
    if not np.isfinite(values).all() or (tsa < 0).any():
        return None  # an integer beyond a double's range; a negative timestamp
    index: dict[str, int] = {}
    key_index = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int32,
                            len(keys))
    return list(index), key_index, sta, tsa, values


def _cut(value: Any, limit: int) -> Any:
    """A string value cut to `limit` characters (MLflow's server truncates, see log_batch)."""
    return value[:limit] if isinstance(value, str) and len(value) > limit else value


def check_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for n, limit, what in ((n_metrics, MAX_METRICS_PER_BATCH, "metrics"),
                           (n_params, MAX_PARAMS_PER_BATCH, "params"),
                           (n_tags, MAX_TAGS_PER_BATCH, "tags")):
        if n > limit:
            raise InvalidArgument(f"A batch logging request can contain at most {limit} "
                                  f"{what}. Got {n} {what}. Please split up {what} across "
                                  "multiple requests and try again.", field=what, limit=limit,
                                  received=n)
    total = n_metrics + n_params + n_tags
    if total > MAX_ENTITIES_PER_BATCH:
        raise InvalidArgument(f"A batch logging request can contain at most "
                              f"{MAX_ENTITIES_PER_BATCH} total metrics, params and tags. Got "
                              f"{total}.", field="metrics", limit=MAX_ENTITIES_PER_BATCH,
                              received=total)


def dedup_params(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Identical (key, value) pairs collapse; one key with two values is an error."""
    seen: dict[str, str] = {}
    for k, v in params:
        if k in seen and seen[k] != v:
            raise InvalidArgument(f"Duplicate parameter keys have been submitted: [{k!r}]. "
                                  "Please ensure the request contains only one param value "
                                  "per param key.", field="params", received=k)
        seen[k] = v
    return list(seen.items())


class RunRoutes:
    """Handlers of /mlflow/runs/*."""

    def __init__(self, c: Compat) -> None:
        self.c = c

    async def _active(self, run_id: str) -> None:
        try:
            await self.c.tracking.check_run_active(check_run(run_id))
        except InvalidState:
            raise InvalidArgument(f"The run {run_id} must be in the 'active' state. Current "
                                  "state is deleted.", field="run_id", received=run_id) from None

    async def log_batch(self, run_id: str, metrics: list[Any], params: list[tuple[str, str]],
                        tags: list[tuple[str, str]], deleted: tuple[str, ...] = (),
                        metric_prefix: str = "metrics[{i}].") -> None:
        """One TrackingCore.log_batch: params and tags all-or-nothing, then the metrics."""
        check_batch_limits(len(metrics), len(params), len(tags))
        await self._active(run_id)
        # MLflow 3.17.2's server cuts longer values to its limits and answers 200 (params
        # 6000, tags 8000 characters); the native API refuses them with 400 instead.
        lim = self.c.tracking.limits
        params = [(k, _cut(v, lim.max_param_value_length)) for k, v in params]
        tags = [(k, _cut(v, lim.max_tag_value_length)) for k, v in tags]
        req = pb.LogBatchRequest(run_id=run_id,
                                 params=[pb.Param(key=k, value=v) for k, v in
                                         dedup_params(params)],
                                 tags=[pb.Tag(key=k, value=v) for k, v in tags] +
                                 [pb.Tag(key=k, deleted=True) for k in deleted])
        batch = decoded = None
        if metrics:
            # Metrics travel as a WriteBatch, the one metric message every sink forwards
            # as-is (the Kafka writer parses exactly that); validated before anything is
            # written, so a bad metric leaves params and tags unwritten too.
            batch = pb.WriteBatch(client_id=uuid.uuid4().hex, seq=0, run_id=run_id)
            encode_metrics(batch.metrics, *metric_columns(metrics, metric_prefix))
            decoded = decode_metrics(run_id, batch.metrics, self.c.tracking.limits)
        if req.params or req.tags:
            await self.c.tracking.log_batch(req)
        if batch is not None and decoded is not None:
            await self.c.tracking.write_metrics(decoded, batch.SerializeToString(),
                                                (batch.client_id, batch.seq))

    # ----------------------------------------------------------------- CRUD
    async def create(self, a: Args) -> dict[str, Any]:
        tags: dict[str, str] = dict(a.kv_list("tags"))
        check_length(a.text("run_name"), "run_name", MAX_RUN_NAME)
        check_length(tags.get(RUN_NAME_TAG, ""), f"tags.{RUN_NAME_TAG}", MAX_RUN_NAME)
        req = pb.CreateRunRequest(
            experiment_id=a.text("experiment_id") or "0", run_name=a.text("run_name"),
            user_id=a.text("user_id"), start_time=a.integer("start_time", 0) or 0,
            # MLflow keeps a parent tag that names no run id as a plain tag.
            parent_run_id=_parent_id(tags.get("mlflow.parentRunId", "")),
            tags=[pb.Tag(key=k, value=v) for k, v in tags.items()])
        # An MLflow server keeps only the tags its client sent (its fluent API sends
        # mlflow.user, MlflowClient.create_run does not), so no default mlflow.user here.
        info = await self.c.tracking.create_run(req, user_tag=False)
        self.c.created_run(info)
        system = {RUN_NAME_TAG: info.run_name}
        if info.parent_run_id:
            system["mlflow.parentRunId"] = info.parent_run_id
        # Built from what was written, not read back: on the Kafka write path the writer
        # applies the run a moment later.
        run = run_json(info, self.c.run_artifact_uri(info), {}, {**system, **tags}, {})
        run.pop("outputs", None)  # MLflow's CreateRun response has no outputs
        return {"run": run}

    async def get(self, a: Args) -> dict[str, Any]:
        run_id = check_run(_run_id(a))
        hot_run = getattr(self.c.tracking.sink, "hot_run", None)
        hot = hot_run(run_id) if hot_run is not None else None
        if hot is not None:
            # Created through this process's embedded sink and held whole in memory,
            # as every acknowledged write left it: the store may not have applied the
            # latest records yet, and reading it would wait for that apply.
            if isinstance(self.c.docs.blobs, LocalBlobStore):
                # Its inputs/outputs document is a local file read: no thread hop
                # (under load a hop cost more than the whole answer).
                return {"run": self._hot_json(hot)}
            return {"run": await self.c.call(self._hot_json, hot)}
        try:
            return {"run": await self.c.call(self.c.load_run_json, run_id)}
        except NotFound:
            pass
        # Kafka path: the writer may not have applied the run yet. MLflow's end_run reads
        # the run before it updates it, so a short run must be readable at once.
        return {"run": await self._get_unapplied(run_id)}

    def _hot_json(self, hot: Any) -> dict[str, Any]:
        """runs/get of a run held in memory (keys ordered as the store orders them)."""
        info = hot.info
        extras = self.c.docs.get(self.c.docs.run_key(info.run_id))
        return run_json(info, self.c.run_artifact_uri(info), dict(sorted(hot.params.items())),
                        dict(sorted(hot.tags.items())), dict(sorted(hot.metrics.items())),
                        extras)

    async def _get_unapplied(self, run_id: str) -> dict[str, Any]:
        """A run the data plane does not show: waited for like a lifecycle call's run
        (up to TrackingCore.run_wait_s); one created through this process is answered
        from what it wrote (info and name, no params, tags or metrics yet) if the wait
        runs out, since it exists; an unknown one is 404."""
        tracking = self.c.tracking
        info = await tracking.find_run(run_id)
        if info is None:
            raise NotFound(f"Run with id={run_id} not found", field="run_id", received=run_id)
        deadline = time.monotonic() + tracking.run_wait_s
        while time.monotonic() < deadline:
            try:
                return await self.c.call(self.c.load_run_json, run_id)
            except NotFound:
                await asyncio.sleep(0.1)
        tags = {RUN_NAME_TAG: info.run_name}
        if info.parent_run_id:
            tags["mlflow.parentRunId"] = info.parent_run_id
        return run_json(info, self.c.run_artifact_uri(info), {}, tags, {})

    async def _update_run(self, request: pb.UpdateRunRequest) -> Any:
        """TrackingCore.update_run with MLflow's answer for a missing run.

        The core finds the run the way logging does: a run created through this process
        is known before the writer has applied it (Kafka path), others are waited for a
        bounded time. Reading the data plane here answered 404 for a run younger than
        the writer's lag (every short `with mlflow.start_run()` failed at its end).
        """
        try:
            info = await self.c.tracking.update_run(request)
        except NotFound:
            raise NotFound(f"Run with id={request.run_id} not found", field="run_id",
                           received=request.run_id) from None
        if info is None:  # a core that cannot look runs up (not the case on this API)
            info = await self.c.call(self.c.run_info, request.run_id)
        return info

    async def update(self, a: Args) -> dict[str, Any]:
        run_id = check_run(_run_id(a))
        status = a.text("status")
        check_length(a.text("run_name"), "run_name", MAX_RUN_NAME)
        if status and status not in pb.RunStatus.keys():
            raise InvalidArgument(f"Invalid run status {status!r}", field="status",
                                  received=status)
        info = await self._update_run(pb.UpdateRunRequest(
            run_id=run_id, status=pb.RunStatus.Value(status) if status else None,
            end_time=a.integer("end_time", 0) or 0, run_name=a.text("run_name")))
        return {"run_info": run_info_json(info, self.c.run_artifact_uri(info))}

    async def _lifecycle(self, a: Args, stage: str) -> dict[str, Any]:
        run_id = check_run(_run_id(a))
        await self._update_run(pb.UpdateRunRequest(run_id=run_id, lifecycle_stage=stage))
        return {}

    async def delete(self, a: Args) -> dict[str, Any]:
        return await self._lifecycle(a, "deleted")

    async def restore(self, a: Args) -> dict[str, Any]:
        return await self._lifecycle(a, "active")

    async def search(self, a: Args) -> dict[str, Any]:
        max_results = a.integer("max_results", 1000)
        assert max_results is not None
        if not 0 < max_results <= 50_000:
            raise InvalidArgument(f"Invalid value {max_results} for parameter 'max_results' "
                                  "supplied. It must be a positive integer <= 50000",
                                  field="max_results", received=max_results)
        exp_ids = [str(e) for e in a.items("experiment_ids")]
        query, runs_json = self.c.query, self.c.runs_json

        def page() -> tuple[list[dict[str, Any]], str]:
            # One trip off the event loop for the search, the page's runs and their JSON.
            runs, token = query.search_runs(
                exp_ids, a.text("filter"), [str(o) for o in a.items("order_by")],
                max_results, a.text("page_token"), view_type(a.get("run_view_type")),
                dataset_runs=self._dataset_runs, artifact_root=self.c.artifact_root)
            return (runs_json(runs) if runs else []), token

        runs, token = await self.c.call(page)
        out: dict[str, Any] = {}
        if runs:
            out["runs"] = runs
        if token:
            out["next_page_token"] = token
        return out

    def _dataset_runs(self, field: str, op: str, value: str | tuple[str, ...]) -> set[str]:
        """`datasets.<field>` filters: runs with a matching input (control plane, where
        runs/log-inputs records them)."""
        if self.c.metadata is None:
            raise InvalidArgument(f"datasets.{field} filters need the control plane (run "
                                  "inputs live there); this server has none",
                                  field="filter", received=f"datasets.{field}")
        return set(self.c.metadata.runs_with_inputs(field, op, value))

    # -------------------------------------------------------------- logging
    async def log_metric(self, a: Args) -> dict[str, Any]:
        m = {"key": a.required("key"), "value": a.get("value"),
             "timestamp": a.get("timestamp"), "step": a.get("step")}
        await self.log_batch(_run_id(a), [m], [], [], metric_prefix="")
        # MLflow 3: a metric of a logged model keeps its model and dataset (the model's
        # document holds them; see docs/mlflow.md).
        extra = {k: a.text(k) for k in ("model_id", "dataset_name", "dataset_digest")}
        if extra["model_id"]:
            await self._link_model_metrics(_run_id(a), [{**m, **{k: v for k, v in
                                                                 extra.items() if v}}])
        return {}

    async def log_param(self, a: Args) -> dict[str, Any]:
        await self.log_batch(_run_id(a), [], [(a.required("key"), string_arg(a, "value"))], [])
        return {}

    async def log_batch_route(self, a: Args) -> dict[str, Any]:
        metrics = a.items("metrics")
        # checked before anything is written: the tag is also the run's name
        check_length(dict(a.kv_list("tags")).get(RUN_NAME_TAG, ""), f"tags.{RUN_NAME_TAG}",
                     MAX_RUN_NAME)
        await self.log_batch(_run_id(a), metrics, a.kv_list("params"), a.kv_list("tags"))
        run_name = dict[str, str](a.kv_list("tags")).get(RUN_NAME_TAG)
        if run_name:
            await self._update_run(pb.UpdateRunRequest(run_id=_run_id(a), run_name=run_name))
        await self._link_model_metrics(_run_id(a), metrics)
        return {}

    async def set_tag(self, a: Args) -> dict[str, Any]:
        run_id, key = _run_id(a), a.required("key")
        if key == RUN_NAME_TAG:  # the run's name too: checked before the tag is written
            check_length(string_arg(a, "value"), "value", MAX_RUN_NAME)
        await self.log_batch(run_id, [], [], [(key, string_arg(a, "value"))])
        if key == RUN_NAME_TAG and a.text("value"):
            await self._update_run(pb.UpdateRunRequest(run_id=run_id, run_name=a.text("value")))
        return {}

    async def delete_tag(self, a: Args) -> dict[str, Any]:
        run_id, key = check_run(_run_id(a)), a.required("key")
        await self._active(run_id)
        tags = (await self.c.call(self.c.store.get_tags, [run_id]))[run_id]
        if key not in tags:
            raise NotFound(f"No tag with name: {key} in run with id {run_id}", field="key",
                           received=key)
        await self.log_batch(run_id, [], [], [], deleted=(key,))
        return {}

    # ------------------------------------------------- inputs/outputs/models
    async def log_inputs(self, a: Args) -> dict[str, Any]:
        run_id = check_run(_run_id(a))
        await self._active(run_id)
        datasets, models = a.items("datasets"), a.items("models")
        # Checked before anything is stored: a bad entry leaves no half-logged inputs.
        inputs = (dataset_inputs_from_mlflow(datasets)
                  if datasets and self.c.metadata is not None else [])
        for i, d in enumerate(inputs):
            if not d.name or not d.digest:
                raise InvalidArgument(f"Invalid value for parameter 'datasets[{i}]': a "
                                      "dataset needs a name and a digest",
                                      field=f"datasets[{i}]")

        def merge(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {}
            have = doc.setdefault("dataset_inputs", [])
            index = {_dataset_identity(d): i for i, d in enumerate(have)}
            for d in datasets:
                ident = _dataset_identity(d)
                if ident in index:
                    have[index[ident]] = d  # same dataset logged again: newest tags win
                else:
                    index[ident] = len(have)
                    have.append(d)
            mi = doc.setdefault("model_inputs", [])
            mi.extend(m for m in models if m not in mi)
            return doc

        await self.c.call(self.c.docs.update, self.c.docs.run_key(run_id), merge)
        if inputs:  # lineage (dataset -> run -> version), in the control plane
            await self.c.call(self.c.metadata.log_run_inputs, run_id, inputs,
                              actor=caller())
        return {}

    async def log_outputs(self, a: Args) -> dict[str, Any]:
        run_id = check_run(_run_id(a))
        await self._active(run_id)
        models = [{"model_id": str(m.get("model_id", "")),
                   "step": json_int64(m.get("step") or 0, f"models[{i}].step")}
                  for i, m in enumerate(a.items("models")) if isinstance(m, dict)]

        def merge(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {}
            out = doc.setdefault("model_outputs", [])
            out.extend(m for m in models if m not in out)
            return doc

        await self.c.call(self.c.docs.update, self.c.docs.run_key(run_id), merge)
        return {}

    async def log_model(self, a: Args) -> dict[str, Any]:
        """Append the model's MLmodel JSON to the run's `mlflow.log-model.history` tag."""
        run_id = check_run(_run_id(a))
        try:
            model = json.loads(a.required("model_json"))
        except ValueError:
            raise InvalidArgument("model_json is not valid JSON", field="model_json") from None
        await self._active(run_id)
        tags = (await self.c.call(self.c.store.get_tags, [run_id]))[run_id]
        history = json.loads(tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
        history.append(model)
        await self.log_batch(run_id, [], [], [(LOG_MODEL_HISTORY_TAG, json.dumps(history))])
        return {}

    async def _link_model_metrics(self, run_id: str, metrics: list[Any]) -> None:
        """Metrics sent with a model_id also belong to that logged model (MLflow 3)."""
        by_model: dict[str, list[dict[str, Any]]] = {}
        for m in metrics:
            mid = m.get("model_id") if isinstance(m, dict) else None
            if mid:
                by_model.setdefault(str(mid), []).append({**m, "run_id": run_id})
        for mid, ms in by_model.items():
            def add(doc: dict[str, Any] | None, ms: list[dict[str, Any]] = ms,
                    mid: str = mid) -> dict[str, Any]:
                if doc is None:
                    raise NotFound(f"Logged model with ID '{mid}' not found.")
                doc.setdefault("metrics", []).extend(ms)
                doc["last_updated_timestamp_ms"] = int(time.time() * 1000)
                return doc

            await self.c.call(self.c.docs.update, self.c.docs.model_key(mid), add)


def _dataset_identity(d: Any) -> tuple[str, str]:
    ds = d.get("dataset", {}) if isinstance(d, dict) else {}
    return str(ds.get("name", "")), str(ds.get("digest", ""))


def add_routes(routes: MlflowRoutes, c: Compat) -> None:
    h = RunRoutes(c)
    for method, path, fn in (
        ("POST", "/runs/create", h.create), ("GET", "/runs/get", h.get),
        ("POST", "/runs/update", h.update), ("POST", "/runs/delete", h.delete),
        ("POST", "/runs/restore", h.restore), ("POST", "/runs/search", h.search),
        ("POST", "/runs/log-metric", h.log_metric),
        ("POST", "/runs/log-parameter", h.log_param),
        ("POST", "/runs/log-batch", h.log_batch_route), ("POST", "/runs/set-tag", h.set_tag),
        ("POST", "/runs/delete-tag", h.delete_tag), ("POST", "/runs/log-inputs", h.log_inputs),
        ("POST", "/runs/outputs", h.log_outputs), ("POST", "/runs/log-model", h.log_model),
    ):
        routes.add(method, path, fn)
