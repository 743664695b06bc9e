"""The end of `make demo`: how to look at what was logged (server command, URL, a search).

The server command, then the web UI's address (the demo's experiment), and the HTTP
API for scripts: `/` lists what is served, `/docs` documents it, and a search the
user can paste. tests/integration/docs runs the printed commands against a real
server, so they cannot go stale.
"""

from __future__ import annotations

import shlex
from pathlib import Path

SEARCH_BODY = ('{"filter": "metrics.final_accuracy > 0.5", '
               '"order_by": ["metrics.final_accuracy DESC"], "max_results": 5}')
"""Runs of every experiment whose final accuracy passed 0.5, best first."""


SUMMARY = ('import json, sys; print(*("%s  %-10s final_accuracy=%s" % (r["info"]["run_id"], '
           'r["info"]["run_name"], r["metrics"]["final_accuracy"]["last_value"]) '
           'for r in json.load(sys.stdin)["runs"]), sep="\\n")')
"""One line per run of a search answer: a run carries every metric's summary (the demo
logs ~100 per run, ~14 KB of JSON), so the raw answer is no read for a terminal."""


def commands(data_dir: str, grpc_port: int = 50051, http_port: int = 5000,
             metricflow: str = ".venv/bin/metricflow") -> list[tuple[str, str]]:
    """(shell command, what it does) for looking at the demo's data."""
    base = f"http://127.0.0.1:{http_port}"
    python = metricflow.rsplit("/", 1)[0] + "/python" if "/" in metricflow else "python"
    return [
        (f"{metricflow} server --data-dir {shlex.quote(data_dir)}",
         f"the server (gRPC 127.0.0.1:{grpc_port}, HTTP {base}); Ctrl-C stops it"),
        (f"curl -s {base}/", "what is served where (JSON; a browser gets the web UI)"),
        (f"curl -s {base}/api/v1/runs/search -H 'content-type: application/json' "
         f"-d {shlex.quote(SEARCH_BODY)} | {python} -c {shlex.quote(SUMMARY)}",
         "search: the best runs by final accuracy (without the pipe: the whole JSON, "
         "every metric's summary)"),
    ]


def venv_tool(root: Path, name: str = "metricflow") -> str:
    """The checkout's venv tool, relative when run from the checkout (as `make demo`
    does), else absolute, so the printed commands work from where they were printed."""
    tool = root / ".venv" / "bin" / name
    try:
        return str(tool.relative_to(Path.cwd()))
    except ValueError:
        return str(tool)


def ui_url(experiment_id: str | None = None, http_port: int = 5000) -> str:
    """The web UI's page of the demo's runs (the experiments list without an id)."""
    base = f"http://127.0.0.1:{http_port}/"
    return base + (f"#/experiments/{experiment_id}" if experiment_id else "")


def text(data_dir: str, metricflow: str = ".venv/bin/metricflow",
         experiment_id: str | None = None) -> str:
    """The lines `make demo` prints last (the web UI's address is the last one)."""
    lines = ["", "Look at what was logged: start the server again, then query it from a "
                 "second terminal:"]
    for cmd, what in commands(data_dir, metricflow=metricflow):
        lines += [f"  # {what}", f"  {cmd}"]
    lines.append("  # API docs in a browser: http://127.0.0.1:5000/docs; the MLflow client "
                 "works too: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (docs/mlflow.md)")
    lines += ["", "With the server running, open the demo's runs in a browser (web UI):",
              f"  {ui_url(experiment_id)}"]
    return "\n".join(lines)
