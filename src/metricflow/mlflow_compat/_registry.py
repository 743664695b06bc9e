"""MLflow model registry routes on metricflow's control plane."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from typing import Any

from metricflow.auth import caller
from metricflow.errors import AlreadyExists, InvalidArgument, MetricflowError, NotFound
from metricflow.mlflow_compat._context import Compat
from metricflow.mlflow_compat._convert import model_version_json, registered_model_json
from metricflow.mlflow_compat._routing import Args, MlflowApiError, MlflowRoutes
from metricflow.mlflow_compat._strings import MAX_MODEL_NAME, check_length, string_arg
from metricflow.registry import check_new_source, check_source_readable
from metricflow.store.metadata import host_addressed_scheme

PROMPT_TAG = "mlflow.prompt.is_prompt"


def _refuse_prompt(a: Args) -> None:
    """MLflow stores prompts (mlflow.genai.register_prompt) as registered models tagged
    `mlflow.prompt.is_prompt`; this server serves no prompts (docs/mlflow.md): say so,
    as the other GenAI routes do, before anything is created."""
    if any(k == PROMPT_TAG and str(v).lower() == "true" for k, v in a.kv_list("tags")):
        raise MlflowApiError("Prompts (mlflow.genai.register_prompt, the prompt registry) "
                             "are not served by this server: it implements MLflow's "
                             "tracking, model registry and artifact routes, not its GenAI "
                             "surface (see docs/mlflow.md)", "ENDPOINT_NOT_FOUND", 404)


_LOGGED_MODEL_URI = re.compile(r"^models:/(?P<id>m-[0-9a-f]{32})(?:/(?P<rest>.*))?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<rest>.*))?$")
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
PROMPT_TAG = "mlflow.prompt.is_prompt"
DEFAULT_VERSION_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")
# The mlflow client appends this to every registered-model search; in MLflow `!=` on
# a tag also matches models without the tag, so it is applied here, after the store.
_NOT_PROMPT = re.compile(r"\s*(?:\bAND\s+)?tags?\.[`\"]?mlflow\.prompt\.is_prompt[`\"]?\s*"
                         r"!=\s*'true'\s*", re.I)


def split_prompt_filter(text: str) -> tuple[str, bool]:
    """Remove the client's "not a prompt" clause; True if it was there. Only then is an
    `AND` left dangling at either end removed: one the caller wrote stays, and the
    filter's parser refuses it (as /api/v1 does)."""
    out, n = _NOT_PROMPT.subn(" ", text)
    if not n:
        return text.strip(), False
    out = re.sub(r"^\s*AND\s+|\s+AND\s*$", "", out.strip(), flags=re.I)
    return out.strip(), True


_NO_MODEL = re.compile(r"^registered model (?P<name>'.*'|\".*\") does not exist")
_NO_VERSION = re.compile(r"^model (?P<name>'.*'|\".*\") has no version (?P<v>\S+)$")
_NO_ALIAS = re.compile(r"^registered model (?:'.*'|\".*\") has no alias (?P<alias>'.*'|\".*\")")
_DUPLICATE = re.compile(r"^a registered model named (?P<name>'.*'|\".*\") already exists")


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def mlflow_wording(e: MetricflowError) -> MetricflowError:
    """The store's registry errors in MLflow's words, which its clients match on."""
    msg = e.message
    if isinstance(e, NotFound):
        if m := _NO_MODEL.match(msg):
            return NotFound(f"Registered Model with name={_unquote(m['name'])} not found",
                            **e.details)
        if m := _NO_VERSION.match(msg):
            return NotFound(f"Model Version (name={_unquote(m['name'])}, version={m['v']}) "
                            "not found", **e.details)
        if m := _NO_ALIAS.match(msg):
            return NotFound(f"Registered model alias {_unquote(m['alias'])} not found.",
                            **e.details)
    if isinstance(e, AlreadyExists) and (m := _DUPLICATE.match(msg)):
        return AlreadyExists(f"Registered Model (name={_unquote(m['name'])}) already exists.",
                             **e.details)
    return e


class _Worded:
    """`Compat.call` whose registry errors carry MLflow's wording."""

    def __init__(self, c: Compat) -> None:
        self._c = c

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._c.call(fn, *args, **kwargs)
        except (NotFound, AlreadyExists) as e:
            raise mlflow_wording(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


def _max_results(a: Args, default: int, limit: int) -> int:
    n = a.integer("max_results", default)
    assert n is not None
    if not 0 < n <= limit:
        bound = f"at most {limit}" if n > limit else f"at least 1 (and at most {limit})"
        raise InvalidArgument(f"Invalid value {n} for parameter 'max_results' supplied. It "
                              f"must be {bound}, but got value {n}",
                              field="max_results", limit=limit, received=n)
    return n


class RegistryRoutes:
    """Handlers of /mlflow/registered-models/* and /mlflow/model-versions/*."""

    def __init__(self, c: Compat) -> None:
        self.c: Any = _Worded(c)
        self.m = c.metadata

    # ------------------------------------------------------ registered models
    async def _rm(self, name: str) -> dict[str, Any]:
        return {"registered_model": registered_model_json(
            await self.c.call(self.m.get_registered_model, name))}

    async def create_model(self, a: Args) -> dict[str, Any]:
        _refuse_prompt(a)
        name = check_length(a.required("name"), "name", MAX_MODEL_NAME)
        rm = await self.c.call(self.m.create_registered_model, name,
                               dict(a.kv_list("tags")) or None, a.text("description"),
                               actor=caller())
        return {"registered_model": registered_model_json(rm)}

    async def get_model(self, a: Args) -> dict[str, Any]:
        return await self._rm(a.required("name"))

    async def rename_model(self, a: Args) -> dict[str, Any]:
        new_name = check_length(a.required("new_name"), "new_name", MAX_MODEL_NAME)
        rm = await self.c.call(self.m.rename_registered_model, a.required("name"),
                               new_name, actor=caller())
        return {"registered_model": registered_model_json(rm)}

    async def update_model(self, a: Args) -> dict[str, Any]:
        rm = await self.c.call(self.m.update_registered_model, a.required("name"),
                               a.text("description"), actor=caller())
        return {"registered_model": registered_model_json(rm)}

    async def delete_model(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.delete_registered_model, a.required("name"), actor=caller())
        return {}

    async def search_models(self, a: Args) -> dict[str, Any]:
        text, no_prompts = split_prompt_filter(a.text("filter"))
        rms, token = await self.c.call(
            self.m.search_registered_models, text, _max_results(a, 100, 1000),
            [str(o) for o in a.items("order_by")], a.text("page_token") or None)
        if no_prompts:
            rms = [r for r in rms if r.tags.get(PROMPT_TAG) != "true"]
        out: dict[str, Any] = {}
        if rms:
            out["registered_models"] = [registered_model_json(r) for r in rms]
        if token:
            out["next_page_token"] = token
        return out

    async def latest_versions(self, a: Args) -> dict[str, Any]:
        mvs = await self.c.call(self.m.get_latest_versions, a.required("name"),
                                [str(s) for s in a.items("stages")])
        return {"model_versions": [model_version_json(v, False) for v in mvs]} if mvs else {}

    async def set_model_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.set_registered_model_tag, a.required("name"),
                          a.required("key"), string_arg(a, "value"), actor=caller())
        return {}

    async def delete_model_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.delete_registered_model_tag, a.required("name"),
                          a.required("key"), actor=caller())
        return {}

    async def set_alias(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.set_registered_model_alias, a.required("name"),
                          a.required("alias"), a.required("version"), actor=caller())
        return {}

    async def delete_alias(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.delete_registered_model_alias, a.required("name"),
                          a.required("alias"), actor=caller())
        return {}

    async def get_by_alias(self, a: Args) -> dict[str, Any]:
        name, alias = a.required("name"), a.required("alias")
        await self.c.call(self.m.get_registered_model, name)  # 404 for a missing model
        try:
            mv = await self.c.call(self.m.get_model_version_by_alias, name, alias)
        except NotFound:  # MLflow: a missing alias of an existing model is 400
            raise InvalidArgument(f"Registered model alias {alias} not found.", field="alias",
                                  received=alias) from None
        return {"model_version": model_version_json(mv)}

    # --------------------------------------------------------- model versions
    async def create_version(self, a: Args) -> dict[str, Any]:
        _refuse_prompt(a)
        name, source = a.required("name"), a.required("source")
        run_id = a.text("run_id")
        model_id = a.text("model_id")
        # Before anything of the source is read (a logged model's run, below): a source
        # in this server must be readable by the creator (registry/_sources.py).
        await self.c.call(check_new_source, source, model_id, run_id)
        m = _LOGGED_MODEL_URI.match(source)
        if m and not model_id:
            model_id = m.group("id")
        if model_id:
            doc = await self.c.call(self.c.docs.get_model, model_id)
            run_id = run_id or doc.get("source_run_id", "")
        mv = await self.c.call(self.m.create_model_version, name, source, run_id or None,
                               dict(a.kv_list("tags")) or None, a.text("description"),
                               a.text("run_link"), actor=caller())
        if mv.source.startswith("models:/") and not m:
            await self.c.call(self._note_storage_location, mv)
        if model_id:
            await self.c.call(self._note_version_on_model, model_id, mv.name, mv.version)
        return {"model_version": model_version_json(mv)}

    @staticmethod
    def _location_key(name: str, version: str) -> str:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return f"mlflow-compat/model-version-locations/{digest}/{version}.json"

    def _note_storage_location(self, mv: Any) -> None:
        """Remember where a version registered from `models:/SRC/<v>` keeps its files (the
        first source down the chain that is not another registered version), as MLflow
        stores a storage location: the version stays loadable if SRC is deleted."""
        source, seen = mv.source, 0
        while source.startswith("models:/") and not _LOGGED_MODEL_URI.match(source) \
                and seen < 10:
            try:
                source = self.m.resolve_model_uri(source).source
            except (InvalidArgument, NotFound):
                return
            seen += 1
        self.c.docs.put(self._location_key(mv.name, str(mv.version)),
                        {"name": mv.name, "version": str(mv.version), "source": source})

    def _note_version_on_model(self, model_id: str, name: str, version: str) -> None:
        """The logged model lists the registry versions made from it (MLflow's tag)."""
        def add(doc: dict[str, Any] | None) -> dict[str, Any]:
            assert doc is not None
            tags = doc.setdefault("tags", {})
            versions = json.loads(tags.get(MODEL_VERSIONS_TAG, "[]"))
            versions.append({"name": name, "version": int(version)})
            tags[MODEL_VERSIONS_TAG] = json.dumps(versions)
            doc["last_updated_timestamp_ms"] = int(time.time() * 1000)
            return doc

        self.c.docs.update(self.c.docs.model_key(model_id), add)

    async def get_version(self, a: Args) -> dict[str, Any]:
        name, version = a.required("name"), a.required("version")
        if str(version).lstrip("-").isdigit() and int(version) < 1:  # MLflow: 404, not 400
            await self.c.call(self.m.get_registered_model, name)
            raise NotFound(f"Model Version (name={name}, version={version}) not found",
                           field="version", received=str(version))
        mv = await self.c.call(self.m.get_model_version, name, version)
        return {"model_version": model_version_json(mv)}

    async def update_version(self, a: Args) -> dict[str, Any]:
        mv = await self.c.call(self.m.update_model_version, a.required("name"),
                               a.required("version"), a.text("description"), actor=caller())
        return {"model_version": model_version_json(mv)}

    async def delete_version(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.delete_model_version, a.required("name"),
                          a.required("version"), actor=caller())
        return {}

    async def transition(self, a: Args) -> dict[str, Any]:
        mv = await self.c.call(self.m.transition_model_version_stage, a.required("name"),
                               a.required("version"), a.required("stage"),
                               a.flag("archive_existing_versions"), actor=caller())
        return {"model_version": model_version_json(mv)}

    async def search_versions(self, a: Args) -> dict[str, Any]:
        order = [str(o) for o in a.items("order_by")] or list(DEFAULT_VERSION_ORDER)
        mvs, token = await self.c.call(
            self.m.search_model_versions, a.text("filter"), _max_results(a, 10_000, 200_000),
            order, a.text("page_token") or None)
        out: dict[str, Any] = {}
        if mvs:
            out["model_versions"] = [model_version_json(v, False) for v in mvs]
        if token:
            out["next_page_token"] = token
        return out

    def download_uri(self, name: str, version: str, depth: int = 0) -> str:
        """Where the version's files are, as a URI the MLflow client can read.

        Resolved now, when the files are about to be read: a source into this server
        whose run or logged model holds nothing at that path answers NotFound saying
        so. A `runs:/` source naming no run of this server is handed back as it is,
        and a `models:/` source resolves to that version's location (as MLflow).
        """
        return self._uri_of(self.m.get_model_version(name, version), depth)

    def _uri_of(self, mv: Any, depth: int) -> str:
        check_source_readable(mv.source)  # again for the reader (docs/registry.md)
        scheme = host_addressed_scheme(mv.source)
        if scheme is not None:  # registered before such sources were refused
            raise InvalidArgument(
                f"Model version {mv.name} version {mv.version}: its source uses the "
                f"'{scheme}' scheme, which addresses a host other than this server's artifact "
                "storage; this server does not hand it to clients (their credentials would "
                "be sent to that host). Register the model again from a runs:/, models:/, "
                "mlflow-artifacts:/ or object-store source", field="source",
                received=mv.source[:300])
        m = _LOGGED_MODEL_URI.match(mv.source)
        if m:
            doc = self.c.docs.get_model(m.group("id"))
            rest = (m.group("rest") or "").strip("/")
            self._require_files(mv, doc["model_id"], rest)
            return self.c.model_artifact_uri(doc) + (f"/{rest}" if rest else "")
        r = _RUNS_URI.match(mv.source)
        if r:
            try:
                info = self.c.run_info(r.group("run"))
            except NotFound:
                return mv.source
            rest = (r.group("rest") or "").strip("/")
            self._require_files(mv, info.run_id, rest)
            base = self.c.run_artifact_uri(info)
            return base + (f"/{rest}" if rest else "")
        if mv.source.startswith("runs:/"):
            return mv.source  # not a run id of this server
        if mv.source.startswith("models:/") and depth < 10:
            try:
                target = self.m.resolve_model_uri(mv.source)
            except (InvalidArgument, NotFound):
                # the source version is gone: its files are where they were at registration
                doc = self.c.docs.get(self._location_key(mv.name, str(mv.version)))
                if doc is None or str(doc.get("source", "")).startswith("models:/"):
                    return mv.source
                return self._uri_of(dataclasses.replace(mv, source=str(doc["source"])),
                                    depth + 1)
            return self.download_uri(target.name, target.version, depth + 1)
        return mv.source

    def _require_files(self, mv: Any, owner: str, rel: str) -> None:
        """NotFound naming the version, source and owner when nothing is stored there."""
        store = self.c.artifacts
        try:
            if store.list_artifacts(owner, rel or None):
                return
        except (NotFound, InvalidArgument):
            pass
        if rel:
            try:
                store.get_manifest(owner, rel)
                return
            except (NotFound, InvalidArgument):
                pass
        kind = "logged model" if owner.startswith("m-") else "run"
        raise NotFound(f"Model version {mv.name} version {mv.version}: its source "
                       f"{mv.source!r} has no files: nothing was uploaded to {kind} {owner} "
                       f"at {rel or '/'!r} (yet). Upload the model's files there first (a "
                       "version can be registered before its files are uploaded)",
                       field="source", received=mv.source)

    async def get_download_uri(self, a: Args) -> dict[str, Any]:
        uri = await self.c.call(self.download_uri, a.required("name"), a.required("version"))
        return {"artifact_uri": uri}

    async def set_version_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.set_model_version_tag, a.required("name"),
                          a.required("version"), a.required("key"), string_arg(a, "value"),
                          actor=caller())
        return {}

    async def delete_version_tag(self, a: Args) -> dict[str, Any]:
        await self.c.call(self.m.delete_model_version_tag, a.required("name"),
                          a.required("version"), a.required("key"), actor=caller())
        return {}


def add_routes(routes: MlflowRoutes, c: Compat) -> None:
    h = RegistryRoutes(c)
    rm, mv = "/registered-models", "/model-versions"
    for method, path, fn in (
        ("POST", f"{rm}/create", h.create_model), ("GET", f"{rm}/get", h.get_model),
        ("POST", f"{rm}/rename", h.rename_model), ("PATCH", f"{rm}/update", h.update_model),
        ("DELETE", f"{rm}/delete", h.delete_model), ("GET", f"{rm}/search", h.search_models),
        (["POST", "GET"], f"{rm}/get-latest-versions", h.latest_versions),
        ("POST", f"{rm}/set-tag", h.set_model_tag),
        ("DELETE", f"{rm}/delete-tag", h.delete_model_tag),
        ("POST", f"{rm}/alias", h.set_alias), ("DELETE", f"{rm}/alias", h.delete_alias),
        ("GET", f"{rm}/alias", h.get_by_alias),
        ("POST", f"{mv}/create", h.create_version), ("GET", f"{mv}/get", h.get_version),
        ("PATCH", f"{mv}/update", h.update_version),
        ("DELETE", f"{mv}/delete", h.delete_version),
        ("POST", f"{mv}/transition-stage", h.transition),
        ("GET", f"{mv}/search", h.search_versions),
        ("GET", f"{mv}/get-download-uri", h.get_download_uri),
        ("POST", f"{mv}/set-tag", h.set_version_tag),
        ("DELETE", f"{mv}/delete-tag", h.delete_version_tag),
    ):
        routes.add(method, path, fn)
