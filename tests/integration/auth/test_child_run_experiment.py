"""A child run that inherits its parent's experiment needs EDIT there (issue 22 item 2).

The guard checks the request's experiment; a request without one is checked against
Default, so the inherited experiment is checked where the run is created.
"""

from __future__ import annotations

import pytest

from metricflow.errors import NotFound, PermissionDenied


def test_inheriting_the_parents_experiment_needs_edit_on_it(secured) -> None:
    a = secured.client("admin")
    c = secured.client("carol")
    try:
        eid = a.get_or_create_experiment("parents-only")
        parent = a.create_run(eid).run_id
        secured.store.set_experiment_permission("0", "carol", "EDIT", actor="admin")
        # carol cannot read the experiment either: it is hidden (NotFound), as elsewhere
        with pytest.raises((PermissionDenied, NotFound)):
            c.create_run("", parent_run_id=parent)
        secured.store.set_experiment_permission(eid, "carol", "READ", actor="admin")
        with pytest.raises(PermissionDenied):
            c.create_run("", parent_run_id=parent)
        secured.store.set_experiment_permission(eid, "carol", "EDIT", actor="admin")
        child = c.create_run("", parent_run_id=parent)
        assert child.info.experiment_id == eid
        assert a.get_run(child.run_id).info.experiment_id == eid
    finally:
        a.close()
        c.close()
