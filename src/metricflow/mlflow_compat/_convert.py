"""metricflow values -> MLflow REST JSON (field names and presence as MLflow writes them).

MLflow's protos are proto2: unset fields are left out, so empty lists and
unset optional fields are omitted here too. int64 fields are JSON numbers, and
NaN/Inf metric values are the strings "NaN", "Infinity", "-Infinity".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metricflow.mlflow_compat._routing import num

VIEW_TYPES = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all",
              "1": "active", "2": "deleted", "3": "all"}


def view_type(value: Any) -> str:
    """MLflow's ViewType name (or number) -> metricflow's view type."""
    if value in (None, ""):
        return "active"
    vt = VIEW_TYPES.get(str(value).upper())
    if vt is None:
        from metricflow.errors import InvalidArgument

        raise InvalidArgument(f"Invalid view_type {value!r}: expected ACTIVE_ONLY, "
                              "DELETED_ONLY or ALL", field="view_type", received=str(value))
    return vt


def kv(d: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def put_list(out: dict[str, Any], name: str, items: list[Any]) -> None:
    if items:
        out[name] = items


# ---------------------------------------------------------------- experiments
def experiment_json(e: Any, artifact_location: str) -> dict[str, Any]:
    out = {"experiment_id": e.experiment_id, "name": e.name,
           "artifact_location": artifact_location, "lifecycle_stage": e.lifecycle_stage,
           "last_update_time": e.last_update_time, "creation_time": e.creation_time}
    put_list(out, "tags", kv(e.tags))
    out["workspace"] = "default"
    return out


# ----------------------------------------------------------------------- runs
def run_info_json(info: Any, artifact_uri: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_uuid": info.run_id, "experiment_id": info.experiment_id,
        "run_name": info.run_name, "user_id": info.user_id, "status": info.status,
        "start_time": info.start_time, "artifact_uri": artifact_uri,
        "lifecycle_stage": info.lifecycle_stage, "run_id": info.run_id}
    if info.end_time:
        out["end_time"] = info.end_time
    return out


def run_json(info: Any, artifact_uri: str, params: Mapping[str, str],
             tags: Mapping[str, str], metrics: Mapping[str, Any],
             extras: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Run (info, data, inputs, outputs); `metrics` are metricflow MetricSummary values."""
    data: dict[str, Any] = {}
    put_list(data, "metrics", [
        {"key": k, "value": num(s.last_value), "timestamp": s.last_timestamp,
         "step": s.last_step} for k, s in metrics.items()])
    put_list(data, "params", kv(params))
    put_list(data, "tags", kv(tags))
    extras = extras or {}
    inputs: dict[str, Any] = {}
    put_list(inputs, "dataset_inputs", list(extras.get("dataset_inputs", [])))
    put_list(inputs, "model_inputs", list(extras.get("model_inputs", [])))
    outputs: dict[str, Any] = {}
    put_list(outputs, "model_outputs", list(extras.get("model_outputs", [])))
    return {"info": run_info_json(info, artifact_uri), "data": data, "inputs": inputs,
            "outputs": outputs}


# -------------------------------------------------------------------- metrics
_NONFINITE = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"',
              "-0": "-0.0"}  # Arrow prints -0.0 as "-0", which JSON readers take as 0


def _json_str(s: str) -> str:
    import json

    return json.dumps(s)


def metric_points_json(key: str, steps: np.ndarray, timestamps: np.ndarray,
                       values: np.ndarray, run_ids: np.ndarray | None = None) -> str:
    """Metric objects joined by commas, built column-wise in Arrow (no per-point Python).

    Arrow prints float64 as the shortest string that round-trips, which is
    what JSON needs; nan/inf are then swapped for MLflow's string forms, and
    -0 for -0.0 (an integer -0 would read back as 0).
    """
    n = int(values.shape[0])
    if n == 0:
        return ""
    v = pc.cast(pa.array(values, pa.float64()), pa.string())
    for raw, quoted in _NONFINITE.items():
        v = pc.if_else(pc.equal(v, raw), quoted, v)
    parts: list[Any] = [
        pa.scalar('{"key":' + _json_str(key) + ',"value":'), v,
        pa.scalar(',"timestamp":'), pc.cast(pa.array(timestamps, pa.int64()), pa.string()),
        pa.scalar(',"step":'), pc.cast(pa.array(steps, pa.int64()), pa.string())]
    if run_ids is not None:
        parts += [pa.scalar(',"run_id":"'), pa.array(run_ids, pa.string()), pa.scalar('"')]
    parts.append(pa.scalar("}"))
    joined = pc.binary_join_element_wise(*parts, "")
    lists = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), joined)
    return pc.binary_join(lists, ",")[0].as_py()


# ------------------------------------------------------------------- registry
def model_version_json(mv: Any, with_aliases: bool = True) -> dict[str, Any]:
    """A ModelVersion; MLflow lists aliases only where one version is fetched."""
    out: dict[str, Any] = {
        "name": mv.name, "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "current_stage": mv.current_stage, "description": mv.description or "",
        "source": mv.source, "run_id": mv.run_id or "", "status": mv.status,
        "run_link": mv.run_link or ""}
    if mv.user_id:
        out["user_id"] = mv.user_id
    if mv.status_message:
        out["status_message"] = mv.status_message
    put_list(out, "tags", kv(mv.tags))
    if with_aliases:
        put_list(out, "aliases", list(mv.aliases))
    return out


def registered_model_json(rm: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rm.name, "creation_timestamp": rm.creation_timestamp,
                           "last_updated_timestamp": rm.last_updated_timestamp}
    if rm.description:
        out["description"] = rm.description
    latest = sorted(rm.latest_versions, key=lambda v: int(v.version))
    put_list(out, "latest_versions", [model_version_json(v, False) for v in latest])
    put_list(out, "tags", kv(rm.tags))
    put_list(out, "aliases", [{"alias": a, "version": str(v)} for a, v in rm.aliases.items()])
    return out


# ------------------------------------------------------------- logged models
def logged_model_json(doc: Mapping[str, Any], artifact_uri: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": doc["model_id"], "experiment_id": doc["experiment_id"],
        "name": doc["name"], "creation_timestamp_ms": doc["creation_timestamp_ms"],
        "last_updated_timestamp_ms": doc["last_updated_timestamp_ms"],
        "artifact_uri": artifact_uri, "status": doc["status"],
        "model_type": doc.get("model_type", "")}
    if doc.get("source_run_id"):
        info["source_run_id"] = doc["source_run_id"]
    if doc.get("status_message"):
        info["status_message"] = doc["status_message"]
    put_list(info, "tags", kv(dict(sorted(doc.get("tags", {}).items()))))
    data: dict[str, Any] = {}
    put_list(data, "params", kv(dict(sorted(doc.get("params", {}).items()))))
    put_list(data, "metrics", list(doc.get("metrics", [])))
    return {"info": info, "data": data}
