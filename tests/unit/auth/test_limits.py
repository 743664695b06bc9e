"""Filter limits and the keys-per-run cap."""

from __future__ import annotations

import pytest

from metricflow.auth._limits import KeysPerRun, check_filter, filter_depth
from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument


def test_filter_depth_ignores_quoted_parens() -> None:
    assert filter_depth("((a = ')))((((('))") == 2
    cfg = AuthConfig(max_filter_depth=4, max_filter_length=50)
    check_filter("(" * 4 + "x" + ")" * 4, cfg)
    with pytest.raises(InvalidArgument, match="nests parentheses 5 deep; the limit is 4"):
        check_filter("(" * 5 + "x" + ")" * 5, cfg)
    with pytest.raises(InvalidArgument, match="the limit is 50"):
        check_filter("a" * 51, cfg)


def test_keys_per_run_cap() -> None:
    k = KeysPerRun(limit=3)
    k.add("r", ["a", "b"])
    k.add("r", ["a", "b", "c"])
    with pytest.raises(InvalidArgument, match="limit per run is 3"):
        k.add("r", ["d"])
    k.add("other", ["d"])
