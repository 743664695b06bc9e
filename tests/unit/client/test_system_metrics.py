"""The system metrics sampler, with a fake NVML library (tests run without a GPU)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from metricflow.client._sysmetrics import SystemMetricsSampler, node_id
from metricflow.errors import InvalidArgument


class FakeNvml:
    """The NVML calls the sampler makes, for two GPUs with known readings."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.inited = self.shut = 0

    def nvmlInit(self) -> None:
        self.inited += 1

    def nvmlShutdown(self) -> None:
        self.shut += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return SimpleNamespace(gpu=40 + h, memory=10)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(used=(h + 1) * 1024 * 1024 * 1024, total=8 * 1024 ** 3)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 150_000 + h * 1000  # milliwatts

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 60 + h


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, float], int | None, int | None]] = []
        self.ev = threading.Event()

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None,
                    timestamp: int | None = None) -> None:
        self.calls.append((run_id, dict(metrics), step, timestamp))
        if len(self.calls) >= 3:
            self.ev.set()


def test_samples_cpu_memory_io_and_each_gpu_under_the_node_prefix() -> None:
    nv, rec = FakeNvml(), Recorder()
    s = SystemMetricsSampler(rec, "r" * 32, interval_s=0.05, node="node-7", nvml=nv).start()
    assert rec.ev.wait(10), "three samples within 10 s"
    s.stop()
    assert nv.inited == 1 and nv.shut == 1
    run_id, m, step, ts = rec.calls[0]
    assert run_id == "r" * 32 and step == 0 and ts is not None and ts > 0
    assert [c[2] for c in rec.calls[:3]] == [0, 1, 2]
    assert all(k.startswith("system/node-7/") for k in m)
    short = {k[len("system/node-7/"):]: v for k, v in m.items()}
    for key in ("cpu_utilization_percentage", "memory_used_megabytes",
                "memory_utilization_percentage", "process_rss_megabytes",
                "disk_read_megabytes_per_s", "network_receive_megabytes_per_s"):
        assert key in short, key
    assert 0 <= short["cpu_utilization_percentage"] <= 100 * 1024
    assert short["process_rss_megabytes"] > 1
    assert short["gpu0/utilization_percentage"] == 40.0
    assert short["gpu1/utilization_percentage"] == 41.0
    assert short["gpu1/memory_used_megabytes"] == 2048.0
    assert short["gpu0/memory_utilization_percentage"] == pytest.approx(12.5)
    assert short["gpu1/power_watts"] == 151.0
    assert short["gpu0/temperature_celsius"] == 60.0
    n = len(rec.calls)
    time.sleep(0.2)
    assert len(rec.calls) == n, "no samples after stop()"


def test_a_broken_driver_leaves_cpu_metrics() -> None:
    class NoDriver(FakeNvml):
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    rec = Recorder()
    s = SystemMetricsSampler(rec, "r" * 32, interval_s=0.05, node="n", nvml=NoDriver()).start()
    assert rec.ev.wait(10)
    s.stop()
    keys = set(rec.calls[0][1])
    assert "system/n/cpu_utilization_percentage" in keys
    assert not any("gpu" in k for k in keys)


def test_interval_and_node_id_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match="interval"):
        SystemMetricsSampler(Recorder(), "r" * 32, interval_s=0)
    monkeypatch.setenv("METRICFLOW_NODE_ID", "rank 3/host#a")
    assert node_id() == "rank_3_host_a"
