"""Filter grammar: operators, quoting, precedence, errors with positions."""

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
from metricflow.query._sql import Binder, Scope, SqlBuilder


def cmp(kind: str, key: str, op: str, value: object) -> Comparison:
    return Comparison(Field(kind, key), op, value)


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_metric_operators(op: str) -> None:
    assert parse_filter(f"metrics.acc {op} 0.5") == cmp("metrics", "acc", op, 0.5)


@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"])
def test_string_operators(op: str) -> None:
    assert parse_filter(f"params.lr {op} '0.1'") == cmp("params", "lr", op, "0.1")
    assert parse_filter(f"tags.t {op.lower()} \"x\"") == cmp("tags", "t", op, "x")


def test_in_lists_and_attributes() -> None:
    assert parse_filter("attributes.run_id IN ('a', 'b')") == cmp(
        "attributes", "run_id", "IN", ("a", "b"))
    assert parse_filter("attribute.status not in ('FAILED')") == cmp(
        "attributes", "status", "NOT IN", ("FAILED",))
    assert parse_filter("attr.start_time >= 10") == cmp("attributes", "start_time", ">=", 10)
    assert parse_filter("run.name = 'x'") == cmp("attributes", "run_name", "=", "x")


def test_numbers() -> None:
    for text, v in [("1", 1.0), ("-2.5", -2.5), ("1e-3", 1e-3), (".5", 0.5), ("+3", 3.0)]:
        assert parse_filter(f"metrics.m > {text}") == cmp("metrics", "m", ">", v)


def test_quoted_keys_and_strings() -> None:
    assert parse_filter("metrics.`my key` > 1") == cmp("metrics", "my key", ">", 1.0)
    assert parse_filter('params."a.b c" = \'v\'') == cmp("params", "a.b c", "=", "v")
    assert parse_filter("metrics.train.loss < 1") == cmp("metrics", "train.loss", "<", 1.0)
    assert parse_filter("tags.`we``ird` = 'it''s'") == cmp("tags", "we`ird", "=", "it's")
    assert parse_filter(r"tags.t = 'a\'b'") == cmp("tags", "t", "=", "a'b")
    assert parse_filter("tags.t = \"say \"\"hi\"\"\"") == cmp("tags", "t", "=", 'say "hi"')


def test_precedence_and_parentheses() -> None:
    a, b, c = (cmp("metrics", k, ">", 1.0) for k in "abc")
    assert parse_filter("metrics.a > 1 OR metrics.b > 1 AND metrics.c > 1") == BoolOp(
        "OR", (a, BoolOp("AND", (b, c))))
    assert parse_filter("(metrics.a > 1 OR metrics.b > 1) AND metrics.c > 1") == BoolOp(
        "AND", (BoolOp("OR", (a, b)), c))
    assert parse_filter("metrics.a > 1 and metrics.b > 1 and metrics.c > 1") == BoolOp(
        "AND", (a, b, c))
    assert parse_filter("((metrics.a > 1))") == a
    assert parse_filter("   ") is None


BAD = [
    ("metrics.acc >", 13, "compares with a number"),
    ("metrics.acc > 'x'", 14, "compares with a number"),
    ("params.lr > '1'", 10, "operator > is not allowed for params.lr"),
    ("metrics.acc LIKE 1", 12, "operator LIKE is not allowed"),
    ("foo.bar = 1", 0, "unknown field prefix"),
    ("attributes.colour = 'red'", 0, "unknown attribute 'colour'"),
    ("metrics.a > 1 AND", 17, "expected a field"),
    ("metrics.a > 1 metrics.b > 2", 14, "expected AND, OR or end of filter"),
    ("(metrics.a > 1", 14, "expected ')'"),
    ("metrics.a > 1)", 13, "expected AND, OR or end of filter"),
    ("params.lr = 'abc", 12, "unterminated quote"),
    ("params.lr = abc", 12, "compares with a quoted string"),
    ("metrics.a ~ 1", 10, "unexpected character '~'"),
    ("params.lr IN 'a'", 13, "expected '(' after IN"),
    ("params.lr IN ('a' 'b')", 18, "expected ',' or ')'"),
    ("attributes.run_name IN ('a')", 20, "IN is only allowed"),
    ("attributes.start_time > 1.5", 24, "integer"),
    ("params.lr NOT = 'a'", 14, "expected LIKE, ILIKE or IN after NOT"),
    ("metrics. > 1", 9, "expected a key"),
    ("metrics", 7, "expected '.'"),
]


@pytest.mark.parametrize("text,pos,msg", BAD)
def test_bad_filters_point_at_position(text: str, pos: int, msg: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_filter(text)
    assert e.value.details["field"] == "filter"
    assert e.value.details["position"] == pos, e.value.message
    assert msg in e.value.message
    assert f"at position {pos}" in e.value.message


def test_order_by() -> None:
    assert parse_order_by(["metrics.acc DESC", "params.`a b`", "attributes.start_time asc"]) == [
        OrderTerm(Field("metrics", "acc"), False), OrderTerm(Field("params", "a b"), True),
        OrderTerm(Field("attributes", "start_time"), True)]
    with pytest.raises(InvalidArgument, match="order_by: expected ASC, DESC"):
        parse_order_by(["metrics.acc DOWN"])
    with pytest.raises(InvalidArgument, match="order_by: unknown field prefix"):
        parse_order_by(["acc"])


def test_order_by_takes_at_most_ten_terms() -> None:
    """Each term may be a join: 200 of them kept a server busy for minutes."""
    assert len(parse_order_by([f"metrics.m{i}" for i in range(10)])) == 10
    with pytest.raises(InvalidArgument, match="at most 10 terms, got 200") as e:
        parse_order_by(["metrics.loss ASC"] * 200)
    assert e.value.details["field"] == "order_by" and e.value.details["limit"] == 10


def test_filter_length_limit() -> None:
    with pytest.raises(InvalidArgument, match="limit is"):
        parse_filter("metrics.a > 1 OR " * 1000 + "metrics.a > 1")


INJECTIONS = [
    "params.lr = '1'' OR 1=1 --'",
    "params.lr = '1; DROP TABLE runs'",
    "tags.`x') OR 1=1 --` = 'a'",
    "metrics.`acc; DROP DATABASE x` > 0",
    "params.lr = '{p0:String}'",
    "tags.t LIKE '%'' UNION SELECT * FROM system.users --'",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_user_text_only_in_bound_parameters(text: str) -> None:
    tree = parse_filter(text)
    b = Binder()
    sql = SqlBuilder("db", b).tree(tree, None) + SqlBuilder("db", b).scope(Scope())
    for value in b.params.values():
        if isinstance(value, str) and len(value) > 3 and not value.startswith("{p"):
            assert value not in sql
    for bad in ("DROP", "UNION", "1=1", "--"):
        assert bad not in sql
