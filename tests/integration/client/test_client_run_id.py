"""Client.create_run(run_id=...): a client-chosen id, as the Optuna integration derives one."""

from __future__ import annotations

import uuid

import pytest

from metricflow.errors import InvalidArgument


def test_a_chosen_run_id_is_the_runs_id(client) -> None:  # type: ignore[no-untyped-def]
    run_id = uuid.uuid4().hex
    run = client.create_run("0", run_name="chosen", run_id=run_id)
    assert run.info.run_id == run_id
    assert client.get_run(run_id).info.run_name == "chosen"


def test_a_malformed_run_id_names_the_field(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="run_id must be 32 lowercase hex"):
        client.create_run("0", run_id="not-an-id")
