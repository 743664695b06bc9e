"""aiokafka's connection errors while Kafka is down: each once per interval, with a count."""

from __future__ import annotations

import logging

from metricflow.ingest._startup_log import CLIENT_LOGGER, RepeatLimit, limit_client_errors


def test_repeated_client_errors_pass_once_per_interval_with_a_count(monkeypatch) -> None:
    import metricflow.ingest._startup_log as sl

    now = [100.0]
    monkeypatch.setattr(sl.time, "monotonic", lambda: now[0])
    lim = RepeatLimit(every_s=10.0)

    def rec(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(CLIENT_LOGGER, level, __file__, 1, msg, args, None)

    conn = "Unable connect to node with id %s: %s"
    first = rec(conn, 1, "[Errno 111] Connection refused")
    assert lim.filter(first) and first.getMessage().endswith("Connection refused")
    dropped = 0
    for _ in range(99):  # every 100 ms for ~10 s, as aiokafka does
        now[0] += 0.1
        dropped += not lim.filter(rec(conn, 1, "[Errno 111] Connection refused"))
    assert dropped == 99
    # another template is limited on its own
    assert lim.filter(rec("Unable to update metadata from %s", [1]))
    now[0] += 0.2
    later = rec(conn, 1, "[Errno 111] Connection refused")
    assert lim.filter(later)
    assert later.getMessage() == ("Unable connect to node with id 1: [Errno 111] Connection "
                                  "refused (99 more like it in the last 10 s)")
    assert lim.filter(rec(conn, 1, "x", level=logging.INFO))  # below WARNING: untouched


def test_installed_once_on_aiokafkas_client_logger() -> None:
    logger = logging.getLogger(CLIENT_LOGGER)
    before = list(logger.filters)
    try:
        limit_client_errors()
        limit_client_errors()
        added = [f for f in logger.filters if f not in before]
        assert len([f for f in logger.filters if isinstance(f, RepeatLimit)]) == 1
        assert len(added) <= 1
    finally:
        logger.filters[:] = before


def test_an_interval_of_zero_lets_everything_through() -> None:
    lim = RepeatLimit(every_s=0.0)
    r = logging.LogRecord(CLIENT_LOGGER, logging.ERROR, __file__, 1, "x %s", (1,), None)
    assert all(lim.filter(r) for _ in range(5))
