"""The MLflow registry searches' arguments: max_results out of range names the broken bound;
only the mlflow client's own prompt clause is taken out of a filter."""

from __future__ import annotations

import pytest

from metricflow.errors import InvalidArgument
from metricflow.mlflow_compat._registry import _max_results
from metricflow.mlflow_compat._routing import Args


@pytest.mark.parametrize("n,says", [(-1, "at least 1"), (0, "at least 1"),
                                    (1001, "at most 1000,")])
def test_out_of_range_max_results_names_the_broken_bound(n: int, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says) as e:
        _max_results(Args({}, {"max_results": n}), 100, 1000)
    assert e.value.details == {"field": "max_results", "limit": 1000, "received": n}


def test_in_range_and_default() -> None:
    assert _max_results(Args({}, {"max_results": 7}), 100, 1000) == 7
    assert _max_results(Args({}, {}), 100, 1000) == 100


def test_only_the_clients_prompt_clause_and_its_dangling_and_are_removed() -> None:
    from metricflow.mlflow_compat._registry import split_prompt_filter

    assert split_prompt_filter("name = 'x' AND tags.`mlflow.prompt.is_prompt` != 'true'") == (
        "name = 'x'", True)
    assert split_prompt_filter("tags.`mlflow.prompt.is_prompt` != 'true'") == ("", True)
    # the caller's own dangling AND is left for the parser to refuse
    assert split_prompt_filter("name = 'x' AND") == ("name = 'x' AND", False)
