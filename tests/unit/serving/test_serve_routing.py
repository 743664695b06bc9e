"""The serve process's pure parts: scoring payloads, routing, windows, request ids."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from metricflow.entities import StickyKey
from metricflow.serving._serve_guard import Window, breach
from metricflow.serving._serve_log import parse_request_id
from metricflow.serving._serve_payload import (
    BadInput,
    Column,
    Signature,
    decode,
    first_number,
    parse,
    sticky_value,
)
from metricflow.serving._serve_router import Slot, Table, sticky_point

SIG = Signature((Column("a", "double"), Column("b", "long"), Column("c", "string", False)))


def _doc(d: object) -> dict:
    return decode(json.dumps(d).encode())


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.5, 2, "x"], [2, 3, "y"]]}},
    {"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1.5], [3, 2.0]]}},
    {"dataframe_records": [{"a": 1.5, "b": 2, "c": "x"}, {"b": 3, "a": 2}]},
    {"instances": [{"a": 1.5, "b": 2}, {"a": 2, "b": 3}]},
    {"inputs": {"a": [1.5, 2], "b": [2, 3]}},
    {"inputs": [[1.5, 2, "x"], [2, 3, None]]},
])
def test_every_scoring_format_gives_rows_in_signature_order(payload):
    rows = parse(_doc(payload), SIG)
    assert rows.columns == ("a", "b", "c")
    assert [r[:2] for r in rows.rows] == [[1.5, 2], [2, 3]]


@pytest.mark.parametrize(("payload", "column", "expected", "words"), [
    ({"dataframe_records": [{"a": "x", "b": 1}]}, "a", "double", ["string 'x'", "row 0"]),
    ({"dataframe_records": [{"a": 1.0, "b": 1.5}]}, "b", "long", ["number 1.5"]),
    ({"dataframe_records": [{"b": 1}]}, "a", "double", ["missing"]),
    ({"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}, "b", "long", ["missing"]),
    ({"dataframe_records": [{"a": 1.0, "b": 1}, {"a": None, "b": 1}]}, "a", "double",
     ["null", "row 1"]),
    ({"inputs": {"a": [1.0], "b": [True]}}, "b", "long", ["boolean"]),
])
def test_a_payload_off_the_signature_names_column_and_type(payload, column, expected, words):
    with pytest.raises(BadInput) as ei:
        parse(_doc(payload), SIG)
    assert ei.value.column == column and ei.value.expected == expected
    body = json.loads(ei.value.body())
    assert body["column"] == column and body["expected_type"] == expected
    for w in words:
        assert w in str(ei.value)


@pytest.mark.parametrize("raw", [b"{", b"[1]", b'{"x": 1}',
                                 b'{"inputs": [], "instances": []}'])
def test_a_body_that_is_no_scoring_request_is_bad_input(raw):
    with pytest.raises(BadInput):
        decode(raw)


def test_ragged_split_rows_are_refused():
    with pytest.raises(BadInput, match=r"data\[1\] must be a list of 2 values"):
        parse(_doc({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2], [1.0]]}}),
              SIG)


def test_sticky_field_is_read_from_every_format():
    assert sticky_value(_doc({"dataframe_split": {"columns": ["u", "a"], "data": [["7", 1]]}}),
                        "u") == "7"
    assert sticky_value(_doc({"dataframe_records": [{"u": 7}]}), "u") == "7"
    assert sticky_value(_doc({"inputs": {"u": [9, 8]}}), "u") == "9"
    assert sticky_value(_doc({"instances": [{"a": 1}]}), "u") is None


def _table(out: frozenset[str] = frozenset()) -> Table:
    m = object()
    return Table((Slot("champion", m, "1", 90), Slot("challenger", m, "2", 10)), (),
                 StickyKey("header", "x-user"), "champion", out)


def test_weighted_split_is_within_tolerance():
    t = _table()
    got = Counter(t.pick(None).name for _ in range(20_000))
    assert abs(got["challenger"] / 20_000 - 0.10) < 0.01


def test_sticky_keys_map_to_one_variant_and_split_by_weight():
    t = _table()
    picks = {f"user-{i}": t.pick(f"user-{i}").name for i in range(5000)}
    assert all(t.pick(k).name == v for k, v in list(picks.items())[:500])
    share = sum(v == "challenger" for v in picks.values()) / len(picks)
    assert 0.08 < share < 0.12
    assert 0 <= sticky_point("a") < 1 and sticky_point("a") == sticky_point("a")


def test_a_tripped_or_unloaded_variant_sends_its_share_to_the_fallback():
    t = _table(frozenset({"challenger"}))
    assert {t.pick(None).name for _ in range(2000)} == {"champion"}
    t2 = Table((Slot("champion", object(), "1", 90), Slot("challenger", None, "", 10)), (),
               None, "champion")
    assert {t2.pick(None).name for _ in range(2000)} == {"champion"}
    assert Table((), (), None, "").pick(None) is None


def test_window_error_rate_and_p99_and_breach():
    w = Window(30)
    for i in range(100):
        w.add(1.0 if i < 98 else 50.0, error=i % 10 == 0, now=1000.0 + i * 0.1)
    s = w.stats(now=1010.0)
    assert s.requests == 100 and s.errors == 10
    assert 40 < s.p99_ms < 60
    assert "error rate" in breach(s, max_error_rate=0.05, max_p99_ms=None, min_requests=20)
    assert "p99" in breach(s, max_error_rate=None, max_p99_ms=10.0, min_requests=20)
    assert breach(s, max_error_rate=0.5, max_p99_ms=100.0, min_requests=20) is None
    assert breach(s, max_error_rate=0.01, max_p99_ms=None, min_requests=1000) is None
    assert w.stats(now=1000.0 + 100).requests == 0  # everything slid out


def test_request_ids_round_trip_and_reject_junk():
    assert parse_request_id("0" * 32 + "-17") == ("0" * 32, 17)
    for bad in ("", "x-1", "0" * 32 + "-0", "0" * 32 + "-a", "0" * 31 + "-1"):
        assert parse_request_id(bad) is None


def test_first_number_of_predictions():
    assert first_number([2, 1]) == 2.0
    assert first_number([[0.25, 0.75]]) == 0.25
    assert first_number([{"p": 3}]) == 3.0
    assert first_number(["cat"]) is None


@pytest.mark.parametrize("raw", [b'{"inputs": [[NaN, 1]]}', b'{"inputs": [[Infinity, 1]]}',
                                 b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_non_json_numbers_and_deep_nesting_are_bad_input(raw):
    with pytest.raises(BadInput):
        parse(decode(raw), SIG)


def test_a_non_finite_double_is_bad_input_naming_the_column():
    with pytest.raises(BadInput) as ei:
        parse(_doc({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 1]]}}) | {
            "dataframe_split": {"columns": ["a", "b"], "data": [[float("inf"), 1]]}}, SIG)
    assert ei.value.column == "a" and "finite" in str(ei.value)
    assert "beyond a double's range" in str(ei.value)  # what a JSON 1e400 turns into


def test_endpoints_on_link_local_are_refused_and_private_ones_need_the_flag():
    from metricflow.serving._serve_models import check_endpoint

    with pytest.raises(ValueError, match="link-local"):
        check_endpoint("http://169.254.169.254/latest/meta-data/", True)
    with pytest.raises(ValueError, match="--allow-private-endpoints"):
        check_endpoint("http://127.0.0.1:5000/invocations", False)
    with pytest.raises(ValueError, match="--allow-private-endpoints"):
        check_endpoint("http://10.1.2.3/invocations", False)
    check_endpoint("http://127.0.0.1:5000/invocations", True)
    check_endpoint("http://8.8.8.8/invocations", False)
