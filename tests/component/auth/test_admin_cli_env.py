"""`metricflow admin` opens the control plane METRICFLOW_METADATA_URI names (the one
every role uses), not <data dir>/metadata.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from metricflow.server.cli import main


def test_admin_user_create_uses_env_metadata(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METRICFLOW_DATA_DIR", raising=False)
    shared = tmp_path / "shared.db"
    monkeypatch.setenv("METRICFLOW_METADATA_URI", f"sqlite:///{shared}")
    assert main(["admin", "user", "create", "root", "--admin"]) == 0
    assert shared.exists()
    assert not (tmp_path / "metricflow-data" / "metadata.db").exists()
    from metricflow.auth._store import AuthStore
    from metricflow.store.metadata import open_metadata_store

    md = open_metadata_store(f"sqlite:///{shared}")
    try:
        assert [u.username for u in AuthStore(md.engine).list_users()] == ["root"]
    finally:
        md.close()
