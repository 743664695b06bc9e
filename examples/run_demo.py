"""`make demo`: start the embedded server, run examples/quickstart.py, stop the server.

Data lives under ./metricflow-data (override with --data-dir or METRICFLOW_DATA_DIR).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests._server import start_server  # noqa: E402
from metricflow.server._preflight import chdb_owner  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run_demo.py", description="Start the embedded metricflow server, log the "
        "quickstart (four worker processes, 1M points) to it, stop it, and print how to "
        "look at the data. `make demo` runs this.")
    p.add_argument("--data-dir", default=os.environ.get("METRICFLOW_DATA_DIR")
                   or str(ROOT / "metricflow-data"),
                   help="where the server keeps its data (default: METRICFLOW_DATA_DIR, "
                        "else ./metricflow-data of the checkout)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    data_dir = os.path.abspath(parse_args(argv).data_dir)
    owner = chdb_owner(os.path.join(data_dir, "clickhouse"))
    if owner is not None:
        print(f"make demo: data dir {data_dir} is in use by pid {owner or '?'} (a running "
              "metricflow server?); stop it, or run the demo on another dir: "
              "METRICFLOW_DATA_DIR=/tmp/metricflow-demo make demo", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        srv = start_server(data_dir=data_dir)
    except RuntimeError as e:  # the server's own one-line reason is in the message
        print(f"make demo: {e}", file=sys.stderr)
        return 1
    print(f"metricflow server up in {time.perf_counter() - t0:.1f}s: {srv.uri} "
          f"(HTTP on 127.0.0.1:{srv.http_port}), data in {data_dir}; auth off, loopback only")
    try:
        env = dict(os.environ, METRICFLOW_TRACKING_URI=srv.uri)
        rc = subprocess.call([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                             env=env)
        experiment_id = quickstart_experiment(srv.uri) if rc == 0 else None
    finally:
        srv.stop()
        print(f"server stopped; demo took {time.perf_counter() - t0:.1f}s")
    if rc == 0:
        from demo_next_steps import text, venv_tool

        print(text(data_dir, venv_tool(ROOT), experiment_id))
    return rc


def quickstart_experiment(uri: str) -> str | None:
    """The id of the experiment quickstart.py logged to (the web UI's page of it)."""
    import metricflow as mf

    try:
        with mf.Client(uri) as c:
            return c.get_or_create_experiment("quickstart")
    except Exception as e:  # the URL without an id still opens the experiments list
        print(f"make demo: could not look up the quickstart experiment: {e}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
