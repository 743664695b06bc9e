"""Authorizer: does a principal hold the permissions a request needs?

MLflow's model: READ < EDIT < MANAGE per experiment and per registered model;
admins may do anything; a user without a grant has the default permission;
runs inherit their experiment's permission; creators get MANAGE. A token's
scopes cap all of it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig, Permission, Principal
from metricflow.entities import DEFAULT_EXPERIMENT_ID
from metricflow.errors import InvalidArgument, NotFound, PermissionDenied
from metricflow.store.metadata import check_experiment_id

RunExperiments = Callable[[list[str]], dict[str, str]]
"""`run ids -> {run_id: experiment_id}` for the runs that exist (the data plane)."""


@dataclass(frozen=True)
class Need:
    """One permission a request needs.

    kind: "any" (any authenticated caller whose scopes reach `level`), "admin",
    "experiment", "run", "model", "user" (the named user themself, or an admin),
    or "token" (the token's owner, or an admin).
    """

    kind: str
    ident: str = ""
    level: Permission = Permission.READ
    by_name: str = ""
    """The name the caller looked the object up by (errors never show the id it maps to)."""
    asked: tuple[str, str] | None = None
    """(kind, ident) of what the caller asked for, when what is checked is another thing
    (an approval request's model, or an admin for a deleted model's request): a failed
    check answers that the asked one does not exist, naming neither."""


def absent(n: Need) -> NotFound:
    """The error for an object that does not exist, worded as the stores word it."""
    if n.asked is not None:
        return absent(Need(*n.asked))
    if n.by_name and n.kind == "model":  # a deployment's model, asked for by deployment name
        return NotFound(f"deployment {n.by_name!r} does not exist", field="name",
                        received=n.by_name)
    if n.by_name:
        return NotFound(f"Could not find experiment with name {n.by_name!r}",
                        field="experiment_name", received=n.by_name)
    if n.kind == "run":
        return NotFound(f"run {n.ident!r} does not exist", field="run_id")
    if n.kind == "experiment":  # as store.metadata's experiments say it
        return NotFound(f"experiment id {n.ident!r} does not exist", field="experiment_id",
                        received=n.ident)
    if n.kind == "model":  # as store.metadata's registry says it
        return NotFound(f"registered model {n.ident!r} does not exist", field="name",
                        received=n.ident)
    if n.kind == "token":  # as AuthStore.get_token says it
        return NotFound(f"token {n.ident!r} does not exist", field="token_id")
    if n.kind == "approval_request":
        return NotFound(f"approval request {n.ident} does not exist", field="request_id",
                        received=n.ident)
    return NotFound(f"{n.kind} {n.ident!r} does not exist", field=n.kind)


class _RunCache:
    """run_id -> experiment_id; a run never changes experiment, so entries never go stale."""

    def __init__(self, max_size: int = 200_000) -> None:
        self._d: OrderedDict[str, str] = OrderedDict()
        self._max = max_size
        self._lock = threading.Lock()

    def get(self, run_id: str) -> str | None:
        with self._lock:
            exp = self._d.get(run_id)
            if exp is not None:
                self._d.move_to_end(run_id)
            return exp

    def put(self, run_id: str, experiment_id: str) -> None:
        with self._lock:
            self._d[run_id] = experiment_id
            if len(self._d) > self._max:
                self._d.popitem(last=False)


class Authorizer:
    """Permission decisions over an AuthStore (grants) and the data plane (run owners)."""

    def __init__(self, store: AuthStore, config: AuthConfig,
                 run_experiments: RunExperiments, *, run_wait_s: float = 0.0) -> None:
        """Args:
            run_experiments: the data plane's run owners, as they are right now.
            run_wait_s: how long a run the data plane does not show is looked up again
                (every 0.25 s) before it counts as missing: on the Kafka write path a run
                created a moment ago (on another node) may not be in ClickHouse yet.
        """
        self.store, self.config = store, config
        self.run_wait_s = run_wait_s
        self.lookup_now: RunExperiments = run_experiments
        """Run owners without waiting for the data plane to catch up (existence checks)."""
        self.runs = _RunCache()
        self.sees_all_runs = True
        """False on a node without the data plane: it knows only runs created through it,
        so it cannot tell whether a client-chosen run id is new."""
        self.owners: dict[str, Callable[[str], str | None]] = {}
        """Other kinds that inherit an experiment's permission (e.g. "logged_model" ->
        its experiment id, registered by the MLflow front end); None = does not exist."""

    # ------------------------------------------------------------ runs
    def experiments_of_runs(self, run_ids: Iterable[str]) -> dict[str, str]:
        """Experiment of each known run (cached; misses are fetched in one call)."""
        return self._owners(run_ids)[0]

    def _owners(self, run_ids: Iterable[str]) -> tuple[dict[str, str], set[str]]:
        """`experiments_of_runs`, and the run ids it had to look up in the data plane."""
        out: dict[str, str] = {}
        missing: list[str] = []
        for r in run_ids:
            exp = self.runs.get(r)
            if exp is None:
                missing.append(r)
            else:
                out[r] = exp
        if missing:
            for r, exp in self._run_experiments(missing).items():
                self.runs.put(r, exp)
                out[r] = exp
        return out, set(missing)

    def _run_experiments(self, run_ids: list[str], looked_up: bool = False
                         ) -> dict[str, str]:
        """Run owners, asking again for up to `run_wait_s` while some are not shown.

        `looked_up`: the caller already made the first lookup, and it showed nothing.
        """
        deadline = time.monotonic() + self.run_wait_s
        out = {} if looked_up else self.lookup_now(run_ids)
        while len(out) < len(set(run_ids)) and time.monotonic() < deadline:
            time.sleep(0.25)  # in a worker thread (the Guard authorizes off the loop)
            out.update(self.lookup_now([r for r in run_ids if r not in out]))
        return out

    def remember_run(self, run_id: str, experiment_id: str) -> None:
        """Record the owner of a run this process just created (before the data plane shows it).

        First owner wins: a run never changes experiment, so a later create that reuses
        a run id cannot move the run into an experiment the caller controls.
        """
        if run_id and experiment_id and self.runs.get(run_id) is None:
            self.runs.put(run_id, experiment_id)

    def run_exists(self, run_id: str) -> bool:
        """True if the run is known here or in the data plane right now."""
        return self.runs.get(run_id) is not None or bool(self.lookup_now([run_id]))

    # ------------------------------------------------------------ decisions
    def experiment_level(self, p: Principal, experiment_id: str) -> Permission:
        if p.admin:
            return Permission.MANAGE
        if not experiment_id:
            raise InvalidArgument("experiment_id is required", field="experiment_id")
        # Malformed and out-of-range ids are refused as the store refuses them (400).
        grant = self.store.experiment_permission(p.user, check_experiment_id(experiment_id))
        return grant if grant is not None else self.config.default

    def model_level(self, p: Principal, name: str) -> Permission:
        if p.admin:
            return Permission.MANAGE
        _, grant = self.store.model_permission(p.user, name)
        return grant if grant is not None else self.config.default

    def check(self, p: Principal, needs: list[Need]) -> None:
        """Raise PermissionDenied (or NotFound for unknown runs) unless every need is met."""
        for n in needs:
            if n.level > p.ceiling:
                raise PermissionDenied(
                    f"the credential's scopes ({','.join(p.scopes)}) do not allow "
                    f"{n.level.name} operations", field="scopes")
        run_ids = [n.ident for n in needs if n.kind == "run"]
        owners, fetched = self._owners(run_ids) if run_ids and not p.admin else ({}, set())
        for n in needs:
            self._check_one(p, n, owners, fetched)

    def _check_one(self, p: Principal, n: Need, owners: dict[str, str],
                   fetched: set[str]) -> None:
        if n.kind == "any" or p.admin:
            return
        if n.kind == "admin":  # ident, when set, says why (e.g. what a non-admin must send)
            if n.asked is not None:
                raise absent(n)
            raise PermissionDenied(f"this operation needs an admin{': ' if n.ident else ''}"
                                   f"{n.ident}", field="user")
        if n.kind == "user":
            if n.ident != p.user:
                raise PermissionDenied(f"only {n.ident!r} or an admin may do this",
                                       field="username")
            return
        if n.kind == "token":
            # Another user's token is answered as a missing one (same status, same
            # message, one lookup either way): a 403 would tell which token ids exist.
            try:
                owner: str | None = self.store.get_token(n.ident).username
            except NotFound:
                owner = None
            if owner != p.user:
                raise absent(n)
            return
        # Objects looked up by id: one the caller may not READ is answered exactly as
        # one that does not exist (same status, same message), so ids cannot be probed
        # and errors never name an experiment the caller cannot see (docs/security.md).
        exp: str | None
        if n.kind == "run":
            exp = owners.get(n.ident)
            what = f"experiment {exp} (run {n.ident})"
        elif n.kind == "experiment":
            exp = check_experiment_id(n.ident)
            if not self.store.experiment_exists(exp):
                exp = None
            what = f"experiment {n.ident}"
        elif n.kind in self.owners:
            exp = self.owners[n.kind](n.ident)
            what = f"experiment {exp} ({n.kind} {n.ident})"
        elif n.kind == "model":
            exists, grant = self.store.model_permission(p.user, n.ident)
            have = grant if grant is not None else self.config.default
            if not exists or have < Permission.READ:
                raise absent(n)
            self._enough(p, n, have, f"registered model {n.ident!r}")
            return
        else:  # an unknown kind is a policy bug: fail closed
            raise PermissionDenied(f"no permission rule for {n.kind!r}")
        # A hidden object and a missing one also cost the same (re-review item 2): each
        # refusal makes one grant query and, for a run, one data-plane lookup (with the
        # wait for a lagging writer), wherever the run's owner came from.
        if exp is None:
            self.experiment_level(p, DEFAULT_EXPERIMENT_ID)  # the grant query of a hidden one
            raise absent(n)
        have = self.experiment_level(p, exp)
        if have < Permission.READ:
            if n.kind == "run":
                # Make the lookups a missing run makes (the first one is done if the
                # owner was not cached), for an id that names no run (a fresh random
                # one), and drop the answer.
                self._run_experiments([uuid.uuid4().hex], looked_up=n.ident in fetched)
            raise absent(n)
        self._enough(p, n, have, what)

    @staticmethod
    def _enough(p: Principal, n: Need, have: Permission, what: str) -> None:
        if have < n.level:  # the caller can read it: saying so reveals nothing
            raise PermissionDenied(
                f"user {p.user!r} has {have.name} on {what}; this needs {n.level.name}",
                field="permission")

    def readable_experiments(self, p: Principal) -> frozenset[str] | None:
        """Experiments `p` may read, for filtering searches in SQL (None = all: admin)."""
        if p.admin:
            return None
        if p.ceiling < Permission.READ:
            return frozenset()
        return self.store.readable_experiment_ids(p.user, self.config.default)

    def readable_models(self, p: Principal) -> frozenset[int] | None:
        """Surrogate ids of the registered models `p` may read (None = all)."""
        if p.admin:
            return None
        return self.store.readable_model_ids(p.user, self.config.default)

    # ------------------------------------------------------------ creators
    def grant_creator(self, p: Principal, kind: str, ident: str) -> None:
        """The creator of an experiment or model gets MANAGE on it (MLflow semantics)."""
        if not p.user or self.store.principal_of_user(p.user) is None:
            return
        if kind == "experiment":
            self.store.set_experiment_permission(ident, p.user, Permission.MANAGE,
                                                 actor=p.user)
        elif kind == "model":
            self.store.set_model_permission(ident, p.user, Permission.MANAGE, actor=p.user)
