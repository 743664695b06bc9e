"""MLflow's `datasets.*` and `attributes.artifact_uri` run-search fields: parsed only
when the caller resolves them (the MLflow API), rewritten to run-id sets, and
compiled to SQL that compares the URI the MLflow API shows."""

from __future__ import annotations

import re

import pytest

from metricflow.errors import InvalidArgument
from metricflow.query._grammar import BoolOp, Comparison, Field, parse_filter, parse_order_by
from metricflow.query._search import resolve_datasets
from metricflow.query._sql import Binder, SqlBuilder
from metricflow.store.metadata._lineage import _like_regex


@pytest.mark.parametrize("text", ["datasets.name = 'x'", "dataset.digest IN ('a')",
                                  "attributes.artifact_uri = 'x'", "artifact_uri = 'x'"])
def test_other_callers_do_not_know_the_fields(text: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_filter(text)
    assert e.value.details["field"] == "filter"


def test_fields_parse_with_mlflow_fields() -> None:
    tree = parse_filter("datasets.name = 'a' AND (dataset.context IN ('train', 'eval') OR "
                        "artifact_uri LIKE 's3://%')", mlflow_fields=True)
    assert tree == BoolOp("AND", (
        Comparison(Field("datasets", "name"), "=", "a"),
        BoolOp("OR", (Comparison(Field("datasets", "context"), "IN", ("train", "eval")),
                      Comparison(Field("attributes", "artifact_uri"), "LIKE", "s3://%")))))


def test_no_order_by_on_the_fields() -> None:
    with pytest.raises(InvalidArgument):
        parse_order_by(["datasets.name"])
    with pytest.raises(InvalidArgument):
        parse_order_by(["attributes.artifact_uri"])


def test_resolve_datasets_replaces_each_clause_by_its_run_set() -> None:
    calls = []

    def runs(field: str, op: str, value: object) -> list[str]:
        calls.append((field, op, value))
        return {"name": ["r2", "r1", "r2"], "digest": []}[field]

    tree = parse_filter("datasets.name = 'a' OR (params.p = '1' AND datasets.digest != 'd')",
                        mlflow_fields=True)
    assert tree is not None
    out = resolve_datasets(tree, runs)
    run_id = Field("attributes", "run_id")
    assert out == BoolOp("OR", (
        Comparison(run_id, "IN", ("r1", "r2")),
        BoolOp("AND", (Comparison(Field("params", "p"), "=", "1"),
                       Comparison(run_id, "IN", ())))))
    assert calls == [("name", "=", "a"), ("digest", "!=", "d")]


def test_artifact_uri_compares_the_shown_uri() -> None:
    b = Binder()
    sb = SqlBuilder("db", b)
    sb.artifact_root = "s3://root/"
    tree = parse_filter("artifact_uri = 'mlflow-artifacts:/1/x/artifacts'", mlflow_fields=True)
    assert tree is not None
    sql = sb.tree(tree, None)
    assert sql.startswith("run_id IN (SELECT run_id FROM db.runs FINAL WHERE if(")
    assert "concat('mlflow-artifacts:/', experiment_id, '/', run_id, '/artifacts')" in sql
    assert sorted(b.params.values()) == ["mlflow-artifacts:/1/x/artifacts", "s3://root",
                                         "s3://root/"]
    assert re.search(r"rk IN \(SELECT rk FROM db.search_runs FINAL WHERE run_id IN",
                     sb.tree(tree, Field("metrics", "m")))


@pytest.mark.parametrize(("pattern", "case", "yes", "no"), [
    ("ir%", True, ["iris", "ir"], ["Iris", "xiris"]),
    ("_ris", True, ["iris"], ["ris", "iiris"]),
    ("IR%", False, ["iris", "IRIS"], ["xir"]),
    ("a\\%b", True, ["a%b"], ["axb"]),
    ("a.b*", True, ["a.b*"], ["axb*", "a.bb"]),
])
def test_like_patterns(pattern: str, case: bool, yes: list[str], no: list[str]) -> None:
    rx = _like_regex(pattern, case=case)
    assert all(rx.fullmatch(s) for s in yes)
    assert not any(rx.fullmatch(s) for s in no)
