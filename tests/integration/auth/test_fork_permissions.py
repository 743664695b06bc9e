"""Forks under auth: the parent must be readable, and an inherited experiment editable.

A fork reads its parent's history, so CreateRun with fork_from needs READ on the parent
(a hidden parent answers exactly like a missing one); a fork without an experiment goes
to its parent's, which then needs EDIT (the guard checked Default). Review of issue 18.
"""

from __future__ import annotations

import uuid

import pytest

from metricflow.errors import NotFound, PermissionDenied


def test_fork_needs_read_on_the_parent_and_edit_where_it_goes(secured) -> None:
    a = secured.client("admin")
    c = secured.client("carol")
    try:
        secret = a.get_or_create_experiment(f"secret-{uuid.uuid4().hex[:6]}")
        own = a.get_or_create_experiment(f"carols-{uuid.uuid4().hex[:6]}")
        parent = a.create_run(secret).run_id
        for step in range(50):
            a.log_metric(parent, "secret_loss", 7.0 * step, step=step)
        a.flush()
        secured.store.set_experiment_permission(own, "carol", "EDIT", actor="admin")
        secured.store.set_experiment_permission("0", "carol", "EDIT", actor="admin")
        # hidden parent: the same answer as a run that does not exist
        with pytest.raises(NotFound) as hidden:
            c.create_run(own, fork_from=parent, fork_step=49)
        nobody = uuid.uuid4().hex
        with pytest.raises(NotFound) as missing:
            c.create_run(own, fork_from=nobody, fork_step=49)
        assert str(hidden.value).replace(parent, "ID") == str(missing.value).replace(nobody,
                                                                                     "ID")
        # READ on the parent: a fork into carol's own experiment reads the history
        secured.store.set_experiment_permission(secret, "carol", "READ", actor="admin")
        fork = c.create_run(own, fork_from=parent, fork_step=49).run_id
        assert len(c.get_metric_history(fork, "secret_loss").steps) == 50
        # no experiment given: the fork goes to the parent's, which needs EDIT there
        with pytest.raises(PermissionDenied):
            c.create_run("", fork_from=parent, fork_step=10)
        secured.store.set_experiment_permission(secret, "carol", "EDIT", actor="admin")
        inherited = c.create_run("", fork_from=parent, fork_step=10)
        assert inherited.info.experiment_id == secret
    finally:
        a.close()
        c.close()
