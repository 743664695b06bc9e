"""MLflow 3.17.2's metadata length limits hold on every control-plane backend (SQLite,
PostgreSQL: revision 0004 widens the columns)."""

from __future__ import annotations

import pytest

from metricflow.errors import InvalidArgument


def test_mlflow_lengths_fit_every_backend(store) -> None:  # type: ignore[no-untyped-def]
    name = "e" * 500
    exp = store.create_experiment(name, tags={"mlflow.note.content": "n" * 20000})
    got = store.get_experiment(exp)
    assert got.name == name and got.tags["mlflow.note.content"] == "n" * 20000
    with pytest.raises(InvalidArgument, match="limit is 500"):
        store.create_experiment("f" * 501)
    with pytest.raises(InvalidArgument, match="limit is 20000"):
        store.set_experiment_tag(exp, "k", "n" * 20001)
    store.create_registered_model("m", tags={"k": "v" * 100000})
    mv = store.create_model_version("m", "s3://b/x", tags={"k": "w" * 100000})
    assert store.get_registered_model("m").tags["k"] == "v" * 100000
    assert store.get_model_version("m", mv.version).tags["k"] == "w" * 100000
    with pytest.raises(InvalidArgument, match="limit is 100000"):
        store.set_registered_model_tag("m", "k", "v" * 100001)
    with pytest.raises(InvalidArgument, match="Names cannot contain"):
        store.create_registered_model("a/b")
