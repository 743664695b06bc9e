#!/usr/bin/env python
"""Run MLflow's own REST server tests against `metricflow server` and against MLflow.

Outside CI; fetches nothing. `--mlflow-tests` is a directory holding MLflow's
`tests/` tree: at least `tests/tracking/test_rest_tracking.py`,
`tests/tracking/test_model_registry.py` and the modules they import
(`tests/helper_functions.py`, `tests/tracking/integration_test_utils.py`,
`tests/integration/utils.py`, `tests/conftest.py`, `tests/autologging/fixtures.py`,
`tests/tracing/helper.py`, the `__init__.py` files). docs/mlflow.md says which
MLflow commit was used.

The test files run unchanged. Only the server start is swapped: this file is
also a pytest plugin (`-p mlflow_conformance`) that replaces, in each collected
test module, the names its server fixtures use to start MLflow's app
(`ServerThread`, `initialize_backend_stores`, `_init_server`):

* metricflow: a fresh `metricflow server --data-dir <new dir> --auth off` per test
  on the port the fixture asks for (`MFCONF_METRICFLOW` overrides the command; the
  next test's server is started while a test runs, `MFCONF_PREWARM` of them).
* MLflow (the baseline, installed mlflow): by default MLflow's own fixture,
  unchanged (its FastAPI app in a thread over the fixture's SQLite store);
  `--mlflow-mode subprocess` starts an `mlflow server` per test instead (slow: it
  also starts job workers; ~2 minutes per start on a loaded 2-core machine).

Only the `sqlalchemy` parametrization runs by default (MLflow's `file` store is
deprecated; against metricflow both would be the same run); `--stores both`
runs both. Tests that never start a server are reported apart. Tests of MLflow's
GenAI surface (`GENAI_PATTERNS`, listed in docs/mlflow.md) are counted apart.

    python scripts/mlflow_conformance.py --mlflow-tests /path/to/mlflow-checkout \
        --out /tmp/conformance                      # both systems
    python scripts/mlflow_conformance.py --mlflow-tests ... --out /tmp/c2 \
        --baseline-from /tmp/conformance --shards 2 # metricflow only, on the tests
                                                    # that passed on MLflow

prints pass/fail counts per system, the ratio, and every test that passes on
MLflow and fails on metricflow with its last error line (also summary.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEST_FILES = ("tests/tracking/test_rest_tracking.py", "tests/tracking/test_model_registry.py")

# GenAI surface metricflow does not serve (docs/mlflow.md, "Conformance"): traces,
# spans, assessments, scorers, evaluation datasets, gateway, prompts/prompt-lab,
# webhooks, workspaces, jobs, judges. Matched against the test function name.
GENAI_PATTERNS = (
    r"trace", r"span", r"assessment", r"scorer", r"evaluation_dataset", r"genai",
    r"gateway", r"prompt", r"webhook", r"workspace", r"judge", r"_job", r"jobs",
    r"otel", r"otlp", r"dataset_records", r"create_dataset", r"get_dataset",
    r"search_datasets", r"delete_dataset", r"dataset_experiment", r"dataset_tag",
    r"labeling", r"review_queue", r"issue", r"session", r"online_scoring", r"secret",
    r"budget", r"guardrail", r"insight", r"chat",
    # evaluation datasets linked to experiments (mlflow.genai.datasets)
    r"experiments_rest_tracking", r"experiments_at_once",
)
_GENAI_RE = re.compile("|".join(GENAI_PATTERNS))


def is_genai(nodeid: str) -> bool:
    name = nodeid.split("::")[-1].split("[")[0]
    return bool(_GENAI_RE.search(name))


# --------------------------------------------------------------------------- plugin
# Everything below up to main() runs inside the pytest process (`-p mlflow_conformance`).

_STATE: dict[str, Any] = {"started": False, "backend": None, "root": None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class _Subprocess:
    """A server subprocess on a given port, stopped on exit."""

    def __init__(self, port: int, backend_uri: str | None = None,
                 artifact_root: str | None = None, extra_env: dict[str, Any] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.system = os.environ.get("MFCONF_SYSTEM", "metricflow")
        self.backend_uri = backend_uri
        self.artifact_root = artifact_root
        self.extra_env = {k: str(v) for k, v in (extra_env or {}).items()}
        self.dir = tempfile.mkdtemp(prefix=f"mfconf-{self.system}-")
        self.proc: subprocess.Popen[bytes] | None = None

    def _cmd(self) -> list[str]:
        bindir = os.path.dirname(sys.executable)
        if self.system == "metricflow":
            exe = os.environ.get("MFCONF_METRICFLOW") or shutil.which("metricflow", path=bindir)
            return [exe or "metricflow", "server", "--data-dir", os.path.join(self.dir, "data"),
                    "--host", "127.0.0.1", "--http-port", str(self.port),
                    "--grpc-port", str(_free_port()), "--auth", "off"]
        exe = shutil.which("mlflow", path=bindir) or "mlflow"
        backend = self.backend_uri or f"sqlite:///{self.dir}/mlflow.db"
        root = self.artifact_root or Path(self.dir, "artifacts").as_uri()
        return [exe, "server", "--backend-store-uri", backend, "--default-artifact-root", root,
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]

    def start(self) -> None:
        env = {**os.environ, **self.extra_env}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(self._cmd(), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=os.getcwd())

    def __enter__(self) -> str:
        _STATE["started"] = True
        if self.proc is None:
            self.start()
        assert self.proc is not None
        deadline = time.monotonic() + float(os.environ.get("MFCONF_START_TIMEOUT", "180"))
        while not _healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                tail = Path(self.dir, "server.log").read_bytes()[-2000:].decode(errors="replace")
                raise RuntimeError(f"{self.system} server did not start:\n{tail}")
            time.sleep(0.1)
        return self.url

    def __exit__(self, *exc: object) -> None:
        # The server's data is thrown away, so it is killed, not shut down gracefully
        # (a graceful stop takes seconds per test), and reaped in the background.
        proc = self.proc

        def reap() -> None:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if hasattr(self, "log"):
                self.log.close()
            if not os.environ.get("MFCONF_KEEP_LOGS"):
                shutil.rmtree(self.dir, ignore_errors=True)

        t = threading.Thread(target=reap, daemon=False)
        t.start()
        _REAPERS.append(t)


_SPARE: list[_Subprocess] = []
_REAPERS: list[threading.Thread] = []


def _spawn_spare() -> None:
    """metricflow only: start the next test's server while this test runs.

    Each test still gets a fresh server (new data dir); only its start-up overlaps
    the previous test. MLflow's baseline keeps the fixture's own backend URI, so it
    is started on demand.
    """
    if os.environ.get("MFCONF_SYSTEM") != "metricflow" or os.environ.get("MFCONF_PREWARM") == "0":
        return
    want = int(os.environ.get("MFCONF_PREWARM", "1"))
    while len(_SPARE) < want:
        spare = _Subprocess(_free_port())
        spare.start()
        _SPARE.insert(0, spare)  # the oldest (most started) is popped first


class ServerThread:
    """Stands in for MLflow's `tests.tracking.integration_test_utils.ServerThread`."""

    def __init__(self, app: object, port: int) -> None:
        self._server = _SPARE.pop() if _SPARE else _Subprocess(port, _STATE["backend"],
                                                                _STATE["root"])
        self.url = self._server.url

    def __enter__(self) -> str:
        url = self._server.__enter__()
        _spawn_spare()
        return url

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)


def initialize_backend_stores(backend_store_uri: str | None = None,
                              registry_store_uri: str | None = None,
                              default_artifact_root: str | None = None,
                              *args: object, **kwargs: object) -> None:
    """Records what the fixture would have served; the subprocess server gets it."""
    _STATE["backend"] = backend_store_uri
    _STATE["root"] = default_artifact_root


@contextlib.contextmanager
def _init_server(backend_uri: str, root_artifact_uri: str,
                 extra_env: dict[str, Any] | None = None, app: str | None = None,
                 server_type: str = "fastapi") -> Iterator[str]:
    backend = backend_uri if not backend_uri.startswith("http") else None
    root = root_artifact_uri if not root_artifact_uri.startswith("http") else None
    with _Subprocess(_free_port(), backend, root, extra_env) as url:
        yield url


def pytest_configure(config: Any) -> None:
    # MLflow's tests/conftest.py and the installed mlflow can differ by a few helper
    # names; shim the ones its autouse fixtures call so the tests themselves run.
    from mlflow.utils import workspace_context

    if not hasattr(workspace_context, "clear_workspace"):
        workspace_context.clear_workspace = lambda: workspace_context.set_workspace(None)  # type: ignore[attr-defined]


def _noting(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        _STATE["started"] = True
        return factory(*args, **kwargs)
    return make


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    stores = os.environ.get("MFCONF_STORES", "sqlalchemy")
    only = None
    if os.environ.get("MFCONF_ONLY"):
        # one node id a line (ids can hold spaces: parametrized filter strings)
        only = {x for x in Path(os.environ["MFCONF_ONLY"]).read_text().splitlines() if x}
    keep = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if stores != "both" and any(params.get(k) == "file" for k in ("store_type", "client")):
            continue
        if only is not None and item.nodeid not in only:
            continue
        keep.append(item)
    items[:] = keep
    patched = set()
    inprocess = (os.environ.get("MFCONF_SYSTEM") == "mlflow"
                 and os.environ.get("MFCONF_MLFLOW_MODE", "inprocess") == "inprocess")
    for item in items:
        mod = getattr(item, "module", None)
        if mod is None or id(mod) in patched:
            continue
        patched.add(id(mod))
        if inprocess:
            # MLflow's own fixture, unchanged: its FastAPI app in a thread. Only
            # note that a server was started.
            if hasattr(mod, "ServerThread"):
                mod.ServerThread = _noting(mod.ServerThread)
            if hasattr(mod, "_init_server"):
                mod._init_server = _noting(mod._init_server)
            continue
        for name, repl in (("ServerThread", ServerThread),
                           ("initialize_backend_stores", initialize_backend_stores),
                           ("_init_server", _init_server)):
            if hasattr(mod, name):
                setattr(mod, name, repl)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    while _SPARE:
        _SPARE.pop().__exit__(None, None, None)
    for t in _REAPERS:
        t.join()


def pytest_runtest_setup(item: Any) -> None:
    _STATE["started"] = False
    _STATE["outcome"] = "passed"
    _STATE["longrepr"] = ""


def pytest_runtest_logreport(report: Any) -> None:
    if report.failed:
        _STATE["outcome"] = "error" if report.when != "call" else "failed"
        _STATE["longrepr"] = str(report.longrepr)[-3000:]
    elif report.skipped and _STATE.get("outcome") == "passed":
        _STATE["outcome"] = "skipped"
        _STATE["longrepr"] = str(report.longrepr)[-500:]
    if report.when == "teardown":
        out = os.environ.get("MFCONF_RESULTS")
        if out:
            with open(out, "a") as f:
                f.write(json.dumps({"nodeid": report.nodeid, "outcome": _STATE["outcome"],
                                    "server": _STATE["started"],
                                    "duration": getattr(report, "duration", 0.0),
                                    "longrepr": _STATE["longrepr"]}) + "\n")


# --------------------------------------------------------------------------- driver

def _run(system: str, tests_root: Path, out: Path, extra: list[str], stores: str,
         timeout: float, mlflow_mode: str, only: Path | None = None, shards: int = 1) -> Path:
    if shards > 1 and only is not None:
        # Split the selected tests over `shards` pytest processes (each with its own
        # fresh server per test); their results are concatenated.
        ids = [x for x in only.read_text().splitlines() if x]
        procs = []
        for i in range(shards):
            part = out / f"only.{i}.txt"
            part.write_text("\n".join(ids[i::shards]) + "\n")
            procs.append(threading.Thread(target=_run, args=(
                f"{system}.{i}", tests_root, out, extra, stores, timeout, mlflow_mode, part)))
        for t in procs:
            t.start()
        for t in procs:
            t.join()
        results = out / f"{system}.jsonl"
        results.write_text("".join((out / f"{system}.{i}.jsonl").read_text()
                                   for i in range(shards)
                                   if (out / f"{system}.{i}.jsonl").exists()))
        return results
    results = out / f"{system}.jsonl"
    results.unlink(missing_ok=True)
    env = {**os.environ, "MFCONF_SYSTEM": system.split(".")[0], "MFCONF_RESULTS": str(results),
           **({"MFCONF_ONLY": str(only)} if only is not None else {}),
           "MFCONF_STORES": stores, "MFCONF_MLFLOW_MODE": mlflow_mode,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), str(tests_root),
                                          os.environ.get("PYTHONPATH", "")]),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    cmd = [sys.executable, "-m", "pytest", "-p", "mlflow_conformance", "-p", "no:cacheprovider",
           "-q", "-rN", "--no-header", "--tb=short", "-o", "addopts=",
           "--rootdir", str(tests_root), *[str(tests_root / t) for t in TEST_FILES], *extra]
    with open(out / f"{system}.log", "wb") as log:
        subprocess.run(cmd, env=env, cwd=tests_root, stdout=log, stderr=subprocess.STDOUT,
                       timeout=timeout, check=False)
    return results


def _load(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["nodeid"]: r for r in rows}


def summarize(out: Path) -> dict[str, Any]:
    mf, ml = _load(out / "metricflow.jsonl"), _load(out / "mlflow.jsonl")
    summary: dict[str, Any] = {}
    for name, res in (("mlflow", ml), ("metricflow", mf)):
        server = {k: v for k, v in res.items() if v["server"] or (k in ml and ml[k]["server"])}
        counts: dict[str, int] = {}
        for k, v in server.items():
            key = ("genai_" if is_genai(k) else "") + v["outcome"]
            counts[key] = counts.get(key, 0) + 1
        summary[name] = counts
    if ml and mf:
        base = sorted(k for k, v in ml.items() if v["outcome"] == "passed" and v["server"]
                      and not is_genai(k))
        passing = [k for k in base if mf.get(k, {}).get("outcome") == "passed"]
        summary["baseline_passing_non_genai"] = len(base)
        summary["metricflow_passing_of_those"] = len(passing)
        summary["ratio"] = round(len(passing) / len(base), 4) if base else None
        summary["regressions"] = {k: (mf.get(k, {}).get("outcome", "missing"),
                                      mf.get(k, {}).get("longrepr", "")[-400:])
                                  for k in base if k not in set(passing)}
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mlflow-tests", required=True, type=Path,
                    help="directory holding MLflow's tests/ tree (read only)")
    ap.add_argument("--system", choices=("metricflow", "mlflow", "both"), default="both")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir(), "mlflow-conformance"))
    ap.add_argument("--mlflow-mode", choices=("inprocess", "subprocess"), default="inprocess",
                    help="baseline server: MLflow's own fixture (its FastAPI app in a thread, "
                         "default) or an `mlflow server` subprocess per test (slow: it also "
                         "starts job workers)")
    ap.add_argument("--stores", choices=("sqlalchemy", "both"), default="sqlalchemy")
    ap.add_argument("--timeout", type=float, default=7200.0, help="per system, seconds")
    ap.add_argument("--baseline-from", type=Path,
                    help="a previous --out holding mlflow.jsonl: skip the MLflow run and run "
                         "metricflow only on the non-GenAI tests that passed on MLflow")
    ap.add_argument("--shards", type=int, default=1,
                    help="with --baseline-from: run the metricflow tests in N pytest processes")
    ap.add_argument("--summary-only", action="store_true", help="re-read the results in --out")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest args (after --), e.g. -k name")
    a = ap.parse_args()
    root = a.mlflow_tests.resolve()
    for t in TEST_FILES:
        if not (root / t).is_file():
            ap.error(f"--mlflow-tests: {root / t} does not exist")
    a.out.mkdir(parents=True, exist_ok=True)
    only = None
    if a.baseline_from:
        # Reuse a finished MLflow run: copy its results, run metricflow on the
        # non-GenAI tests that passed there (the only ones the ratio counts).
        base = _load(a.baseline_from / "mlflow.jsonl")
        if not base:
            ap.error(f"--baseline-from: no results in {a.baseline_from / 'mlflow.jsonl'}")
        if a.baseline_from.resolve() != a.out.resolve():
            shutil.copy(a.baseline_from / "mlflow.jsonl", a.out / "mlflow.jsonl")
        only = a.out / "only.txt"
        only.write_text("\n".join(k for k, v in base.items() if v["outcome"] == "passed"
                                   and v["server"] and not is_genai(k)) + "\n")
    if not a.summary_only:
        systems = ("mlflow", "metricflow") if a.system == "both" else (a.system,)
        if a.baseline_from:
            systems = ("metricflow",)
        for system in systems:
            t0 = time.monotonic()
            _run(system, root, a.out, a.pytest_args, a.stores, a.timeout, a.mlflow_mode, only,
                 a.shards if system == "metricflow" else 1)
            print(f"{system}: ran in {time.monotonic() - t0:.0f} s (log: {a.out / system}.log)",
                  file=sys.stderr)
    s = summarize(a.out)
    for name in ("mlflow", "metricflow"):
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in sorted(s.get(name, {}).items())))
    if "ratio" in s:
        print(f"non-GenAI tests passing on mlflow: {s['baseline_passing_non_genai']}; "
              f"also passing on metricflow: {s['metricflow_passing_of_those']} ({s['ratio']:.1%})")
        print("pass on mlflow, fail on metricflow:")
        for k, (outcome, why) in s["regressions"].items():
            last = why.strip().splitlines()[-1] if why.strip() else ""
            print(f"  {outcome:8} {k}  -- {last[:200]}")
    (a.out / "summary.json").write_text(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
