"""The commands `make demo` prints last work as printed: server, `/`, and the search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from snippets import ROOT, Scenario, Snippet

sys.path.insert(0, str(ROOT / "examples"))
import demo_next_steps

pytestmark = pytest.mark.timeout(600)


def test_printed_commands_show_the_logged_runs(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "demo-data")
    (server, _), (index, _), (search, _) = demo_next_steps.commands(data_dir)
    assert "--data-dir" in server and "/api/v1/runs/search" in search
    assert all(c in demo_next_steps.text(data_dir) for c in (server, index, search))
    scenario = Scenario(tmp_path)
    try:
        # The printed server command, on free ports instead of 50051/5000 (snippets.py).
        scenario.run(Snippet("examples/demo_next_steps.py", 1, "demo", "sh", server + "\n"))
        uri = scenario.substitute("127.0.0.1:50051")
        log = (f"import metricflow as mf\nmf.set_tracking_uri('grpc://{uri}')\n"
               "mf.set_experiment('quickstart')\n"
               "for acc in (0.4, 0.92, 0.95):\n"
               "    with mf.start_run(run_name=f'acc={acc}'):\n"
               "        mf.log_metric('final_accuracy', acc, step=2500)\n")
        subprocess.run([sys.executable, "-c", log], check=True, timeout=300)
        out = subprocess.run(["bash", "-c", scenario.substitute(index)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        assert json.loads(out)["http"]["api_v1"]["path"] == "/api/v1"
        out = subprocess.run(["bash", "-c", scenario.substitute(search)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        # One readable line per run (the raw answer carries every metric's summary).
        rows = [line.split() for line in out.splitlines()]
        assert [row[1:] for row in rows] == [["acc=0.95", "final_accuracy=0.95"],
                                             ["acc=0.92", "final_accuracy=0.92"]], out
        assert all(len(row[0]) == 32 for row in rows), out
        # The last line printed: the web UI's page of the demo's experiment.
        import httpx

        import metricflow as mf
        with mf.Client(f"grpc://{uri}") as c:
            eid = c.get_or_create_experiment("quickstart")
        url = demo_next_steps.ui_url(eid)
        assert demo_next_steps.text(data_dir, experiment_id=eid).endswith(url)
        page = httpx.get(scenario.substitute(url.split("#")[0]),
                         headers={"accept": "text/html"})
        assert page.status_code == 200 and '<div id="app">' in page.text
    finally:
        scenario.stop()


def test_printed_commands_work_from_where_the_demo_ran(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Run from the checkout (make demo), the venv path is relative; from anywhere else it
    # is absolute (a relative `.venv/bin/metricflow` printed in /tmp was not found: rc 127).
    monkeypatch.chdir(ROOT)
    assert demo_next_steps.venv_tool(ROOT) == ".venv/bin/metricflow"
    monkeypatch.chdir(tmp_path)
    tool = demo_next_steps.venv_tool(ROOT)
    assert tool == str(ROOT / ".venv" / "bin" / "metricflow") and Path(tool).exists()
    assert f"{tool} server --data-dir" in demo_next_steps.text(str(tmp_path), tool)
