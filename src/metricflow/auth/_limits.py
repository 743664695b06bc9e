"""Request limits the auth layer enforces for every front end.

Filter strings are checked before any parser sees them (length and nesting
depth: a recursive-descent parser must never recurse without bound), and the
number of distinct metric keys per run is capped per server process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from metricflow.auth._params import param_of
from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument

_FILTER_FIELDS = ("filter", "filter_string")


def filter_depth(text: str) -> int:
    """Deepest parenthesis nesting outside quoted strings."""
    depth = best = 0
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth = max(0, depth - 1)
    return best


def check_filter(text: object, config: AuthConfig, field: str = "filter") -> None:
    """InvalidArgument naming the field and limit if a filter is too long or too deep."""
    if not isinstance(text, str) or not text:
        return
    if len(text) > config.max_filter_length:
        raise InvalidArgument(
            f"{field} is {len(text)} characters long; the limit is {config.max_filter_length}",
            field=field, limit=config.max_filter_length, received=len(text))
    depth = filter_depth(text)
    if depth > config.max_filter_depth:
        raise InvalidArgument(
            f"{field} nests parentheses {depth} deep; the limit is {config.max_filter_depth}",
            field=field, limit=config.max_filter_depth, received=depth)


def check_request_filters(request: Any, config: AuthConfig) -> None:
    for name in _FILTER_FIELDS:
        v = param_of(request, name)
        check_filter(v, config, name)


class KeysPerRun:
    """Distinct metric keys seen per run in this process, capped at `limit`.

    Bounded memory: at most `max_runs` runs are tracked (least recently written
    are forgotten, so the cap is per process and approximate after eviction).
    """

    def __init__(self, limit: int, max_runs: int = 1024) -> None:
        self.limit, self.max_runs = limit, max_runs
        self._runs: OrderedDict[str, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run_id: str, keys: list[str] | tuple[str, ...]) -> None:
        if self.limit <= 0 or not keys:
            return
        with self._lock:
            seen = self._runs.get(run_id)
            if seen is None:
                seen = self._runs[run_id] = set()
                if len(self._runs) > self.max_runs:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(run_id)
            new = set(keys) - seen
            if len(seen) + len(new) > self.limit:
                raise InvalidArgument(
                    f"run {run_id} would have {len(seen) + len(new)} distinct metric keys; "
                    f"the limit per run is {self.limit}", field="metrics.keys",
                    limit=self.limit, received=len(seen) + len(new))
            seen |= new
