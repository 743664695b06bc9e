"""Lineage segments of resumed runs and fork chains (store/_lineage.py), pure."""

from __future__ import annotations

from metricflow.store._lineage import (
    INT64_MAX,
    INT64_MIN,
    Lineage,
    Segment,
    is_plain,
    points_sql,
    segments,
)


def test_plain_and_resumed_runs() -> None:
    assert segments("r", {}) == [Segment("r", "r", INT64_MIN, INT64_MAX, False)]
    assert is_plain(segments("r", {}))
    resumed = segments("r", {"r": Lineage("", 0, 2)})
    assert resumed == [Segment("r", "r", INT64_MIN, INT64_MAX, True)]
    assert not is_plain(resumed)


def test_fork_chain_and_fork_below_the_parents_fork_step() -> None:
    lin = {"a": Lineage("root", 100, 0), "b": Lineage("a", 300, 1),
           "c": Lineage("b", 50, 0)}
    assert segments("b", lin) == [Segment("b", "root", INT64_MIN, 100, False),
                                  Segment("b", "a", 101, 300, False),
                                  Segment("b", "b", 301, INT64_MAX, True)]
    # c forks b at 50, below a's fork step: a and b contribute nothing
    assert segments("c", lin) == [Segment("c", "root", INT64_MIN, 50, False),
                                  Segment("c", "c", 51, INT64_MAX, False)]


def test_points_sql_binds_every_value() -> None:
    params: dict = {"key": "loss"}
    sql = points_sql("db", {"t": [Segment("t", "p'; DROP", INT64_MIN, 5, True)]}, ["x"],
                     lambda _: "key = {key:String}", params)
    assert "DROP" not in sql and params["_ls0"] == "p'; DROP"
    assert params["_lplain"] == ["x"] and params["_la0"] == INT64_MIN
    assert "GROUP BY key, step" in sql  # the resumed source keeps one point per step
