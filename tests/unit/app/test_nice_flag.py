"""The alerts role's --nice flag: an out-of-range value is refused before the role starts
(the priority itself: tests/component/app/test_role_priority.py)."""

from __future__ import annotations

import argparse

import pytest

from metricflow.app import _priority, _serve
from metricflow.app._flags import _run, add_role_parsers


def test_an_out_of_range_nice_flag_is_refused_before_the_role_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_a: object) -> None:
        raise AssertionError("reached past the range check")

    monkeypatch.setattr(_serve, "run", never)
    monkeypatch.setattr(_priority, "lower_priority", never)
    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers(dest="command"))
    for bad in ("20", "-1"):
        with pytest.raises(SystemExit, match=r"--nice must be in \[0, 19\]"):
            _run(parser.parse_args(["alerts", "--nice", bad]))
