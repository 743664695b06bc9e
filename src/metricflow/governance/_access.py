"""What the caller of the request being served may read, for governance answers that
show data of objects other than the one the call was authorized on (a version's source
run in a policy message or a lineage graph)."""

from __future__ import annotations

from metricflow.auth import Need, Permission, current
from metricflow.errors import MetricflowError


def caller_reads_run(run_id: str) -> bool:
    """True with auth off, for admins, and for callers who may READ the run; a run that
    does not exist (or cannot be looked up) counts as unreadable."""
    cur = current()
    if cur is None or cur[0].admin:
        return True
    if not run_id:
        return False
    p, authz = cur
    try:
        authz.check(p, [Need("run", run_id, Permission.READ)])
    except MetricflowError:
        return False
    return True
