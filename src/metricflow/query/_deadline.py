"""A time limit for the query API's reads.

One dashboard request must not keep the store's CPU for minutes: every read the
query API runs carries ClickHouse's `max_execution_time`
(`METRICFLOW_QUERY_TIMEOUT_S`, 60 s by default; 0 turns it off), so the engine
stops the query, chDB in process as a ClickHouse server does. The front ends then
answer DEADLINE_EXCEEDED (gRPC) or 504 (HTTP) with a message naming the limit,
instead of a 500. Writes, schema changes and backfills carry no limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from metricflow import _env
from metricflow.errors import ErrorCode, MetricflowError

F = TypeVar("F", bound=Callable[..., Any])

_TIMEOUT = ("Code: 159.", "(TIMEOUT_EXCEEDED)")  # ClickHouse's error 159, as its text shows it


def read_settings(**extra: Any) -> dict[str, Any]:
    """The settings of one read: `extra` plus the time limit when there is one."""
    limit = _env.QUERY_TIMEOUT_S.get()
    return {**extra, "max_execution_time": limit} if limit > 0 else dict(extra)


class QueryTimeout(MetricflowError):
    """A read ran past `METRICFLOW_QUERY_TIMEOUT_S` and was stopped."""

    code = ErrorCode.DEADLINE_EXCEEDED


@contextmanager
def deadline() -> Iterator[None]:
    """Turn the engine's timeout into a QueryTimeout naming the limit."""
    try:
        yield
    except MetricflowError:
        raise
    except Exception as e:
        text = str(e)
        if not all(t in text for t in _TIMEOUT):
            raise
        limit = _env.QUERY_TIMEOUT_S.get()
        raise QueryTimeout(
            f"the query ran longer than the server's limit of {limit:g} s "
            f"({_env.QUERY_TIMEOUT_S.name}) and was stopped; narrow the filter, the runs "
            "or the step range, or ask the operator to raise the limit",
            field="query", limit=limit) from None


def bounded(fn: F) -> F:
    """`deadline()` around a method of the query API."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with deadline():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
