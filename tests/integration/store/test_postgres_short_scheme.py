"""`postgres://` (libpq's spelling, which the URI registry accepts) opens the control
plane on a real PostgreSQL like `postgresql+psycopg://` does."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import make_url


def test_postgres_scheme_opens_the_metadata_store(
        make_postgres_database: Callable[[], str]) -> None:
    from metricflow.app import open_metadata

    url = make_url(make_postgres_database())
    short = url.set(drivername="postgres").render_as_string(hide_password=False)
    assert short.startswith("postgres://")
    md = open_metadata(short)
    try:
        exp_id = md.create_experiment("via-postgres-scheme")
        assert md.get_experiment(exp_id).name == "via-postgres-scheme"
    finally:
        md.close()
