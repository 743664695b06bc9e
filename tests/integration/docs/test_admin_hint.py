"""The auth-on start hint names the server's own store, and following it works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from snippets import Scenario, Snippet

pytestmark = pytest.mark.timeout(600)


def test_no_users_hint_creates_the_user_where_the_server_looks(tmp_path: Path) -> None:
    data_dir = tmp_path / "custom data"  # not the default dir, and a name to quote
    scenario = Scenario(tmp_path)
    try:
        scenario.run(Snippet("(test)", 1, "hint", "sh",
                             f"metricflow server --data-dir '{data_dir}' --auth on\n"))
        log = next(p for _, _, p in scenario.procs).read_text()
        m = re.search(r"`(metricflow admin .* user create NAME --admin)`", log)
        assert m, log[-3000:]
        hint = m.group(1)
        assert f"--data-dir '{data_dir}'" in hint
        bindir = Path(sys.executable).parent
        subprocess.run(["bash", "-c", f"{bindir}/{hint.replace('NAME', 'root')}"],
                       check=True, timeout=120, capture_output=True)
        token_cmd = hint.replace("user create NAME --admin", "token create root")
        out = subprocess.run(["bash", "-c", f"{bindir}/{token_cmd}"], check=True, timeout=120,
                             capture_output=True, text=True).stdout
        token = re.search(r'"token": "([^"]+)"', out).group(1)  # type: ignore[union-attr]
        # The running server accepts it: the user was created in its store.
        import metricflow as mf

        c = mf.Client(f"grpc://{scenario.substitute('127.0.0.1:50051')}", token=token)
        try:
            assert c.get_or_create_experiment("hint-followed")
        finally:
            c.close()
    finally:
        scenario.stop()
