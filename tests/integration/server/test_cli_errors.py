"""The CLI's start-up errors are one line that says what to do (issue 22 items 4, 7, 8).

Each case runs the real `metricflow` command in a subprocess against a running
`metricflow server` and asserts its exact stderr and exit code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "metricflow.server.cli"]
pytestmark = pytest.mark.timeout(180)


@dataclass
class Running:
    proc: subprocess.Popen
    data_dir: Path
    ready: dict
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A `metricflow server` on free ports and its own data dir."""
    data_dir = tmp_path_factory.mktemp("held")
    err = data_dir.parent / f"{data_dir.name}.stderr"
    with open(err, "w") as f:
        proc = subprocess.Popen([*CLI, "server", "--data-dir", str(data_dir), "--grpc-port",
                                 "0", "--http-port", "0", "--no-uvloop"],
                                stdout=subprocess.PIPE, stderr=f, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"server exited: {err.read_text()}"
    yield Running(proc, data_dir, json.loads(line), err)
    proc.terminate()
    proc.wait(60)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def assert_one_line(res: subprocess.CompletedProcess, expected: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert res.stderr.splitlines() == [expected], res.stderr


def test_ready_line_reports_tls_and_mtls_like_the_roles(running: Running) -> None:
    r = running.ready
    assert r["event"] == "ready" and r["role"] == "server" and r["pid"] == running.pid
    assert r["auth"] == "off (loopback only)"
    assert r["tls"] is False and r["mtls"] is False


def test_server_start_logs_no_alembic_lines(running: Running) -> None:
    text = running.stderr.read_text()
    assert "alembic" not in text, text


def test_admin_logs_no_alembic_lines(tmp_path: Path) -> None:
    res = run_cli("admin", "--data-dir", str(tmp_path), "user", "list")
    assert res.returncode == 0, res.stderr
    assert "alembic" not in res.stderr, res.stderr


def test_second_server_on_the_same_data_dir(running: Running, tmp_path: Path) -> None:
    res = run_cli("server", "--data-dir", str(running.data_dir), "--grpc-port", "0",
                  "--http-port", "0")
    assert_one_line(res, f"metricflow server: data dir {running.data_dir} is in use by pid "
                         f"{running.pid}; stop it or pass --data-dir")


def test_gc_while_the_server_runs(running: Running) -> None:
    res = run_cli("gc", "--data-dir", str(running.data_dir), "--dry-run")
    assert_one_line(res, f"metricflow gc: data dir {running.data_dir} is in use by pid "
                         f"{running.pid}; stop that server, then run gc again (gc needs the "
                         "data dir to itself)")


def test_query_role_on_a_chdb_dir_in_use(running: Running) -> None:
    ch = running.data_dir / "clickhouse"
    res = run_cli("query", "--clickhouse", f"chdb://{ch}", "--grpc-port", "0",
                  "--http-port", "0")
    assert_one_line(res, f"metricflow query: chDB dir {ch} is in use by pid {running.pid}; "
                         "stop it or pass another --clickhouse")


@pytest.mark.parametrize(("flag", "label", "key"), [("--grpc-port", "gRPC", "grpc_port"),
                                                     ("--http-port", "HTTP", "http_port")])
def test_port_in_use(running: Running, tmp_path: Path, flag: str, label: str,
                     key: str) -> None:
    port = running.ready[key]
    ports = {"--grpc-port": "0", "--http-port": "0", flag: str(port)}
    res = run_cli("server", "--data-dir", str(tmp_path), *[x for kv in ports.items()
                                                           for x in kv])
    assert_one_line(res, f"metricflow server: {label} port {port} on 127.0.0.1 is in use by "
                         f"another process; stop it or pass {flag} (0 picks a free port)")


def test_embedded_server_maps_a_failed_bind_to_the_same_error(tmp_path: Path) -> None:
    """The bind itself (a port taken after the CLI's check) says the same.

    In a child process: the failed server opens chDB before its bind fails, and chDB binds
    a process to the first data directory it opens (in the full integration run this
    test's directory once stayed bound and every later in-process server errored).
    """
    script = (
        "import socket, sys\n"
        "from metricflow.app import ServerConfig, ServerThread\n"
        "from metricflow.server._preflight import StartupError\n"
        "with socket.socket() as held:\n"
        "    held.bind(('127.0.0.1', 0)); held.listen(); port = held.getsockname()[1]\n"
        "    srv = ServerThread(ServerConfig(data_dir=sys.argv[1], grpc_port=port,"
        " http_port=-1))\n"
        "    try:\n"
        "        srv.start()\n"
        "    except StartupError as e:\n"
        "        print(port); print(e)\n"
        "    else:\n"
        "        print('started')\n"
    )
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2, (res.stdout, res.stderr[-2000:])
    port = lines[0]
    assert lines[1] == (f"gRPC port {port} on 127.0.0.1 is in use by another process; "
                        "stop it or pass --grpc-port (0 picks a free port)")


def test_make_demo_while_a_server_holds_its_data_dir(running: Running) -> None:
    env = dict(os.environ, METRICFLOW_DATA_DIR=str(running.data_dir))
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "run_demo.py")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert_one_line(res, f"make demo: data dir {running.data_dir} is in use by pid "
                         f"{running.pid} (a running metricflow server?); stop it, or run the "
                         "demo on another dir: METRICFLOW_DATA_DIR=/tmp/metricflow-demo "
                         "make demo")


def test_a_server_that_cannot_start_says_why_to_whoever_started_it(running: Running) -> None:
    """loadtests' start_server (used by the demo and the benchmarks) keeps the reason."""
    sys.path.insert(0, str(ROOT))
    from loadtests._server import start_server

    with pytest.raises(RuntimeError) as e:
        start_server(data_dir=str(running.data_dir))
    assert str(e.value) == (f"metricflow server exited with 1: metricflow server: data dir "
                            f"{running.data_dir} is in use by pid {running.pid}; stop it or "
                            "pass --data-dir")


# ---------------------------------------------------------------------------------------
# Start-up mistakes that ended in a library traceback (issue 22 review, item 1).
def run_in(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    env = dict(env or os.environ)
    for var in ("METRICFLOW_METADATA_URI", "METRICFLOW_DATA_DIR", "METRICFLOW_CLICKHOUSE_DSN"):
        env.pop(var, None)
    return subprocess.run([*CLI, *args, "--grpc-port", "0", "--http-port", "0"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, not listening: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize("role", [["ingest", "--kafka", "127.0.0.1:9"],
                                  ["writer", "--kafka", "127.0.0.1:9", "--serve-query",
                                   "--clickhouse", "chdb:///unused"]],
                         ids=["ingest", "writer-serve-query"])
def test_a_role_without_metadata_in_a_dir_without_metricflow_data(tmp_path: Path,
                                                                 role: list[str]) -> None:
    res = run_in(tmp_path, *role)
    d = tmp_path / "metricflow-data"
    assert_one_line(res, f"metricflow {role[0]}: metadata store sqlite:///{d}/metadata.db "
                         f"cannot be opened: directory {d} does not exist; create it "
                         f"(mkdir -p {d}) or pass --metadata URI (env "
                         "METRICFLOW_METADATA_URI; every role must use the same one)")
    assert not d.exists()


def test_server_data_dir_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("")
    res = run_in(tmp_path, "server", "--data-dir", str(f))
    assert_one_line(res, f"metricflow server: data dir {f} is a file, not a directory; pass "
                         "--data-dir DIR (created if missing)")


def test_server_metadata_in_a_missing_dir(tmp_path: Path) -> None:
    d = tmp_path / "nope"
    res = run_in(tmp_path, "server", "--data-dir", str(tmp_path / "data"), "--metadata",
                 f"sqlite:///{d}/m.db")
    assert_one_line(res, f"metricflow server: metadata store sqlite:///{d}/m.db cannot be "
                         f"opened: directory {d} does not exist; create it (mkdir -p {d}) or "
                         "pass another --metadata")


def test_unreachable_postgresql_hides_the_password(tmp_path: Path, closed_port: int) -> None:
    res = run_in(tmp_path, "registry", "--metadata",
                 f"postgresql+psycopg://u:secret@127.0.0.1:{closed_port}/db")
    assert_one_line(res, f"metricflow registry: metadata store postgresql+psycopg://u:***@"
                         f"127.0.0.1:{closed_port}/db is unreachable (Connection refused); "
                         "start PostgreSQL or pass --metadata URI (env METRICFLOW_METADATA_URI;"
                         " every role must use the same one)")


def test_unreachable_clickhouse(tmp_path: Path, closed_port: int) -> None:
    res = run_in(tmp_path, "query", "--clickhouse", f"http://127.0.0.1:{closed_port}",
                 "--metadata", f"sqlite:///{tmp_path}/m.db", "--no-mlflow")
    assert_one_line(res, f"metricflow query: ClickHouse at http://127.0.0.1:{closed_port} is "
                         "unreachable (Connection refused); start it or pass another "
                         "--clickhouse")


def test_chdb_dir_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("")
    res = run_in(tmp_path, "query", "--clickhouse", f"chdb://{f}", "--metadata",
                 f"sqlite:///{tmp_path}/m.db", "--no-mlflow")
    assert_one_line(res, f"metricflow query: chDB dir {f} is a file, not a directory; pass "
                         "another --clickhouse chdb:///DIR")


def test_unreachable_kafka(tmp_path: Path, closed_port: int) -> None:
    res = run_in(tmp_path, "ingest", "--kafka", f"127.0.0.1:{closed_port}", "--metadata",
                 f"sqlite:///{tmp_path}/m.db")
    assert_one_line(res, f"metricflow ingest: Kafka at 127.0.0.1:{closed_port} is unreachable "
                         "(Connection refused); start it or pass --kafka HOST:PORT (env "
                         "METRICFLOW_KAFKA_BOOTSTRAP)")


@pytest.mark.parametrize("bad", ["foo://x", "mysql://u@h/db"])
def test_bad_uri_schemes_are_one_line(tmp_path: Path, bad: str) -> None:
    flag = "--clickhouse" if bad.startswith("foo") else "--metadata"
    args = (["query", "--clickhouse", bad, "--metadata", f"sqlite:///{tmp_path}/m.db",
             "--no-mlflow"] if flag == "--clickhouse" else ["registry", "--metadata", bad])
    res = run_in(tmp_path, *args)
    assert res.returncode == 1, res.stderr
    assert len(res.stderr.splitlines()) == 1 and "INVALID_PARAMETER_VALUE" in res.stderr, \
        res.stderr


def test_gc_with_clickhouse_on_a_chdb_dir_in_use(running: Running) -> None:
    ch = running.data_dir / "clickhouse"
    res = run_cli("gc", "--clickhouse", f"chdb://{ch}", "--dry-run")
    assert_one_line(res, f"metricflow gc: chDB dir {ch} is in use by pid {running.pid}; stop "
                         "that process, then run gc again (gc needs the chDB dir to itself)")


def test_run_demo_help_runs_nothing() -> None:
    demo = str(ROOT / "examples" / "run_demo.py")
    res = subprocess.run([sys.executable, demo, "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: run_demo.py [-h] [--data-dir DATA_DIR]"), res.stdout
    assert "server up" not in res.stdout and res.stderr == ""
    res = subprocess.run([sys.executable, demo, "--bogus"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "unrecognized arguments: --bogus" in res.stderr
    assert "server up" not in res.stdout


def test_run_demo_data_dir_flag(running: Running) -> None:
    """--data-dir is the dir the demo uses (here: one a server holds, so it stops at once)."""
    env = {k: v for k, v in os.environ.items() if k != "METRICFLOW_DATA_DIR"}
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "run_demo.py"),
                          "--data-dir", str(running.data_dir)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert_one_line(res, f"make demo: data dir {running.data_dir} is in use by pid "
                         f"{running.pid} (a running metricflow server?); stop it, or run the "
                         "demo on another dir: METRICFLOW_DATA_DIR=/tmp/metricflow-demo "
                         "make demo")


@pytest.mark.parametrize("role", [["server", "--data-dir", "data"],
                                  ["registry", "--metadata", "sqlite:///m.db"]],
                         ids=["server", "registry"])
def test_a_host_that_is_not_this_machine(tmp_path: Path, role: list[str]) -> None:
    args = [a.replace("sqlite:///", f"sqlite:///{tmp_path}/") for a in role]
    res = run_in(tmp_path, *args, "--host", "192.0.2.1")  # TEST-NET-1: never local
    assert_one_line(res, f"metricflow {role[0]}: cannot bind to --host 192.0.2.1 (Cannot "
                         "assign requested address); pass an address of this machine "
                         "(127.0.0.1, or 0.0.0.0 for every interface)")


@pytest.mark.parametrize("command", [["admin", "--data-dir", "{f}", "user", "list"],
                                     ["gc", "--data-dir", "{f}", "--dry-run"]],
                         ids=["admin", "gc"])
def test_data_dir_is_a_file_for_admin_and_gc(tmp_path: Path, command: list[str]) -> None:
    f = tmp_path / "afile"
    f.write_text("")
    res = run_cli(*[a.format(f=f) for a in command])
    assert_one_line(res, f"metricflow {command[0]}: data dir {f} is a file, not a directory; "
                         "pass --data-dir DIR (created if missing)")
