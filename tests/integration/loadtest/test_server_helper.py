"""The benchmarks' server helper (loadtests/_server.py) removes the data directory it
made when the server stops, and keeps one it was given (a benchmark that restarts a
server on its data). Benchmarks had left ~60 MB per server in the temp dir."""

from __future__ import annotations

import os
from pathlib import Path

from loadtests._server import start_server


def test_a_made_data_dir_is_removed_and_a_given_one_kept(tmp_path: Path) -> None:
    made = start_server()
    assert made.owns_data and os.path.isdir(made.data_dir)
    made.stop()
    assert not os.path.exists(made.data_dir)
    given = start_server(str(tmp_path / "data"))
    given.stop()
    assert not given.owns_data and (tmp_path / "data").is_dir()
