"""System metrics of a run: CPU, memory, disk, network (psutil) and NVIDIA GPUs (NVML).

`start_run(log_system_metrics=True)` (or METRICFLOW_SYSTEM_METRICS=1) starts a
SystemMetricsSampler: a daemon thread that every `interval_s` (1 s by default)
takes one sample and logs it with `Client.log_metrics`, the same columnar path
as any metric (one buffered row per sample, no RPC). Keys are
`system/<node id>/<name>`, so the series of each node of a multi-node job stay
apart; the node id is METRICFLOW_NODE_ID or the host name. The step is the
sample number, the timestamp the sample time.

Per sample: `cpu_utilization_percentage`, `memory_used_megabytes`,
`memory_utilization_percentage`, `disk_read_megabytes_per_s`,
`disk_write_megabytes_per_s`, `network_receive_megabytes_per_s`,
`network_transmit_megabytes_per_s`, `process_rss_megabytes`; per GPU i, through
NVML (the `nvidia-ml-py` package, imported only when sampling starts; skipped
when it is missing or no driver answers): `gpu<i>/utilization_percentage`,
`gpu<i>/memory_used_megabytes`, `gpu<i>/memory_utilization_percentage`,
`gpu<i>/power_watts`, `gpu<i>/temperature_celsius`.

Cost: psutil reads a handful of /proc files per sample; measured in
docs/resilience.md (well under 1% of one core at 1 s).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from typing import Any, Protocol

from metricflow import _env
from metricflow.errors import InvalidArgument

log = logging.getLogger(__name__)

_MB = 1024 * 1024


class _Logger(Protocol):
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None,
                    timestamp: int | None = None) -> None: ...


def node_id() -> str:
    """METRICFLOW_NODE_ID, else the host name, as a metric key segment."""
    raw = _env.NODE_ID.get() or socket.gethostname() or "node"
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", raw)[:100] or "node"


def _load_nvml() -> Any | None:
    try:
        import pynvml  # type: ignore[import-not-found, unused-ignore]  # nvidia-ml-py, optional
    except ImportError:
        return None
    return pynvml


class SystemMetricsSampler:
    """Samples the machine every `interval_s` and logs `system/<node>/...` metrics.

    Args:
        client: what logs the points (a Client).
        run_id: the run they belong to.
        interval_s: seconds between samples (default METRICFLOW_SYSTEM_METRICS_INTERVAL_S).
        node: node id (default: node_id()).
        nvml: the NVML module to use (default: pynvml when installed); tests pass a fake.
    """

    def __init__(self, client: _Logger, run_id: str, *, interval_s: float | None = None,
                 node: str | None = None, nvml: Any = None) -> None:
        import psutil  # type: ignore[import-untyped, unused-ignore]  # the `system` extra

        self._psutil = psutil
        self.client, self.run_id = client, run_id
        self.interval_s = interval_s if interval_s is not None else (
            _env.SYSTEM_METRICS_INTERVAL_S.get())
        if not self.interval_s > 0:
            raise InvalidArgument(f"the system metrics interval must be > 0 s, got "
                                  f"{self.interval_s}", field="interval_s",
                                  received=self.interval_s)
        self.node = node or node_id()
        self.prefix = f"system/{self.node}/"
        self._nvml = nvml if nvml is not None else _load_nvml()
        self._gpus: list[Any] = []
        self.samples = 0
        self.cpu_seconds = 0.0  # this thread's own CPU time (the sampler's cost)
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, name="metricflow-system-metrics",
                                        daemon=True)

    def start(self) -> SystemMetricsSampler:
        self._init_gpus()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._gpus and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as e:  # shutting down NVML must not fail end_run
                log.debug("nvmlShutdown failed: %s", e)
            self._gpus = []

    def _init_gpus(self) -> None:
        nv = self._nvml
        if nv is None:
            return
        try:
            nv.nvmlInit()
            self._gpus = [nv.nvmlDeviceGetHandleByIndex(i)
                          for i in range(nv.nvmlDeviceGetCount())]
        except Exception as e:  # no driver, no GPU: CPU metrics only
            log.info("system metrics: no NVIDIA GPU metrics (%s)", e)
            self._gpus = []

    def _run(self) -> None:
        t_cpu = time.thread_time()
        ps = self._psutil
        ps.cpu_percent(None)  # the first call starts the measurement interval
        last = (time.monotonic(), ps.disk_io_counters(), ps.net_io_counters())
        while not self._stop.wait(self.interval_s):
            try:
                last = self._sample(last)
            except Exception as e:  # a failed sample is skipped, the run goes on
                log.warning("system metrics sample failed: %s", e)
            self.cpu_seconds = time.thread_time() - t_cpu

    def sample_once(self) -> dict[str, float]:
        """One sample's values (keys without the prefix); used by tests and _run."""
        ps = self._psutil
        vm = ps.virtual_memory()
        out = {
            "cpu_utilization_percentage": float(ps.cpu_percent(None)),
            "memory_used_megabytes": (vm.total - vm.available) / _MB,
            "memory_utilization_percentage": float(vm.percent),
            "process_rss_megabytes": self._proc.memory_info().rss / _MB,
        }
        out.update(self._gpu_sample())
        return out

    def _gpu_sample(self) -> dict[str, float]:
        nv: Any = self._nvml
        out: dict[str, float] = {}
        for i, h in enumerate(self._gpus):
            g = f"gpu{i}/"
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                out[g + "utilization_percentage"] = float(util.gpu)
                out[g + "memory_used_megabytes"] = mem.used / _MB
                out[g + "memory_utilization_percentage"] = (
                    100.0 * mem.used / mem.total if mem.total else 0.0)
                out[g + "power_watts"] = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
                out[g + "temperature_celsius"] = float(
                    nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            except Exception as e:  # one GPU failing must not stop the others
                log.debug("NVML read of GPU %d failed: %s", i, e)
        return out

    def _sample(self, last: tuple[float, Any, Any]) -> tuple[float, Any, Any]:
        ps = self._psutil
        now = time.monotonic()
        disk, net = ps.disk_io_counters(), ps.net_io_counters()
        values = self.sample_once()
        dt = max(now - last[0], 1e-6)
        if disk is not None and last[1] is not None:
            values["disk_read_megabytes_per_s"] = (disk.read_bytes - last[1].read_bytes) / _MB / dt
            values["disk_write_megabytes_per_s"] = (
                (disk.write_bytes - last[1].write_bytes) / _MB / dt)
        if net is not None and last[2] is not None:
            values["network_receive_megabytes_per_s"] = (
                (net.bytes_recv - last[2].bytes_recv) / _MB / dt)
            values["network_transmit_megabytes_per_s"] = (
                (net.bytes_sent - last[2].bytes_sent) / _MB / dt)
        p = self.prefix
        self.client.log_metrics(self.run_id, {p + k: v for k, v in values.items()},
                                step=self.samples, timestamp=int(time.time() * 1000))
        self.samples += 1
        return now, disk, net
