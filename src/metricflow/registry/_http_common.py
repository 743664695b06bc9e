"""What the registry's HTTP routes share: request bodies, the acting user, JSON answers.

Used by `_http.py` (experiments) and `_http_registry.py` (models, versions, audit log).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from metricflow.auth import caller
from metricflow.errors import MetricflowError

ActorOf = Callable[[Request], "str | None"]
ACTOR_HEADER = "X-Metricflow-Actor"


def actor_from_header(request: Request) -> str | None:
    """The caller with auth off: the X-Metricflow-Actor header, else the server's OS user
    (`metricflow.auth._context.caller`, the rule runs use too)."""
    return caller(request.headers.get(ACTOR_HEADER))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(_Body):
    name: str
    artifact_location: str | None = None
    tags: dict[str, str] = {}


class ExperimentRef(_Body):
    experiment_id: str


class RenameExperiment(ExperimentRef):
    new_name: str


class ExperimentTag(ExperimentRef):
    key: str
    value: str = ""


class Search(_Body):
    filter: str = ""
    max_results: int | None = None
    order_by: list[str] = []
    page_token: str | None = None


class SearchExperiments(Search):
    view_type: str = "active"


class CreateModel(_Body):
    name: str
    tags: dict[str, str] = {}
    description: str = ""


class ModelRef(_Body):
    name: str
    expected_version: int | None = None


class RenameModel(ModelRef):
    new_name: str


class UpdateModel(ModelRef):
    description: str


class ModelTag(_Body):
    name: str
    key: str
    value: str = ""


class Alias(_Body):
    name: str
    alias: str
    version: str = ""


class CreateVersion(_Body):
    name: str
    source: str
    run_id: str | None = None
    tags: dict[str, str] = {}
    description: str = ""
    run_link: str = ""


class VersionRef(ModelRef):
    version: str


class UpdateVersion(VersionRef):
    description: str


class Transition(VersionRef):
    stage: str
    archive_existing_versions: bool = False
    comment: str = ""


class VersionTag(ModelTag):
    version: str


class LatestVersions(_Body):
    name: str
    stages: list[str] = []


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _run(fn: Callable[[], Any]) -> JSONResponse:
    try:
        result = fn()
        return JSONResponse({} if result is None else _json(result))
    except MetricflowError as e:
        return JSONResponse({"error_code": e.code.value, "message": e.message},
                            status_code=e.http_status)
