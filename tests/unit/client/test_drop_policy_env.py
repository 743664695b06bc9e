"""METRICFLOW_CLIENT_DROP_POLICY: 'block' or 'drop' (new points are dropped and counted),
anything else fails naming the variable and the values it takes."""

from __future__ import annotations

import pytest

from metricflow.client import Client
from metricflow.errors import InvalidArgument


@pytest.mark.parametrize(("value", "drops"), [("", False), ("block", False), ("drop", True)])
def test_policy_values(monkeypatch: pytest.MonkeyPatch, value: str, drops: bool) -> None:
    monkeypatch.setenv("METRICFLOW_CLIENT_DROP_POLICY", value)
    client = Client("grpc://127.0.0.1:1")
    try:
        assert client._acc.drop_when_full is drops
    finally:
        client.close(timeout=0)


@pytest.mark.parametrize("value", ["drop_oldest", "DROP", "oldest"])
def test_other_values_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("METRICFLOW_CLIENT_DROP_POLICY", value)
    with pytest.raises(InvalidArgument) as e:
        Client("grpc://127.0.0.1:1")
    msg = str(e.value)
    assert "METRICFLOW_CLIENT_DROP_POLICY" in msg and repr(value) in msg
    assert "'block', 'drop'" in msg


def test_the_argument_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_CLIENT_DROP_POLICY", "drop")
    client = Client("grpc://127.0.0.1:1", drop_when_full=False)
    try:
        assert client._acc.drop_when_full is False
    finally:
        client.close(timeout=0)


def test_drop_drops_new_points_not_old_ones() -> None:
    """What 'drop' means (docs/ingest.md): buffered points stay; the ones that do not fit go."""
    from metricflow.client._accumulator import POINT_BYTES, ROW_BYTES, Accumulator

    acc = Accumulator(2 * (POINT_BYTES + ROW_BYTES), 1000, 5.0, drop_when_full=True)
    for step in range(5):
        acc.append("r" * 32, {"m": float(step)}, step, 0)
    assert (acc.buffered_points, acc.dropped_points) == (2, 3)
    values = sorted(float(v) for b in acc.drain() for v in b.values)
    assert values == [0.0, 1.0]
