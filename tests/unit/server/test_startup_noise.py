"""Start-up output without noise (issue 22 item 8; the install side:
tests/component/test_packaging.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.consumer.group_coordinator", level, __file__, 1,
                             "Group Coordinator Request failed: %s", (msg,), None)


def test_coordinator_not_available_is_one_info_line_while_the_writer_joins(caplog) -> None:
    from metricflow.ingest._startup_log import COORDINATOR_LOGGER, StartupLogFilter

    note = logging.getLogger("metricflow.test.writer")
    f = StartupLogFilter(grace_s=60, note=note).install()
    aiokafka_log = logging.getLogger(COORDINATOR_LOGGER)
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            aiokafka_log.error("Group Coordinator Request failed: %s",
                               "[Error 15] GroupCoordinatorNotAvailableError")
        aiokafka_log.error("Group Coordinator Request failed: %s", "[Error 7] RequestTimedOutError")
        f.done()  # joined: the same error now shows as logged
        aiokafka_log.error("Group Coordinator Request failed: %s",
                           "[Error 15] GroupCoordinatorNotAvailableError")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Group Coordinator Request failed: [Error 7] RequestTimedOutError",
                      "Group Coordinator Request failed: [Error 15] "
                      "GroupCoordinatorNotAvailableError"]
    infos = [r.getMessage() for r in caplog.records if r.name == note.name]
    assert infos == ["waiting for the Kafka group coordinator "
                     "(GroupCoordinatorNotAvailableError while it starts)"]
    assert f.dropped == 2


def test_a_coordinator_unavailable_past_the_grace_shows_as_an_error() -> None:
    from metricflow.ingest._startup_log import StartupLogFilter

    f = StartupLogFilter(grace_s=0.0)
    assert f.filter(_record("[Error 15] GroupCoordinatorNotAvailableError")) is True
    assert StartupLogFilter(grace_s=60).filter(
        _record("[Error 15] GroupCoordinatorNotAvailableError")) is False


@pytest.mark.parametrize(("t_s", "text"), [(-0.4, "0s / 60s (warmup)"), (-0.0, "0s / 60s (warmup)"),
                                           (12.6, "13s / 60s (warmup)")])
def test_loadtest_elapsed_never_prints_minus_zero(t_s: float, text: str) -> None:
    sys.path.insert(0, str(ROOT))
    from loadtests.loadtest._live import elapsed_text

    assert elapsed_text(t_s, 60, "warmup") == text


def test_writer_flag_error_agrees_with_one_flag_and_with_several() -> None:
    import argparse

    from metricflow.app import add_role_parsers, writer_flag_errors

    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers())

    def err(*argv: str) -> str:
        return writer_flag_errors(parser.parse_args(["writer", "--clickhouse", "chdb:///x",
                                                     *argv]))

    assert err("--auth", "on").startswith("metricflow writer: --auth only applies with "
                                          "--serve-query;")
    assert err("--auth", "on", "--rate-limit", "5").startswith(
        "metricflow writer: --auth, --rate-limit only apply with --serve-query;")
