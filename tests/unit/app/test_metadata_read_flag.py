"""--metadata-read (METRICFLOW_METADATA_READ_URI): the query role's read replica."""

from __future__ import annotations

import argparse

import pytest

from metricflow.app import add_role_parsers, open_metadata, settings_from_args
from metricflow.errors import InvalidArgument

PRIMARY = "postgresql+psycopg://postgres@10.0.0.1/mf"
REPLICA = "postgresql+psycopg://postgres@10.0.0.2/mf"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_the_query_role_takes_a_read_replica_flag() -> None:
    cfg = settings_from_args(_parse("query", "--clickhouse", "chdb:///tmp/unused",
                                    "--metadata", PRIMARY, "--metadata-read", REPLICA))
    assert cfg.metadata_uri == PRIMARY
    assert cfg.metadata_read_uri == REPLICA
    plain = settings_from_args(_parse("query", "--clickhouse", "chdb:///tmp/unused"))
    assert plain.metadata_read_uri == ""


def test_the_env_variable_is_the_flags_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_METADATA_READ_URI", REPLICA)
    cfg = settings_from_args(_parse("query", "--clickhouse", "chdb:///tmp/unused"))
    assert cfg.metadata_read_uri == REPLICA


@pytest.mark.parametrize("role", ["server", "ingest", "writer", "registry"])
def test_roles_that_write_do_not_take_it(role: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    with pytest.raises(SystemExit):
        _parse(role, "--clickhouse", "chdb:///tmp/unused", "--metadata-read", REPLICA)
    assert "unrecognized arguments: --metadata-read" in capsys.readouterr().err


def test_a_replica_of_another_kind_of_database_is_refused_before_opening() -> None:
    with pytest.raises(InvalidArgument) as ei:
        open_metadata(PRIMARY, read_uri="sqlite:////tmp/replica.db")
    msg = str(ei.value)
    assert "--metadata-read" in msg and "postgresql" in msg and "'sqlite'" in msg
    assert ei.value.details["received"] == "sqlite:////tmp/replica.db"
