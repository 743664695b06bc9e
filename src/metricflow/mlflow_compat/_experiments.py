"""MLflow experiment routes on metricflow's control plane."""

from __future__ import annotations

import os
import re
from typing import Any

from metricflow.errors import InvalidArgument, NotFound
from metricflow.mlflow_compat._context import Compat
from metricflow.mlflow_compat._convert import experiment_json, view_type
from metricflow.mlflow_compat._routing import Args, MlflowRoutes
from metricflow.mlflow_compat._rules import experiments_param
from metricflow.mlflow_compat._strings import string_arg

DEFAULT_ORDER = ("creation_time DESC",)
"""MLflow's default experiment order: newest first (ties by experiment id)."""

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _resolve_local(location: str) -> str:
    """A relative local `artifact_location` made absolute against the server's working
    directory, as MLflow's server does (`my_location` -> `/srv/cwd/my_location`); URIs
    and absolute paths are kept as given."""
    if not location or _SCHEME.match(location) or os.path.isabs(location):
        return location
    return os.path.abspath(location)


class ExperimentRoutes:
    """Handlers of /mlflow/experiments/*."""

    def __init__(self, c: Compat) -> None:
        self.c = c

    def _json(self, e: Any) -> dict[str, Any]:
        return experiment_json(e, self.c.experiment_location(e))

    async def create(self, a: Args) -> dict[str, Any]:
        name = a.required("name")
        location = _resolve_local(a.text("artifact_location"))
        tags = a.kv_list("tags")
        seen: set[str] = set()
        dup = next((k for k, _ in tags if k in seen or seen.add(k)), None)  # type: ignore[func-returns-value]
        if dup is not None:  # MLflow: 400 and no experiment
            raise InvalidArgument(f"Experiment tag key {dup!r} is given more than once in "
                                  f"the request for experiment {name!r}; each tag key may "
                                  "appear once", field="tags", received=dup)
        exp_id = await self.c.call(self.c.metadata.create_experiment, name,
                                   location or None, dict(tags) or None)
        return {"experiment_id": str(exp_id)}

    async def get(self, a: Args) -> dict[str, Any]:
        e = await self.c.call(self.c.metadata.get_experiment, a.required("experiment_id"))
        return {"experiment": self._json(e)}

    async def get_by_name(self, a: Args) -> dict[str, Any]:
        name = a.required("experiment_name")
        e = await self.c.call(self.c.metadata.get_experiment_by_name, name)
        if e is None:
            raise NotFound(f"Could not find experiment with name '{name}'",
                           field="experiment_name", received=name)
        return {"experiment": self._json(e)}

    async def search(self, a: Args) -> dict[str, Any]:
        max_results = a.integer("max_results", 1000)
        assert max_results is not None
        if not 0 < max_results <= 50_000:
            raise InvalidArgument(f"Invalid value {max_results} for parameter 'max_results' "
                                  "supplied. It must be a positive integer <= 50000",
                                  field="max_results", received=max_results)
        exps, token = await self.c.call(
            self.c.metadata.search_experiments, a.text("filter"), view_type(a.get("view_type")),
            max_results, [str(o) for o in a.items("order_by")] or list(DEFAULT_ORDER),
            a.text("page_token") or None)
        out: dict[str, Any] = {}
        if exps:
            out["experiments"] = [self._json(e) for e in exps]
        if token:
            out["next_page_token"] = token
        return out

    async def update(self, a: Args) -> dict[str, Any]:
        exp_id = a.required("experiment_id")
        new_name = a.text("new_name")
        if new_name:
            await self.c.call(self.c.metadata.rename_experiment, exp_id, new_name)
        else:
            await self.c.call(self.c.metadata.get_experiment, exp_id)
        return {}

    async def delete(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.c.metadata.delete_experiment, a.required("experiment_id"))
        return {}

    async def restore(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.c.metadata.restore_experiment, a.required("experiment_id"))
        return {}

    async def set_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.c.metadata.set_experiment_tag, a.required("experiment_id"),
                          a.required("key"), string_arg(a, "value"))
        return {}

    async def delete_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.c.metadata.delete_experiment_tag, a.required("experiment_id"),
                          a.required("key"))
        return {}


MAX_DATASET_EXPERIMENTS = 20
_DATASET_RUNS_PAGE = 1000


class DatasetSearch:
    """POST /experiments/search-datasets (MLflow's UI): the distinct datasets logged as
    inputs of the active runs of up to 20 experiments, with their context tag."""

    def __init__(self, c: Compat) -> None:
        self.c = c

    def _read(self, exp_ids: list[str]) -> list[dict[str, Any]]:
        seen: dict[tuple[str, str, str, str], None] = {}
        token = ""
        while True:
            runs, token = self.c.query.search_runs(exp_ids, "", [], _DATASET_RUNS_PAGE, token,
                                                   "active")
            extras = self.c.docs.run_extras([r.info.run_id for r in runs])
            for r in runs:
                for d in extras.get(r.info.run_id, {}).get("dataset_inputs", []):
                    ds = d.get("dataset", {}) if isinstance(d, dict) else {}
                    tags = {t.get("key"): t.get("value") for t in d.get("tags", [])
                            if isinstance(t, dict)}
                    seen[(str(r.info.experiment_id), str(ds.get("name", "")),
                          str(ds.get("digest", "")),
                          str(tags.get("mlflow.data.context") or ""))] = None
            if not token:
                break
        out = []
        for exp, name, digest, context in seen:
            item = {"experiment_id": exp, "name": name, "digest": digest}
            if context:
                item["context"] = context
            out.append(item)
        return out

    async def handle(self, a: Args) -> dict[str, Any]:
        exp_ids = [str(e) for e in a.items("experiment_ids")]
        if not exp_ids:
            raise InvalidArgument("SearchDatasets request must specify at least one "
                                  "experiment_id.", field="experiment_ids")
        if len(exp_ids) > MAX_DATASET_EXPERIMENTS:
            raise InvalidArgument(f"SearchDatasets request cannot specify more than "
                                  f"{MAX_DATASET_EXPERIMENTS} experiment_ids. Received "
                                  f"{len(exp_ids)} experiment_ids.", field="experiment_ids",
                                  limit=MAX_DATASET_EXPERIMENTS, received=len(exp_ids))
        found = await self.c.call(self._read, exp_ids)
        return {"dataset_summaries": found} if found else {}


def add_routes(routes: MlflowRoutes, c: Compat) -> None:
    h = ExperimentRoutes(c)
    # Readable experiments only: the run search below is the caller-scoped one.
    routes.add("POST", "/experiments/search-datasets", DatasetSearch(c).handle,
               rule=experiments_param("experiment_ids"))
    for method, path, fn in (
        ("POST", "/experiments/create", h.create), ("GET", "/experiments/get", h.get),
        ("GET", "/experiments/get-by-name", h.get_by_name),
        (["POST", "GET"], "/experiments/search", h.search),
        ("POST", "/experiments/update", h.update), ("POST", "/experiments/delete", h.delete),
        ("POST", "/experiments/restore", h.restore),
        ("POST", "/experiments/set-experiment-tag", h.set_tag),
        ("POST", "/experiments/delete-experiment-tag", h.delete_tag),
    ):
        routes.add(method, path, fn)
