"""Quiet aiokafka's consumer-group logging: expected errors at start, INFO chatter always.

A broker answers GroupCoordinatorNotAvailable until the group coordinator is
loaded (on a fresh broker: until __consumer_offsets exists), and aiokafka logs
each retry at ERROR. At a normal writer start that is two ERROR lines about
nothing. StartupLogFilter turns them into one INFO line while the writer joins,
for at most `grace_s`: a coordinator that stays unavailable longer is a real
failure, and from then on every such line shows as aiokafka logs it. DemoteInfo
turns aiokafka's per-rebalance INFO lines into DEBUG.
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


__all__ = ["CONSUMER_LOGGERS", "COORDINATOR_LOGGER", "DemoteInfo", "StartupLogFilter"]
