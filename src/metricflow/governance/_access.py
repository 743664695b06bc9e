"""What the caller of the request being served may read, for governance answers that
show data of objects other than the one the call was authorized on (a version's source
run in a policy message or a lineage graph)."""

from __future__ import annotations

from metricflow.auth import Permission, current
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
    # Not `authz.check`: for a run the caller may not read it waits (run_wait_s, 5 s on
    # the server roles) so that hidden and missing runs take the same time, and this is
    # asked inside a policy check (a write transaction) to decide what a message shows.
    exp = authz.runs.get(run_id)
    if exp is None:
        exp = authz.lookup_now([run_id]).get(run_id)
    if exp is None:
        return False
    try:
        return authz.experiment_level(p, exp) >= Permission.READ
    except MetricflowError:
        return False
