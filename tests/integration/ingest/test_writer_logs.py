"""A writer logs one short line of its own per rebalance, not aiokafka's ten (one of them
the whole partition list)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from kafka_roles import RoleProc, child_env, wait_for

pytestmark = pytest.mark.timeout(180)


def test_one_line_per_rebalance(tmp_path: Path, kafka_bootstrap: str,
                                kafka_topic_prefix: str) -> None:
    topic = f"{kafka_topic_prefix}.logs.{uuid.uuid4().hex[:8]}"
    group = f"writers-{uuid.uuid4().hex[:8]}"
    control = tmp_path / "control"
    control.mkdir()
    env = child_env(tmp_path)
    common = ["--kafka", kafka_bootstrap, "--topic", topic, "--partitions", "64",
              "--group", group]
    first = RoleProc("writer", [*common, "--clickhouse", f"chdb://{tmp_path}/ch1"],
                     control, env, tmp_path / "first.log")
    second = None
    try:
        wait_for(lambda: first.metric("metricflow_writer_rebalances_total",
                                      'event="assigned"') >= 1, 60, "the first assignment")
        # A second member: the first writer gives up half of its partitions.
        second = RoleProc("writer", [*common, "--clickhouse", f"chdb://{tmp_path}/ch2"],
                          control, env, tmp_path / "second.log")
        wait_for(lambda: first.metric("metricflow_writer_rebalances_total",
                                      'event="assigned"') >= 2, 60, "the second assignment")
        second.stop()
        wait_for(lambda: first.metric("metricflow_writer_rebalances_total",
                                      'event="assigned"') >= 3, 60, "the third assignment")
        assigned = first.metric("metricflow_writer_rebalances_total", 'event="assigned"')
    finally:
        if second is not None:
            second.stop()
        first.stop()
    lines = (tmp_path / "first.log").read_text().splitlines()
    assert not [line for line in lines if " INFO aiokafka" in line], lines
    ours = [line for line in lines if f"group {group}: assigned" in line]
    assert len(ours) == assigned, lines
    counts = [int(re.search(r"assigned (\d+) partitions", line).group(1))  # type: ignore[union-attr]
              for line in ours]
    assert counts[0] == 64 and counts[-1] == 64 and 0 < counts[1] < 64, ours
    assert max(len(line) for line in lines) < 300, max(lines, key=len)
