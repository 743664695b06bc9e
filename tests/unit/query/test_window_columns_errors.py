"""A bad column of the runs table is reported as `columns` (not `order_by`, whose parser
it shares), with the column as received."""

from __future__ import annotations

import pytest

from metricflow.errors import InvalidArgument
from metricflow.query import parse_columns


@pytest.mark.parametrize("bad", ["metrics.", "nope.x", "metrics.`a", "start_time"])
def test_bad_column_names_the_columns_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_columns(["metrics.ok", bad])
    assert e.value.details["field"] == "columns"
    assert e.value.details["received"] == bad
    assert "order_by" not in e.value.message
