"""The alerts role's --nice flag (and METRICFLOW_ALERTS_NICE): a bad value is a usage
error at parse time, before any check or connection; the value parsed is the one the
role applies (the priority itself: tests/component/app/test_role_priority.py)."""

from __future__ import annotations

import argparse

import pytest

from metricflow.app import _priority, _serve
from metricflow.app._flags import _run, add_role_parsers


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("bad", ["20", "-1", "abc", "1.5"])
def test_an_out_of_range_nice_is_a_usage_error(bad: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["alerts", "--nice", bad])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--nice" in err and "METRICFLOW_ALERTS_NICE" in err and repr(bad) in err, err


def test_the_variable_is_checked_as_the_flag(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("METRICFLOW_ALERTS_NICE", "25")
    with pytest.raises(SystemExit):
        _parser().parse_args(["alerts"])
    assert "got '25'" in capsys.readouterr().err
    monkeypatch.setenv("METRICFLOW_ALERTS_NICE", "7")
    assert _parser().parse_args(["alerts"]).nice == 7
    monkeypatch.delenv("METRICFLOW_ALERTS_NICE")
    assert _parser().parse_args(["alerts"]).nice == 19


def test_the_role_applies_the_parsed_value_before_it_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(_priority, "lower_priority", lambda n: calls.append(("nice", n)) or n)
    monkeypatch.setattr(_serve, "run", lambda settings: calls.append(("run", settings.role)))
    assert _run(_parser().parse_args(["alerts", "--nice", "11"])) == 0
    assert calls == [("nice", 11), ("run", "alerts")]
    calls.clear()
    _run(_parser().parse_args(["writer", "--clickhouse", "chdb:///tmp/x"]))
    assert calls == [("run", "writer")]  # no other role lowers its priority
