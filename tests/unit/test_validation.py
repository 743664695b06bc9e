from __future__ import annotations

import pytest

from metricflow._validation import check_key, check_params, check_run_id, check_tags, to_float
from metricflow.errors import InvalidArgument


@pytest.mark.parametrize("key", ["loss", "val/acc", "a.b-c d:e", "x" * 250, "ünïcode_ok"])
def test_good_keys(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key, needle", [
    ("", "empty"), ("x" * 251, "limit is 250"), ("/abs", "relative"), ("a/../b", "relative"),
    ("semi;colon", "invalid characters"), ("new\nline", "invalid characters"),
])
def test_bad_keys_name_the_rule(key, needle):
    with pytest.raises(InvalidArgument, match=needle):
        check_key(key)


def test_value_limits():
    check_params({"p": "v" * 6000})
    with pytest.raises(InvalidArgument, match="6001 characters long; the limit is 6000"):
        check_params({"p": "v" * 6001})
    check_tags({"t": "v" * 8000})
    with pytest.raises(InvalidArgument, match="limit is 8000"):
        check_tags({"t": "v" * 8001})


def test_run_id_and_values():
    with pytest.raises(InvalidArgument):
        check_run_id("nothex")
    assert to_float("k", 1) == 1.0
    with pytest.raises(InvalidArgument, match="got str '1.5'"):  # text, as MLflow's client
        to_float("k", "1.5")
    with pytest.raises(InvalidArgument, match="metric 'k' value must be a number"):
        to_float("k", object())


def test_check_keys_remembers_only_keys_that_passed_under_the_same_length_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from metricflow import _validation as v

    monkeypatch.setattr(v, "_known_keys", {})
    good = ["loss", "train/acc", "k" * 30]
    v.check_keys(good)
    v.check_keys(good)  # remembered: passes again
    assert v._known_keys[v.DEFAULT_LIMITS.max_key_length] >= set(good)
    # a bad key among remembered ones is still refused, and is not remembered
    for bad, needle in (("../x", "relative"), ("a\nb", "invalid characters"), ("", "empty")):
        with pytest.raises(InvalidArgument, match=needle):
            v.check_keys([*good, bad])
        assert bad not in v._known_keys[v.DEFAULT_LIMITS.max_key_length]
    with pytest.raises(InvalidArgument, match="must be a string"):
        v.check_keys([*good, ["not", "hashable"]])
    # a key remembered under one limit is checked again under a smaller one
    with pytest.raises(InvalidArgument, match="the limit is 10"):
        v.check_keys(good, limits=v.Limits(max_key_length=10))


def test_check_keys_forgets_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from metricflow import _validation as v

    monkeypatch.setattr(v, "_known_keys", {})
    monkeypatch.setattr(v, "KNOWN_KEYS_MAX", 5)
    v.check_keys([f"k{i}" for i in range(12)])
    assert 0 < len(v._known_keys[v.DEFAULT_LIMITS.max_key_length]) <= 5
