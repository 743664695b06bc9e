"""A writer whose config cannot work fails before it joins the consumer group.

Joining first took partitions from the healthy writer for a rebalance in, and a
second one out again, for a process that was about to exit (issue 22 review).
The bad writer must print one line and leave the group as it was.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka_roles import RoleProc, child_env, wait_for

pytestmark = pytest.mark.timeout(180)
CLI = [sys.executable, "-m", "metricflow.server.cli"]


def describe_group(bootstrap: str, group: str) -> tuple[str, list[str]]:
    """(state, member ids) of a consumer group, as the broker reports it."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def go() -> tuple[str, list[str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (resp,) = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        (_err, _gid, state, _ptype, _proto, members), = resp.groups
        return state, sorted(m[0] for m in members)

    return asyncio.run(go())


def test_a_writer_with_a_bad_metadata_uri_never_joins_the_group(
        tmp_path: Path, kafka_bootstrap: str, kafka_topic_prefix: str) -> None:
    topic = f"{kafka_topic_prefix}.badcfg.{uuid.uuid4().hex[:8]}"
    group = f"writers-{uuid.uuid4().hex[:8]}"
    control = tmp_path / "control"
    control.mkdir()
    env = child_env(tmp_path)
    common = ["--kafka", kafka_bootstrap, "--topic", topic, "--partitions", "4",
              "--group", group]
    healthy = RoleProc("writer", [*common, "--clickhouse", f"chdb://{tmp_path}/ch"],
                       control, env, tmp_path / "healthy.log")
    try:
        wait_for(lambda: healthy.metric("metricflow_writer_rebalances_total",
                                        'event="assigned"') >= 1, 60, "the first assignment")
        wait_for(lambda: describe_group(kafka_bootstrap, group)[0] == "Stable", 60,
                 "a stable group")
        _, members = describe_group(kafka_bootstrap, group)
        assert len(members) == 1
        revoked = healthy.metric("metricflow_writer_rebalances_total", 'event="revoked"')

        missing = tmp_path / "no-such-dir"
        bad = subprocess.run(
            [*CLI, "writer", *common, "--clickhouse", f"chdb://{tmp_path}/ch2",
             "--serve-query", "--metadata", f"sqlite:///{missing}/metadata.db",
             "--grpc-port", "0", "--http-port", "0", "--no-uvloop"],
            capture_output=True, text=True, timeout=120, env=env)
        assert bad.returncode == 1, bad.stderr
        assert bad.stderr.splitlines() == [
            f"metricflow writer: metadata store sqlite:///{missing}/metadata.db cannot be "
            f"opened: directory {missing} does not exist; create it (mkdir -p {missing}) or "
            "pass --metadata URI (env METRICFLOW_METADATA_URI; every role must use the same "
            "one)"], bad.stderr

        # A join would have moved the group out of Stable until the healthy writer
        # rejoined (revoking its partitions first): once it is Stable again, the
        # revocation count and the membership tell whether that happened.
        wait_for(lambda: describe_group(kafka_bootstrap, group)[0] == "Stable", 60,
                 "a stable group after the bad writer exited")
        assert describe_group(kafka_bootstrap, group)[1] == members
        assert healthy.metric("metricflow_writer_rebalances_total",
                              'event="revoked"') == revoked
        assert "assigned" not in bad.stderr
    finally:
        healthy.stop()
