"""A role's CPU priority: the alerts role yields the CPU to the roles it must not slow.

On Linux a nice value belongs to a thread, and a thread starts with its creator's: so
every thread the process has is set, and those it starts later inherit the value. An
unprivileged process may raise its nice value but never lower it again, so this only
ever raises it. A nice value weighs a thread against the others of its scheduling group
only: processes in other cgroups (separate services, containers) or, with the kernel's
autogroup, other sessions are weighed as groups (docs/alerts.md).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("metricflow.app")

NICE_MAX = 19


def _thread_ids() -> list[int]:
    """This process's thread ids, or [0] (the calling thread) where /proc cannot say:
    not Linux, or a /proc of another PID namespace (its ids name other processes)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            raise OSError("/proc is another PID namespace's")
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError as e:
        log.warning("nice: thread ids unknown (%s): only the calling thread is set", e)
        return [0]


def lower_priority(nice: int) -> int:
    """Raise the nice value of every thread of this process to at least `nice` (0-19).

    Returns the calling thread's value afterwards (the old one where the platform
    offers no way to set it)."""
    if not 0 <= nice <= NICE_MAX:
        raise ValueError(f"nice must be in [0, {NICE_MAX}], got {nice}")
    done: set[int] = set()
    for _ in range(5):  # a thread started meanwhile by one not yet set: look again
        tids = [t for t in _thread_ids() if t not in done]
        if not tids:
            break
        for tid in tids:
            done.add(tid)
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
            except (OSError, AttributeError) as e:  # a thread that ended meanwhile; no API
                log.debug("nice %d for thread %d: %s", nice, tid, e)
        if tids == [0]:
            break
    try:
        got = os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):
        got = 0
    (log.info if got >= nice else log.warning)("nice %d (asked: %d)", got, nice)
    return got
