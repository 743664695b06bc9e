"""Search filtering by what the caller may read, and creator grants.

(Run searches: `metricflow.query.ScopedQueryCore`, inside the SQL.)
`ScopedMetadataStore` does the same for experiment/model/version searches, which
have no SQL hook yet: it filters
each fetched page and fetches again for exactly the missing count, so no row
is skipped or repeated across pages (a page may come back short, with a token).
It also grants MANAGE to the creator of an experiment or model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from metricflow.auth._context import current
from metricflow.auth._types import Permission

log = logging.getLogger(__name__)
T = TypeVar("T")
_MAX_ROUNDS = 20


def _refill(fetch: Callable[[int, str | None], tuple[list[T], str | None]],
            keep: Callable[[list[T]], list[T]], max_results: int, token: str | None
            ) -> tuple[list[T], str | None]:
    out: list[T] = []
    for _ in range(_MAX_ROUNDS):
        page, token = fetch(max_results - len(out), token)
        out.extend(keep(page))
        if token is None or len(out) >= max_results:
            break
    return out, token


class ScopedMetadataStore:
    """A MetadataStore view for request handlers; every other call passes through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # ------------------------------------------------------------ lookups
    def get_experiment_by_name(self, name: str) -> Any:
        """The experiment named `name` if the caller may READ it; None otherwise.

        A hidden name is thus answered exactly as a missing one on every surface
        (re-review item 3): the policy lets any reader ask, and this view decides.
        """
        e = self._inner.get_experiment_by_name(name)
        cur = current()
        if e is None or cur is None:
            return None
        p, authz = cur
        if p.ceiling < Permission.READ or authz.experiment_level(p, e.experiment_id) < \
                Permission.READ:
            return None
        return e

    # ------------------------------------------------------------ searches
    def search_experiments(self, filter_string: str = "", view_type: str = "active",
                           max_results: int = 1000, order_by: Sequence[str] = (),
                           page_token: str | None = None) -> tuple[list[Any], str | None]:
        cur = current()
        fetch = (lambda n, t: self._inner.search_experiments(  # noqa: E731
            filter_string, view_type, n, order_by, t))
        readable = frozenset() if cur is None else cur[1].readable_experiments(cur[0])
        if readable is None:
            return fetch(max_results, page_token)  # type: ignore[no-any-return]
        return _refill(fetch, lambda page: [e for e in page if e.experiment_id in readable],
                       max_results, page_token)

    def _model_keep(self) -> Callable[[list[Any]], list[Any]] | None:
        cur = current()
        ids = frozenset() if cur is None else cur[1].readable_models(cur[0])
        if ids is None:
            return None

        def keep(page: list[Any]) -> list[Any]:
            by_name = cur[1].store.model_names_to_ids(sorted({x.name for x in page})) \
                if cur is not None and page else {}
            return [x for x in page if by_name.get(x.name) in ids]
        return keep

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] = (), page_token: str | None = None
                                 ) -> tuple[list[Any], str | None]:
        fetch = (lambda n, t: self._inner.search_registered_models(  # noqa: E731
            filter_string, n, order_by, t))
        keep = self._model_keep()
        if keep is None:
            return fetch(max_results, page_token)  # type: ignore[no-any-return]
        return _refill(fetch, keep, max_results, page_token)

    def search_model_versions(self, filter_string: str = "", max_results: int = 1000,
                              order_by: Sequence[str] = (), page_token: str | None = None
                              ) -> tuple[list[Any], str | None]:
        fetch = (lambda n, t: self._inner.search_model_versions(  # noqa: E731
            filter_string, n, order_by, t))
        keep = self._model_keep()
        if keep is None:
            return fetch(max_results, page_token)  # type: ignore[no-any-return]
        return _refill(fetch, keep, max_results, page_token)

    # ------------------------------------------------------------ histories
    def search_audit_log(self, *, model_name: str | None = None, **kw: Any
                         ) -> tuple[list[Any], str | None]:
        """A non-admin's search by model name matches only the model that has the name
        now (their permission was checked on it), not a model renamed away or deleted
        that once had it (someone else's history)."""
        cur = current()
        only = model_name is not None and (cur is None or not cur[0].admin)
        return self._inner.search_audit_log(  # type: ignore[no-any-return]
            model_name=model_name, current_model_only=only, **kw)

    def deployment_history(self, name: str, max_results: int = 1000) -> list[Any]:
        """A non-admin sees the entries about models they may MANAGE (the history's
        permission), not those of an earlier deployment of that name on another model."""
        cur = current()
        if cur is not None and cur[0].admin:
            return self._inner.deployment_history(name, max_results)  # type: ignore[no-any-return]
        ids: frozenset[int] = frozenset()
        if cur is not None and cur[0].ceiling >= Permission.MANAGE:
            ids = cur[1].store.model_ids_at_least(cur[0].user, cur[1].config.default,
                                                  Permission.MANAGE)
        return self._inner.deployment_history(  # type: ignore[no-any-return]
            name, max_results, model_ids=ids)

    # ------------------------------------------------------------ creators get MANAGE
    def create_experiment(self, name: str, *args: Any, **kw: Any) -> str:
        eid = self._inner.create_experiment(name, *args, **kw)
        self._grant("experiment", str(eid))
        return str(eid)

    def get_or_create_experiment(self, name: str, *, actor: str | None = None) -> Any:
        exp = self._inner.get_or_create_experiment(name, actor=actor)
        cur = current()
        if cur is not None and cur[0].user:
            # Only the caller whose transaction created it (per the audit log) gets MANAGE.
            entries, _ = self._inner.search_audit_log(
                experiment_id=exp.experiment_id, action="create_experiment", max_results=1)
            if entries and entries[0].actor == cur[0].user:
                self._grant("experiment", exp.experiment_id)
        return exp

    def create_registered_model(self, name: str, *args: Any, **kw: Any) -> Any:
        m = self._inner.create_registered_model(name, *args, **kw)
        self._grant("model", m.name)
        return m

    def _grant(self, kind: str, ident: str) -> None:
        cur = current()
        if cur is None:
            return
        try:
            cur[1].grant_creator(cur[0], kind, ident)
        except Exception:  # the object exists; an admin can grant by hand
            log.exception("could not grant MANAGE on %s %s to its creator", kind, ident)
