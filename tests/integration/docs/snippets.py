"""Find the runnable snippets of the README and docs/, and run them as written.

Marking a snippet: an HTML comment on the line before its fenced block,

    <!-- snippet: GROUP -->                 run it (sh/bash: line by line; python: as a script)
    <!-- snippet: GROUP file=NAME -->       write it to NAME for the group's other snippets

GROUP names the scenario a doc's snippets share (one working directory, one
environment, the servers they start). The `file=` snippets of a (doc, group) are
written first (a doc may show a script after the command that runs it), then the
others run in document order; a failing one fails the test with its output.

How a shell snippet runs, line by line (backslash continuations joined):
- `export NAME=VALUE` sets the variable for the following lines (bash evaluates
  VALUE, command substitution included);
- a `metricflow server|ingest|writer|query|registry ...` line (a trailing `&` is
  ignored) starts in the background; the next line runs once it printed its ready
  line; it is stopped when the group ends;
- `python -m metricflow.devservices kafka ...` is skipped: the session's Kafka
  (the devservices fixture) stands in for it at `127.0.0.1:9092`;
- any other line runs with bash in the group's directory and must exit 0.

Placeholders (what the docs write, and what the test substitutes):
- the documented ports (`DOC_PORTS`) after `:` or a space, e.g. `127.0.0.1:50051`,
  `--http-port 5000`, become free ports (the same free port for every use of one
  number within a group); a server line without `--grpc-port`/`--http-port` gets
  the substitutes of its documented defaults;
- `127.0.0.1:9092` becomes the session's Kafka bootstrap, and the scenario sets a
  fresh `METRICFLOW_KAFKA_TOPIC` (a shared broker keeps earlier sessions' topics);
- `./metricflow-data`, `/tmp/mf/` and `/abs/path` become directories under the
  group's temporary directory; `.venv/bin/` becomes this interpreter's bin dir;
- `localhost` becomes `127.0.0.1`;
- relative paths into the repository (`loadtests/`, `examples/`, `scripts/`) resolve
  against its root (the snippets run in a temporary directory).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<group>[\w-]+)(?P<opts>(\s+\w+=\S+)*)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")

DOC_PORTS = (50051, 5000, 50061, 9101, 9100, 50071, 50081, 5001)
"""Ports the docs write; each is replaced by a free port when a snippet runs."""
ROLE_DEFAULTS = {"server": (50051, 5000), "ingest": (50051, 9100), "writer": (50061, 9101),
                 "query": (50071, 5000), "registry": (50081, 5001)}
"""The CLI's default (gRPC, HTTP) ports of each server command."""
SERVER_LINE = re.compile(r"(^|[\s/])metricflow\s+(?P<role>server|ingest|writer|query|registry)"
                         r"\b")
KAFKA_LINE = re.compile(r"^python\s+-m\s+metricflow\.devservices\s+kafka\b")


@dataclass(frozen=True)
class Snippet:
    doc: str
    """Path relative to the repository root."""
    line: int
    """1-based line of the opening fence."""
    group: str
    lang: str
    code: str
    file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def find_snippets(docs: list[Path] = DOCS) -> list[Snippet]:
    """Every marked snippet, in document order (a marker not before a fence is an error)."""
    out = []
    for path in docs:
        lines = path.read_text().splitlines()
        for i, text in enumerate(lines):
            m = MARKER.match(text.strip())
            if m is None:
                continue
            opts = dict(o.split("=", 1) for o in m.group("opts").split())
            fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            rel = str(path.relative_to(ROOT))
            if fence is None:
                raise ValueError(f"{rel}:{i + 1}: a snippet marker must precede a ``` fence")
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            out.append(Snippet(rel, i + 2, m.group("group"), fence.group("lang"),
                               "\n".join(lines[i + 2:end]) + "\n", opts.get("file")))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Scenario:
    """The shared state of one (doc, group): directory, env, ports, started servers."""

    work: Path
    kafka: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen[str], Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        bindir = str(Path(sys.executable).parent)
        self.env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                        PYTHONUNBUFFERED="1")
        for k in ("METRICFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI", "METRICFLOW_TOKEN",
                  "METRICFLOW_METADATA_URI", "METRICFLOW_CLICKHOUSE_DSN", "METRICFLOW_DATA_DIR"):
            self.env.pop(k, None)
        self.ports = {p: free_port() for p in DOC_PORTS}
        if self.kafka is not None:  # a fresh topic: a shared broker keeps old ones
            self.env["METRICFLOW_KAFKA_TOPIC"] = f"mftest-docs-{uuid.uuid4().hex[:8]}"
        (self.work / "mf").mkdir(parents=True, exist_ok=True)

    def substitute(self, text: str) -> str:
        text = text.replace("localhost", "127.0.0.1")
        if self.kafka is not None:
            text = text.replace("127.0.0.1:9092", self.kafka)
        text = text.replace("./metricflow-data", str(self.work / "metricflow-data"))
        text = text.replace("/tmp/mf/", f"{self.work}/mf/").replace("/abs/path",
                                                                   str(self.work))
        text = text.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        text = re.sub(r"(?<![\w/.])(loadtests|examples|scripts)/", rf"{ROOT}/\1/", text)
        for doc, real in self.ports.items():
            text = re.sub(rf"(?<=[:\s]){doc}\b", str(real), text)
        return text

    def run(self, s: Snippet) -> None:
        """Run (or write) one snippet; AssertionError with its output when it fails."""
        code = self.substitute(s.code)
        if s.file is not None:
            (self.work / s.file).write_text(code)
        elif s.lang == "python":
            path = self.work / f"snippet_{s.line}.py"
            path.write_text(code)
            self._check(s, f"python {path.name}", [sys.executable, str(path)])
        else:
            for line in logical_lines(code):
                self._shell_line(s, line)

    def _shell_line(self, s: Snippet, line: str) -> None:
        if KAFKA_LINE.match(line):
            assert self.kafka is not None, f"{s.where}: a Kafka line needs the kafka fixture"
            return
        m = re.match(r"^export\s+(\w+)=", line)
        if m:  # bash evaluates it (command substitution included); the value is kept
            r = subprocess.run(["bash", "-c", f'{line}\nprintf %s "${m.group(1)}"'],
                               cwd=self.work, env=self.env, capture_output=True, text=True,
                               timeout=300)
            assert r.returncode == 0, f"{s.where}: `{line}` failed: {r.stderr[-2000:]}"
            self.env[m.group(1)] = r.stdout
            return
        line = re.sub(r"\s&\s*(#.*)?$", "", line)
        role = SERVER_LINE.search(line.split("#", 1)[0])
        if role:
            self._start(s, role.group("role"), line)
        else:
            self._check(s, line, ["bash", "-c", line])

    def _check(self, s: Snippet, what: str, cmd: list[str]) -> None:
        r = subprocess.run(cmd, cwd=self.work, env=self.env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, (f"{s.where}: `{what}` exited with {r.returncode}\n"
                                   f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
                                   f"{self.logs()}")

    def _start(self, s: Snippet, role: str, line: str) -> None:
        grpc, http = ROLE_DEFAULTS[role]
        head, _, comment = line.partition("#")
        if "--grpc-port" not in head:
            head += f" --grpc-port {self.ports[grpc]}"
        if "--http-port" not in head:
            head += f" --http-port {self.ports[http]}"
        log = self.work / f"{role}-{len(self.procs)}.log"
        proc = subprocess.Popen(["bash", "-c", f"exec {head}"], cwd=self.work, env=self.env,
                                stdout=subprocess.PIPE, stderr=open(log, "w"),
                                text=True, start_new_session=True)
        self.procs.append((role, proc, log))
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            out = proc.stdout.readline()
            if not out:
                raise AssertionError(f"{s.where}: `{head.strip()}` exited with {proc.wait()}"
                                     f"{self.logs()}")
            if out.startswith("{") and json.loads(out).get("event") == "ready":
                return
        raise AssertionError(f"{s.where}: `{head.strip()}` printed no ready line{self.logs()}")

    def logs(self) -> str:
        return "".join(f"\n--- {log.name} (last 2000 chars):\n{log.read_text()[-2000:]}"
                       for _, _, log in self.procs if log.exists())

    def stop(self) -> None:
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def logical_lines(code: str) -> list[str]:
    """Shell lines with backslash continuations joined; blank and comment lines dropped."""
    out: list[str] = []
    cur = ""
    for raw in code.splitlines():
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        cur += raw
        if cur.strip() and not cur.strip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    return out


def groups(snippets: list[Snippet]) -> dict[tuple[str, str], list[Snippet]]:
    """Snippets by (doc, group), each list in document order."""
    out: dict[tuple[str, str], list[Snippet]] = {}
    for s in snippets:
        out.setdefault((s.doc, s.group), []).append(s)
    return out


def snippet_table(snippets: list[Snippet]) -> list[dict[str, Any]]:
    """(where, group, kind) of each snippet: the list the report and the test pin."""
    return [{"where": s.where, "group": s.group,
             "kind": f"file {s.file}" if s.file else s.lang or "sh"} for s in snippets]
