"""MLflow reads a field name without a prefix as an attribute, and `IS [NOT] NULL` on
params and tags: `status = 'FINISHED'`, order_by `start_time DESC`, `tags.t IS NULL`."""

from __future__ import annotations

import pytest

from metricflow.errors import InvalidArgument
from metricflow.query._grammar import (
    BoolOp,
    Comparison,
    Field,
    OrderTerm,
    parse_filter,
    parse_order_by,
)
from metricflow.query._sql import Binder, SqlBuilder


@pytest.mark.parametrize(("text", "key", "op", "value"), [
    ("status = 'FINISHED'", "status", "=", "FINISHED"),
    ("run_name = 'x'", "run_name", "=", "x"),
    ("run_name ILIKE 'PAR%'", "run_name", "ILIKE", "PAR%"),
    ("run_id IN ('a', 'b')", "run_id", "IN", ("a", "b")),
    ("start_time > 5", "start_time", ">", 5),
    ("created >= 7", "start_time", ">=", 7),
    ("user_id != 'u'", "user_id", "!=", "u"),
])
def test_unprefixed_names_are_attributes(text: str, key: str, op: str, value: object) -> None:
    assert parse_filter(text) == Comparison(Field("attributes", key), op, value)


def test_unprefixed_attributes_combine_with_prefixed_fields() -> None:
    assert parse_filter("status = 'RUNNING' AND metrics.acc > 0.5") == BoolOp("AND", (
        Comparison(Field("attributes", "status"), "=", "RUNNING"),
        Comparison(Field("metrics", "acc"), ">", 0.5)))


@pytest.mark.parametrize(("clause", "key", "asc"), [
    ("start_time DESC", "start_time", False), ("run_name", "run_name", True),
    ("status ASC", "status", True), ("end_time", "end_time", True),
    ("created DESC", "start_time", False), ("run_id", "run_id", True)])
def test_unprefixed_order_by(clause: str, key: str, asc: bool) -> None:
    assert parse_order_by([clause]) == [OrderTerm(Field("attributes", key), asc)]


def test_unknown_unprefixed_name_is_still_an_error() -> None:
    with pytest.raises(InvalidArgument, match="unknown field prefix"):
        parse_filter("bogus = 'x'")
    with pytest.raises(InvalidArgument, match="unknown field prefix"):
        parse_order_by(["bogus DESC"])


@pytest.mark.parametrize(("text", "kind", "op"), [
    ("tags.t IS NOT NULL", "tags", "IS NOT NULL"), ("params.p IS NULL", "params", "IS NULL"),
    ("tags.`a b` is not null", "tags", "IS NOT NULL")])
def test_is_null_on_params_and_tags(text: str, kind: str, op: str) -> None:
    c = parse_filter(text)
    assert isinstance(c, Comparison) and c.field.kind == kind and c.op == op


@pytest.mark.parametrize("text", ["metrics.m IS NULL", "status IS NOT NULL",
                                  "tags.t IS 'x'", "tags.t IS NOT 5"])
def test_is_null_elsewhere_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_filter(text)


def test_is_null_compiles_to_a_key_presence_set() -> None:
    sb = SqlBuilder("db", Binder())
    has = sb.tree(parse_filter("tags.t IS NOT NULL"), None)  # type: ignore[arg-type]
    lacks = sb.tree(parse_filter("params.p IS NULL"), None)  # type: ignore[arg-type]
    assert has.startswith("rk IN (SELECT rk FROM db.search_tags FINAL WHERE key = ")
    assert "deleted = 0" in has
    assert lacks.startswith("rk NOT IN (SELECT rk FROM db.search_params FINAL WHERE key = ")
    # driven by the key's own rows (order_by that key): every row has it
    assert sb.leaf(parse_filter("tags.t IS NULL"), Field("tags", "t")) == "0"  # type: ignore[arg-type]
