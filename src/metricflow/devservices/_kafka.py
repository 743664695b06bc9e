"""A real Apache Kafka broker (KRaft, one combined broker+controller node) for tests."""

from __future__ import annotations

import asyncio
import base64
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from metricflow.devservices._common import (
    LOOPBACK,
    DevServiceError,
    ManagedService,
    free_port,
    make_workdir,
    port_open,
    register_for_exit,
    run_checked,
    spawn,
    stop_process,
    tail,
    unregister_for_exit,
    wait_until,
)
from metricflow.devservices._kafka_install import cds_archive, ensure_kafka_libs

_T = TypeVar("_T")

# Single node: every internal topic must live with one replica, or the transaction
# coordinator and share coordinator never become available.
_BASE_PROPERTIES: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    # After a SIGKILL the old registration blocks the restarted broker until its
    # session expires (9 s by default); a short session makes crash tests quick.
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "500",
    "auto.create.topics.enable": "true",
    "log.retention.hours": "24",
}


def _kafka_uuid() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 bytes without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion even if the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="kafka-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def metadata_ready(bootstrap: str, timeout_ms: int = 2000) -> bool:
    """Return True when a Metadata request to `bootstrap` lists at least one live broker."""
    from aiokafka.client import AIOKafkaClient  # lazy: aiokafka is a server extra
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=timeout_ms,
            connections_max_idle_ms=timeout_ms * 5,
        )
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await client.close()

    return _run_coroutine(probe())


class KafkaBroker(ManagedService):
    """A single-node Apache Kafka broker on 127.0.0.1, run from Maven Central jars.

    Use as a context manager; `.bootstrap` is "127.0.0.1:PORT". `stop()` then `start()`
    restarts it on the same port and log dirs (for restart tests). The JVM is killed
    when this object is closed, at interpreter exit, and (via PDEATHSIG) if this
    process dies.

    Call `start()` from a long-lived thread: Linux sends the parent-death signal when
    the *thread* that started the process exits.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: str | Path | None = None,
        heap: str = "512m",
        properties: Mapping[str, str] | None = None,
        jvm_options: tuple[str, ...] = (),
        startup_timeout: float = 90.0,
        cluster_id: str | None = None,
    ) -> None:
        """Configure (but do not start) a broker.

        Args:
            port: Client listener port; a free one when None.
            controller_port: KRaft controller port; a free one when None.
            data_dir: Work dir holding log dirs, config and broker.log. A temp dir,
                removed on close, when None; a given dir is kept.
            heap: JVM max heap (`-Xmx`).
            properties: Extra or overriding server.properties entries.
            jvm_options: Extra JVM flags.
            startup_timeout: Seconds to wait for a successful Metadata request.
            cluster_id: KRaft cluster id to format the log dirs with; a random one when
                None. The nodes of one cluster (`KafkaCluster`) share it.
        """
        self._fixed_ports = port is not None and controller_port is not None
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self._owns_dir = data_dir is None
        self.workdir = Path(data_dir) if data_dir else make_workdir("mf-kafka-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dirs = self.workdir / "kraft-logs"
        self.log_path = self.workdir / "broker.log"
        self._heap = heap
        self._extra = dict(properties or {})
        self._jvm_options = jvm_options
        self._timeout = startup_timeout
        self._cluster_id = cluster_id
        self._proc: subprocess.Popen[bytes] | None = None
        self._libs: Path | None = None
        self._pending_cds: tuple[Path, Path] | None = None
        self.last_startup_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string for clients, "127.0.0.1:PORT"."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running JVM, or None when stopped."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the JVM process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _write_properties(self) -> Path:
        props = dict(_BASE_PROPERTIES)
        props.update(
            {
                "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},"
                f"CONTROLLER://{LOOPBACK}:{self.controller_port}",
                "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
                "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
                "log.dirs": str(self.log_dirs),
            }
        )
        props.update(self._extra)
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
        return path

    def _java(self, main: str, *args: str, heap: str, extra: list[str] | None = None) -> list[str]:
        assert self._libs is not None
        java = shutil.which("java")
        if java is None:
            raise DevServiceError("`java` (17 or newer) is required to run Kafka 4")
        return [
            java,
            f"-Xmx{heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._libs / 'log4j2.properties'}",
            *(extra or []),
            *self._jvm_options,
            "-cp",
            f"{self._libs}/*",
            main,
            *args,
        ]

    def _cds_options(self) -> list[str]:
        assert self._libs is not None
        archive = cds_archive(self._libs)
        if archive is None:
            return []
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}"]
        # First broker on this machine: dump the classes it loaded when it exits
        # cleanly; stop() moves the dump into the cache for every later start.
        self._pending_cds = (self.workdir / "broker.jsa.tmp", archive)
        return [f"-XX:ArchiveClassesAtExit={self._pending_cds[0]}"]

    def _adopt_cds_archive(self) -> None:
        if self._pending_cds is None:
            return
        dumped, archive = self._pending_cds
        self._pending_cds = None
        if dumped.is_file() and dumped.stat().st_size > 0 and not archive.is_file():
            tmp = archive.with_suffix(f".{uuid.uuid4().hex}.tmp")
            shutil.move(dumped, tmp)
            tmp.rename(archive)
        dumped.unlink(missing_ok=True)

    def _format_storage(self, config: Path) -> None:
        if (self.log_dirs / "meta.properties").is_file():
            return  # already formatted: a restart on the same log dirs
        # Static quorum (controller.quorum.voters), so format with a cluster id and
        # without --standalone, which is for the dynamic-quorum bootstrap servers.
        assert self._libs is not None
        archive = cds_archive(self._libs)
        fast = ["-XX:TieredStopAtLevel=1"]  # a short-lived tool: skip the C2 compiler
        if archive is not None and archive.is_file():
            fast.append(f"-XX:SharedArchiveFile={archive}")
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            # `=` form: a base64 id may start with '-', which argparse reads as a flag
            f"--cluster-id={self._cluster_id or _kafka_uuid()}",
            "--config",
            str(config),
            "--ignore-formatted",
            heap="256m",
            extra=fast,
        )
        run_checked(argv, what="Kafka StorageTool format", timeout=120)

    def start(self, *, wait: bool = True) -> KafkaBroker:
        """Start the broker (formatting storage on first start) and wait until it serves.

        Args:
            wait: Wait for a successful Metadata request. A node of a multi-node quorum
                cannot answer before a majority of the controllers runs, so
                `KafkaCluster` launches every node with `wait=False` and then waits for
                the whole cluster.
        """
        if self.running:
            return self
        started = time.monotonic()
        self._libs = ensure_kafka_libs()
        if not wait:
            config = self._write_properties()
            self._format_storage(config)
            self._launch(config)
            return self
        attempts = 1 if self._fixed_ports or self.last_startup_seconds else 3
        for attempt in range(attempts):
            config = self._write_properties()
            self._format_storage(config)
            self._launch(config)
            try:
                wait_until(
                    lambda: port_open(self.port) and metadata_ready(self.bootstrap),
                    timeout=self._timeout,
                    what=f"Kafka broker on {self.bootstrap}",
                    proc=self._proc,
                    log_path=self.log_path,
                    interval=0.1,
                )
                break
            except DevServiceError:
                in_use = "Address already in use" in tail(self.log_path)
                self._kill()
                self._pending_cds = None
                if not in_use or attempt == attempts - 1:
                    raise
                # Someone took our "free" port between probing and binding: re-pick.
                self.port, self.controller_port = free_port(), free_port()
        self.last_startup_seconds = time.monotonic() - started
        return self

    def _launch(self, config: Path) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting broker at {time.ctime()} ===\n".encode())
        self._proc = spawn(
            self._java("kafka.Kafka", str(config), heap=self._heap, extra=self._cds_options()),
            log_path=self.log_path,
            cwd=self.workdir,
        )
        register_for_exit(self)

    def _kill(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGKILL, timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the JVM with `sig` (SIGTERM = clean shutdown, SIGKILL = crash).

        Returns the JVM exit code, or None if it was not running. Log dirs stay, so
        `start()` brings the same broker back.
        """
        if self._proc is None:
            return None
        code = stop_process(self._proc, sig, timeout=timeout)
        self._proc = None
        self._adopt_cds_archive()
        return code

    def close(self) -> None:
        """Kill the broker if running and remove its temp dir (if this object made it)."""
        self.stop(signal.SIGTERM, timeout=15)
        unregister_for_exit(self)
        if self._owns_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"KafkaBroker({self.bootstrap}, {state}, dir={self.workdir})"
