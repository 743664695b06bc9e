"""Quiet aiokafka's consumer-group logging: expected errors at start, INFO chatter always.

A broker answers GroupCoordinatorNotAvailable until the group coordinator is
loaded (on a fresh broker: until __consumer_offsets exists), and aiokafka logs
each retry at ERROR. At a normal writer start that is two ERROR lines about
nothing. StartupLogFilter turns them into one INFO line while the writer joins,
for at most `grace_s`: a coordinator that stays unavailable longer is a real
failure, and from then on every such line shows as aiokafka logs it. DemoteInfo
turns aiokafka's per-rebalance INFO lines into DEBUG. RepeatLimit lets each of
aiokafka's connection errors through once per `every_s` while Kafka is unreachable.
"""

from __future__ import annotations

import logging
import time

COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
_EXPECTED = ("GroupCoordinatorNotAvailableError",)


class StartupLogFilter(logging.Filter):
    """Drops expected coordinator errors until `done()` or `grace_s`; counts them."""

    def __init__(self, grace_s: float = 30.0, note: logging.Logger | None = None) -> None:
        super().__init__()
        self.until = time.monotonic() + grace_s
        self.dropped = 0
        self._note = note
        self._logger: logging.Logger | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.levelno < logging.ERROR or time.monotonic() >= self.until
                or not any(e in record.getMessage() for e in _EXPECTED)):
            return True
        self.dropped += 1
        if self.dropped == 1 and self._note is not None:
            self._note.info("waiting for the Kafka group coordinator (%s while it starts)",
                            record.getMessage().rsplit(" ", 1)[-1])
        return False

    def install(self) -> StartupLogFilter:
        self._logger = logging.getLogger(COORDINATOR_LOGGER)
        self._logger.addFilter(self)
        return self

    def done(self) -> None:
        """The group was joined (or the consumer stopped): let every line through again."""
        if self._logger is not None:
            self._logger.removeFilter(self)
            self._logger = None


CONSUMER_LOGGERS = (COORDINATOR_LOGGER, "aiokafka.consumer.subscription_state",
                    "aiokafka.consumer.consumer")
"""aiokafka's consumer-group loggers: about ten INFO lines per rebalance, one of them
the whole partition list (over 1,000 characters on a 64-partition topic)."""


class DemoteInfo(logging.Filter):
    """aiokafka's consumer-group INFO lines become DEBUG; WARNING and ERROR pass as they are.

    The writer logs one line of its own per rebalance instead (partitions assigned).
    A logger set to DEBUG still shows the demoted lines, labelled DEBUG.
    """

    def __init__(self) -> None:
        super().__init__()
        self._loggers: list[logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True

    def install(self, names: tuple[str, ...] = CONSUMER_LOGGERS) -> DemoteInfo:
        for name in names:
            logger = logging.getLogger(name)
            logger.addFilter(self)
            self._loggers.append(logger)
        return self

    def remove(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers = []


class RepeatLimit(logging.Filter):
    """The same WARNING or ERROR line of aiokafka's client at most once per `every_s`.

    While the broker is down, aiokafka's client logs "Unable connect to node with id 1"
    and "Unable to update metadata from [1]" at ERROR on each metadata attempt: up to
    12,000 lines a second from an ingest node under load before its producer's attempts
    were paced (`pace_metadata_updates`), 1.36 million in one node's log over an
    operator's probe; since then a producer tries at most every 100 ms. The first of each
    passes at once, so an outage shows when it starts;
    the next one passes `every_s` later, saying how many like it were dropped.
    """

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._seen: dict[str, tuple[float, int]] = {}  # message template -> (shown at, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = str(record.msg)
        now = time.monotonic()
        shown, dropped = self._seen.get(key, (-self.every_s, 0))
        if now - shown < self.every_s:
            self._seen[key] = (shown, dropped + 1)
            return False
        if len(self._seen) > 1000:  # templates are few; never grow without bound
            self._seen.clear()
        self._seen[key] = (now, 0)
        if dropped:
            record.msg = (f"{record.getMessage()} ({dropped} more like it in the last "
                          f"{now - shown:.0f} s)")
            record.args = ()
        return True


CLIENT_LOGGER = "aiokafka"
"""aiokafka's client (connections, metadata) logs under the package's own name."""
_REPEAT_LIMIT = RepeatLimit()


def limit_client_errors() -> None:
    """Install the one RepeatLimit on aiokafka's client logger (idempotent)."""
    logger = logging.getLogger(CLIENT_LOGGER)
    if _REPEAT_LIMIT not in logger.filters:
        logger.addFilter(_REPEAT_LIMIT)


__all__ = ["CLIENT_LOGGER", "CONSUMER_LOGGERS", "COORDINATOR_LOGGER", "DemoteInfo",
           "RepeatLimit", "StartupLogFilter", "limit_client_errors"]
