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
