"""aiokafka's consumer-group INFO chatter is DEBUG in the writer; warnings stay visible."""

from __future__ import annotations

import logging

import pytest

from metricflow.ingest._startup_log import CONSUMER_LOGGERS, DemoteInfo


@pytest.mark.parametrize("name", CONSUMER_LOGGERS)
def test_info_is_dropped_warnings_and_errors_pass(name: str, caplog) -> None:  # type: ignore[no-untyped-def]
    logger = logging.getLogger(name)
    f = DemoteInfo().install()
    try:
        with caplog.at_level(logging.INFO):
            logger.info("Setting newly assigned partitions %s", "{...}" * 300)
            logger.warning("Heartbeat failed for group g because it is rebalancing")
            logger.error("Group Coordinator Request failed: [Error 7] RequestTimedOutError")
    finally:
        f.remove()
    got = [(r.name, r.levelname) for r in caplog.records if r.name == name]
    assert got == [(name, "WARNING"), (name, "ERROR")]


def test_debug_logging_still_shows_them_as_debug(caplog) -> None:  # type: ignore[no-untyped-def]
    logger = logging.getLogger(CONSUMER_LOGGERS[0])
    f = DemoteInfo().install()
    try:
        with caplog.at_level(logging.DEBUG, logger=CONSUMER_LOGGERS[0]):
            logger.info("Joined group 'g' (generation 3)")
    finally:
        f.remove()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "Joined group 'g' (generation 3)")]


def test_remove_restores_them(caplog) -> None:  # type: ignore[no-untyped-def]
    logger = logging.getLogger(CONSUMER_LOGGERS[0])
    DemoteInfo().install().remove()
    with caplog.at_level(logging.INFO):
        logger.info("Joined group")
    assert [r.levelname for r in caplog.records] == ["INFO"]
