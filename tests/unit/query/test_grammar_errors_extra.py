"""Deep nesting is a clear error, never a RecursionError (a 500)."""

from __future__ import annotations

import pytest

from metricflow.errors import InvalidArgument
from metricflow.query._grammar import MAX_NESTING, parse_filter


def test_nesting_limit_is_a_clear_error():
    ok = "(" * MAX_NESTING + "metrics.a > 1" + ")" * MAX_NESTING
    assert parse_filter(ok) is not None
    deep = "(" * 2000 + "metrics.a > 1" + ")" * 2000
    with pytest.raises(InvalidArgument, match="nest deeper than the limit of 64"):
        parse_filter(deep)
