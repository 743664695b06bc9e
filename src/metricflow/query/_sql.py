"""Compile parsed filters and sort terms into bound-parameter ClickHouse SQL.

User text only ever reaches ClickHouse as a bound parameter (`{p3:String}`);
table and column names come from the whitelists below. Every leaf of the filter
becomes a set of run keys (`rk IN (SELECT rk FROM search_* FINAL WHERE ...)`),
or a plain predicate when it reads the table that drives the query, so AND/OR
and parentheses keep their meaning whatever mix of metrics, params, tags and
attributes they combine.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from metricflow.query._grammar import BoolOp, Comparison, Field, Node
from metricflow.store import rk_of

_T = TypeVar("_T")

ATTRIBUTE_COLUMNS = {"run_id": "run_id", "run_name": "run_name", "status": "status",
                     "user_id": "user_id", "experiment_id": "experiment_id",
                     "lifecycle_stage": "lifecycle_stage", "start_time": "start_time",
                     "end_time": "end_time"}
LONG_LIST = 1000
"""IN lists longer than this (and without commas in their values) are bound as one
comma-joined string."""
_SQL_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<=",
            "LIKE": "LIKE", "ILIKE": "ILIKE", "NOT LIKE": "NOT LIKE", "NOT ILIKE": "NOT ILIKE",
            "IN": "IN", "NOT IN": "NOT IN"}


@dataclass
class Binder:
    """Collects bound parameters; `bind` returns the placeholder text."""

    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, ch_type: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + ":" + ch_type + "}"


@dataclass(frozen=True)
class Scope:
    """Which runs a search may see, before the user's filter.

    Attributes:
        experiment_ids: restrict to these experiments; None = every experiment.
        view_type: active, deleted or all (run lifecycle).
        hidden_experiments: deleted experiments; their runs count as deleted
            ("runs follow their experiment").
        readable_experiments: authorization hook (issue 7): when set, only runs
            of these experiments are visible, applied inside the SQL.
    """

    experiment_ids: tuple[str, ...] | None = None
    view_type: str = "active"
    hidden_experiments: frozenset[str] = frozenset()
    readable_experiments: frozenset[str] | None = None


class SqlBuilder:
    """Builds the SQL pieces of one search over database `db`."""

    def __init__(self, db: str, binder: Binder) -> None:
        self.db = db
        self.b = binder
        self.leaf_restrict = ""
        """Extra predicate for leaf subqueries (a small scope set), so their sets stay small."""
        self.experiments: list[str] | None = None
        """When set, key rows are read only from these experiments' ranges (plus '')."""
        self.unfiled: frozenset[tuple[str, str]] = frozenset()
        """(kind, key)s with rows under experiment '' (see `unfiled_keys`)."""
        self.artifact_root: str | None = None
        """MLflow's `attributes.artifact_uri`: runs stored under this root (or with no
        URI) compare as `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`, the URI
        the MLflow API shows for them; others as stored."""

    def restrict(self, s: Scope) -> None:
        """Read key rows only from the experiments the scope can see, when it names them.

        Only an optimization: every caller also requires `rk` in the scope, and a
        run's key rows are filed under its experiment (or '' when the run was
        not known at insert time, which is always read too).
        """
        allowed: set[str] | None = None
        if s.experiment_ids is not None:
            allowed = set(s.experiment_ids)
        if s.readable_experiments is not None:
            allowed = (set(s.readable_experiments) if allowed is None
                       else allowed & set(s.readable_experiments))
        self.experiments = None if allowed is None else sorted(allowed | {""})

    # ------------------------------------------------------------- tables
    def keyed_table(self, kind: str) -> str:
        return {"metrics": f"{self.db}.search_metrics", "params": f"{self.db}.search_params",
                "tags": f"{self.db}.search_tags"}[kind]

    @staticmethod
    def value_expr(kind: str) -> str:
        return "last.3" if kind == "metrics" else "value"

    def key_rows(self, f: Field) -> str:
        """FROM/WHERE text selecting the rows of one metric/param/tag key."""
        where = f"key = {self.b.bind(f.key, 'String')}"
        if self.experiments is not None:
            where += f" AND experiment_id IN {self.b.bind(self.experiments, 'Array(String)')}"
        if (f.kind, f.key) in self.unfiled:
            # A run can have rows under '' and under its experiment: fold them per run
            # with the table's own winner rule (latest point; highest version).
            agg = {"metrics": "max(last) AS last",
                   "params": "argMax(value, version) AS value",
                   "tags": "argMax(value, version) AS value, argMax(deleted, version) AS deleted",
                   }[f.kind]
            rows = (f"(SELECT rk, {agg} FROM {self.keyed_table(f.kind)} WHERE {where} "
                    "GROUP BY rk)")
            return rows + (" WHERE deleted = 0" if f.kind == "tags" else " WHERE 1")
        if f.kind == "tags":
            where += " AND deleted = 0"
        return f"{self.keyed_table(f.kind)} FINAL WHERE {where}"

    def runs_table(self) -> str:
        return f"{self.db}.search_runs FINAL"

    # --------------------------------------------------------- predicates
    def compare(self, expr: str, op: str, value: Any, numeric_type: str) -> str:
        sql_op = _SQL_OPS[op]
        if op in ("IN", "NOT IN"):
            values = list(value)
            joined = ",".join(values)
            if len(values) > LONG_LIST and joined.count(",") == len(values) - 1:
                # A long list (e.g. the runs a datasets.* clause resolved to) as one
                # string: binding it element by element cost ~23 us per value in the
                # driver (100k run ids: 1.2 s vs 0.45 s this way, measured with chDB).
                return (f"{expr} {sql_op} (SELECT arrayJoin(splitByChar(',', "
                        f"{self.b.bind(joined, 'String')})))")
            return f"{expr} {sql_op} {self.b.bind(values, 'Array(String)')}"
        if isinstance(value, str):
            return f"{expr} {sql_op} {self.b.bind(value, 'String')}"
        return f"{expr} {sql_op} {self.b.bind(value, numeric_type)}"

    def leaf(self, c: Comparison, driver: Field | None) -> str:
        """SQL for one comparison; inline when it reads the driving table."""
        f = c.field
        if f.kind == "attributes" and f.key == "artifact_uri":
            pred = (f"run_id IN (SELECT run_id FROM {self.db}.runs FINAL WHERE "
                    f"{self.compare(self.artifact_uri_expr(), c.op, c.value, 'String')})")
            if driver is None:
                return pred
            return f"rk IN (SELECT rk FROM {self.runs_table()} WHERE {pred})"
        if f.kind == "attributes":
            col = ATTRIBUTE_COLUMNS[f.key]
            ntype = "Int64"
            pred = self.compare(col, c.op, c.value, ntype)
            if driver is None:  # the runs table drives: plain predicate
                return pred
            return f"rk IN (SELECT rk FROM {self.runs_table()} WHERE {pred})"
        extra = f" AND {self.leaf_restrict}" if self.leaf_restrict else ""
        if c.op in ("IS NULL", "IS NOT NULL"):  # params/tags: does the run have the key
            if driver == f:  # the key's own rows drive: every row has it
                return "1" if c.op == "IS NOT NULL" else "0"
            neg = "" if c.op == "IS NOT NULL" else "NOT "
            return f"rk {neg}IN (SELECT rk FROM {self.key_rows(f)}{extra})"
        pred = self.compare(self.value_expr(f.kind), c.op, c.value, "Float64")
        if driver == f:
            return pred
        return f"rk IN (SELECT rk FROM {self.key_rows(f)} AND {pred}{extra})"

    def pinned_runs(self, tree: Node | None) -> str | None:
        """An `rk` predicate implied by the filter's `attributes.run_id =` or `IN` (alone or
        in a top-level AND), else None.

        search_runs is ordered by (experiment_id, rk): run_id is no key column, so a
        run-id filter alone read every run of the scope (the run page's lookup of its
        run). The run key of the same text is a primary-key condition, and since every
        row's rk is computed from its run_id the same way, it drops no matching row.
        """
        nodes = ([tree] if isinstance(tree, Comparison) else list(tree.args)
                 if isinstance(tree, BoolOp) and tree.op == "AND" else [])
        for node in nodes:
            c = run_id_comparison(node)
            if c is None:
                continue
            if c.op == "=" and isinstance(c.value, str):
                return f"rk = {rk_of(self.b.bind(c.value, 'String'))}"
            if c.op == "IN" and isinstance(c.value, tuple) and len(c.value) <= LONG_LIST:
                ids = self.b.bind(list(c.value), "Array(String)")
                return f"rk IN (SELECT {rk_of(f'arrayJoin({ids})')})"
        return None

    def artifact_uri_expr(self) -> str:
        """A run's artifact URI as the MLflow API shows it (runs table columns)."""
        root = (self.artifact_root or "").rstrip("/")
        if not root:
            return "if(artifact_uri = '', concat('mlflow-artifacts:/', experiment_id, '/', " \
                "run_id, '/artifacts'), artifact_uri)"
        r, under = self.b.bind(root, "String"), self.b.bind(root + "/", "String")
        return (f"if(artifact_uri = '' OR artifact_uri = {r} OR startsWith(artifact_uri, "
                f"{under}), concat('mlflow-artifacts:/', experiment_id, '/', run_id, "
                "'/artifacts'), artifact_uri)")

    def tree(self, node: Node, driver: Field | None) -> str:
        if isinstance(node, Comparison):
            return self.leaf(node, driver)
        assert isinstance(node, BoolOp)
        joined = f" {node.op} ".join(f"({self.tree(a, driver)})" for a in node.args)
        return joined

    def scope(self, s: Scope) -> str:
        """Predicate on search_runs columns for the visibility scope ('1' if none)."""
        preds = []
        hidden = sorted(s.hidden_experiments)
        if s.view_type == "active":
            preds.append("lifecycle_stage = 'active'")
            if hidden:
                preds.append(f"experiment_id NOT IN {self.b.bind(hidden, 'Array(String)')}")
        elif s.view_type == "deleted":
            if hidden:
                preds.append(f"(lifecycle_stage = 'deleted' OR experiment_id IN "
                             f"{self.b.bind(hidden, 'Array(String)')})")
            else:
                preds.append("lifecycle_stage = 'deleted'")
        if s.experiment_ids is not None:
            preds.append(f"experiment_id IN "
                         f"{self.b.bind(list(s.experiment_ids), 'Array(String)')}")
        if s.readable_experiments is not None:
            preds.append(f"experiment_id IN "
                         f"{self.b.bind(sorted(s.readable_experiments), 'Array(String)')}")
        return " AND ".join(preds) or "1"

    def scope_as_set(self, s: Scope) -> str:
        """The scope as a run-key set predicate, for queries driven by a keyed table.

        Without an experiment list the visible set is nearly everything, so the
        complement (usually tiny: deleted runs, hidden experiments) is cheaper.
        """
        pred = self.scope(s)
        if pred == "1":
            return "1"
        if s.experiment_ids is None:
            return f"rk NOT IN (SELECT rk FROM {self.runs_table()} WHERE NOT ({pred}))"
        return f"rk IN (SELECT rk FROM {self.runs_table()} WHERE {pred})"


def run_id_comparison(node: Node | None) -> Comparison | None:
    """`node` when it compares `attributes.run_id`, else None."""
    if (isinstance(node, Comparison) and node.field.kind == "attributes"
            and node.field.key == "run_id"):
        return node
    return None


def write_generation(client: Any) -> int | None:
    """The store's write generation when this process is its only writer (what it read
    stays right until the generation changes), else None."""
    pool = getattr(client, "metricflow_pool", None)
    return pool.write_generation if pool is not None and pool.sole_writer else None


def generation_cached(client: Any, key: tuple[Any, ...], compute: Callable[[], _T],
                      cap: int = 1024) -> _T:
    """`compute()`, kept until the store's next write when this process is the store's
    only writer (the embedded server: `MetricStore.mark_sole_writer`), else computed
    every time. `key` names the answer; its first item is its family: at most `cap`
    answers of a family are kept (all dropped at once when it is full). The generation
    is read before `compute()`, so a write meanwhile makes the next call compute again.
    """
    gen = write_generation(client)
    if gen is None:
        return compute()
    pool = client.metricflow_pool
    cached = pool.read_cache.get(key)
    if cached is not None and cached[0] == gen:
        return cached[1]  # type: ignore[no-any-return]
    out = compute()
    # list(): a copy in one step, since other threads add entries meanwhile
    mine = [k for k in list(pool.read_cache) if isinstance(k, tuple) and k[:1] == key[:1]]
    if len(mine) >= cap:
        for k in mine:
            pool.read_cache.pop(k, None)
    pool.read_cache[key] = (gen, out)
    return out


KEEP_SCOPE_MAX = 1000
"""Answers of a caller who may read more than this many experiments (but not all) are
not kept: the key would hold the whole set."""
ANSWER_MAX_BYTES = 1 << 20
"""A kept answer is at most this large (larger ones are computed every time)."""
ANSWER_FAMILY_BYTES = 16 << 20
"""Each family of kept answers holds at most this many bytes (least recently used go)."""


def keepable(scope: Scope) -> bool:
    """May answers over `scope` be kept (`kept_answer`)? Not when its key would hold a
    large set of readable experiments."""
    r = scope.readable_experiments
    return r is None or len(r) <= KEEP_SCOPE_MAX


class _Answers:
    """Encoded answers by family, each a bounded LRU of (the write generation read before
    the answer was computed, the runs it read or None, bytes). An answer with runs is
    right while none of them was written since (`ClientPool.last_write`); one without,
    while the generation is unchanged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[Any, OrderedDict[tuple[Any, ...],
                                              tuple[int, frozenset[str] | None, bytes]]] = {}
        self._bytes: dict[Any, int] = {}

    def get(self, key: tuple[Any, ...], gen: int, pool: Any) -> bytes | None:
        with self._lock:
            fam = self._families.get(key[0])
            hit = fam.get(key) if fam is not None else None
            if hit is None:
                return None
            fam.move_to_end(key)  # type: ignore[union-attr]
        kept_at, runs, value = hit
        # (outside the lock: a pinned search names up to 200 run ids)
        if (kept_at == gen) if runs is None else (pool.last_write(runs) <= kept_at):
            return value
        with self._lock:  # written since: drop it (if it is still there)
            if fam.get(key) is hit:  # type: ignore[union-attr]
                self._bytes[key[0]] -= len(fam.pop(key)[2])  # type: ignore[union-attr]
        return None

    def put(self, key: tuple[Any, ...], gen: int, runs: frozenset[str] | None,
            value: bytes) -> None:
        if len(value) > ANSWER_MAX_BYTES:
            return
        with self._lock:
            fam = self._families.setdefault(key[0], OrderedDict())
            size = self._bytes.get(key[0], 0)
            # older generations' answers without runs are wrong now
            for k in [k for k, (g, r, _) in fam.items()
                      if k == key or (runs is None and r is None and g != gen)]:
                size -= len(fam.pop(k)[2])
            fam[key] = (gen, runs, value)
            size += len(value)
            while size > ANSWER_FAMILY_BYTES and len(fam) > 1:
                size -= len(fam.popitem(last=False)[1][2])
            self._bytes[key[0]] = size

    def size(self, family: Any) -> tuple[int, int]:
        """(answers, bytes) kept in `family`."""
        with self._lock:
            return len(self._families.get(family, ())), self._bytes.get(family, 0)


def kept_answer(client: Any, key: tuple[Any, ...],
                compute: Callable[[], tuple[bytes, bool]]) -> bytes:
    """The encoded answer `compute()` gives, kept until the store's next write when this
    process is the store's only writer (as `generation_cached`) and `compute()` says it
    may be (its second item: False when it used something read before the latest write).
    Bounded in bytes: an answer over ANSWER_MAX_BYTES is not kept, and each family
    (`key[0]`) keeps at most ANSWER_FAMILY_BYTES, least recently used dropped first.
    Storing an answer drops its family's answers of older generations."""
    def run() -> tuple[bytes, bool, frozenset[str] | None]:
        out, keep = compute()
        return out, keep, None

    return _kept(client, "answers", key, run)


def kept_run_answer(client: Any, key: tuple[Any, ...],
                    compute: Callable[[], tuple[bytes, Collection[str] | None]]) -> bytes:
    """As `kept_answer`, for an answer that depends on the rows of a few runs only:
    `compute()` gives the encoded answer and the runs whose rows it read (None: do not
    keep it). It is kept until a write to one of those runs (`ClientPool.last_write`),
    not until any write, so a chart stays kept while other runs log. Same bounds."""
    def run() -> tuple[bytes, bool, frozenset[str] | None]:
        out, runs = compute()
        return out, runs is not None, None if runs is None else frozenset(runs)

    return _kept(client, "run_answers", key, run)


def _kept(client: Any, store: str, key: tuple[Any, ...],
          compute: Callable[[], tuple[bytes, bool, frozenset[str] | None]]) -> bytes:
    gen = write_generation(client)
    if gen is None:
        return compute()[0]
    pool = client.metricflow_pool
    answers = pool.__dict__.setdefault(store, _Answers())  # (atomic)
    hit = answers.get(key, gen, pool)
    if hit is not None:
        return hit
    out, keep, runs = compute()
    if keep:
        answers.put(key, gen, runs, out)
    return out


def unfiled_keys(client: Any, db: str) -> frozenset[tuple[str, str]]:
    """(kind, key)s that have rows filed under experiment '' (normally none).

    Such rows come from points (params, tags) stored before their run was
    known to the inserting server, e.g. on another replica of a cluster. Views
    list them in search_unfiled as they are inserted (store/_schema_query.py).
    A store that only this process writes (embedded) keeps the answer until its next
    write: it was one query of every search (3-5 ms at 10k runs, ~15 % of a search).
    """
    def read() -> frozenset[tuple[str, str]]:
        rows = client.query(f"SELECT DISTINCT kind, key FROM {db}.search_unfiled").result_rows
        return frozenset((str(k), str(v)) for k, v in rows)

    return generation_cached(client, ("unfiled", db), read)


SCOPE_CHECK_CACHE = 1024
"""At most this many experiment sets' `scope_covers_experiments` answers are kept."""


def scope_covers_experiments(client: Any, db: str, s: Scope) -> bool:
    """Whether every run filed under the scope's experiments is visible in scope `s`.

    Then a search driven by a key's rows (filed under the run's experiment) needs no
    run-key set of the scope: reading the key's rows of those experiments is the scope.
    That set was read from search_runs FINAL, every run of the experiments, each search
    (3 ms at 10k runs; at 1M runs a million-key set, the larger part of the query).
    True for the `all` view; for `active`: no deleted run in the experiments and none
    of them deleted, which only a store this process alone writes can know without a
    query (cached per write generation); otherwise False (keep the set).
    """
    if s.experiment_ids is None or s.view_type == "deleted":
        return False
    if s.view_type == "all":
        return True
    exps = tuple(sorted(set(s.experiment_ids)))
    if set(exps) & s.hidden_experiments:
        return False
    pool = getattr(client, "metricflow_pool", None)
    if pool is None or not pool.sole_writer:
        return False

    def none_hidden() -> bool:
        n = client.query(f"SELECT count() FROM {db}.search_runs FINAL WHERE experiment_id "
                         "IN {e:Array(String)} AND lifecycle_stage != 'active' SETTINGS "
                         "do_not_merge_across_partitions_select_final = 1",
                         parameters={"e": list(exps)}).result_rows[0][0]
        return int(n) == 0

    return generation_cached(client, ("scope_covers", db, exps), none_hidden,
                             SCOPE_CHECK_CACHE)


@dataclass(frozen=True)
class Component:
    """One column of the sort key: SQL expression, direction and ClickHouse type."""

    expr: str
    ascending: bool
    ch_type: str


def keyset_after(b: Binder, comps: list[Component], values: list[Any]) -> str:
    """Rows strictly after `values` in the order of `comps` (lexicographic)."""
    ors = []
    for i, c in enumerate(comps):
        eqs = [f"{comps[j].expr} = {_bind_comp(b, comps[j], values[j])}" for j in range(i)]
        op = ">" if c.ascending else "<"
        ors.append(" AND ".join([*eqs, f"{c.expr} {op} {_bind_comp(b, c, values[i])}"]))
    return "(" + " OR ".join(f"({o})" for o in ors) + ")"


def _bind_comp(b: Binder, c: Component, v: Any) -> str:
    if c.ch_type == "RunKey":
        return b.bind(int(v), "UInt128")
    if c.ch_type == "Float64":
        return b.bind(float(v), "Float64")
    return b.bind(v, c.ch_type)


def order_clause(comps: list[Component]) -> str:
    return ", ".join(f"{c.expr} {'ASC' if c.ascending else 'DESC'}" for c in comps)
