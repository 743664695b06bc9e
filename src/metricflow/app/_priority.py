"""A role's CPU priority: the alerts role yields the CPU to the roles it must not slow.

On Linux a nice value belongs to a thread, and a thread starts with its creator's: so
every thread the process has is set, and those it starts later inherit the value. An
unprivileged process may raise its nice value but never lower it again, so this only
ever raises it.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("metricflow.app")

NICE_MAX = 19


def lower_priority(nice: int) -> int:
    """Raise the nice value of every thread of this process to at least `nice` (0-19).

    Returns the calling thread's value afterwards (the old one where the platform
    offers no way to set it)."""
    if not 0 <= nice <= NICE_MAX:
        raise ValueError(f"nice must be in [0, {NICE_MAX}], got {nice}")
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the process's value (every thread, where per process)
        tids = [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (OSError, AttributeError) as e:  # a thread that ended meanwhile; no API
            log.debug("nice %d for thread %d: %s", nice, tid, e)
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):
        return 0
