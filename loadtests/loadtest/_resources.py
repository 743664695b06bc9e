"""Server CPU and RSS: /proc of a local server process, or Prometheus /metrics of roles."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceSample:
    """Cumulative CPU seconds and current RSS (MiB) summed over the sampled processes."""

    cpu_s: float
    rss_mb: float
    ingest_points: float | None = None
    """metricflow_ingest_points_total summed over the scraped roles, when available."""


def parse_prometheus(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum of every sample of each named metric (labels ignored) in a text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        if name in names:
            try:
                out[name] = out.get(name, 0.0) + float(value)
            except ValueError:
                continue
    return out


_NAMES = ("process_cpu_seconds_total", "process_resident_memory_bytes",
          "metricflow_ingest_points_total")


class ResourceSampler:
    """Samples a local ServerProcess via /proc and/or remote roles via /metrics URLs."""

    def __init__(self, local: Any = None, metrics_urls: list[str] | None = None) -> None:
        self.local = local
        self.urls = list(metrics_urls or [])
        self.errors = 0

    @property
    def source(self) -> str:
        if self.local is not None:
            return "proc"
        return "prometheus" if self.urls else "none"

    def sample(self) -> ResourceSample | None:
        """One sample, or None when nothing can be read."""
        scraped: dict[str, float] = {}
        for url in self.urls:
            try:
                with urllib.request.urlopen(url, timeout=2.0) as r:
                    text = r.read().decode("utf-8", "replace")
            except OSError:
                self.errors += 1
                continue
            for k, v in parse_prometheus(text, _NAMES).items():
                scraped[k] = scraped.get(k, 0.0) + v
        points = scraped.get("metricflow_ingest_points_total")
        if self.local is not None:
            try:
                return ResourceSample(self.local.cpu_s(), self.local.rss_mb()[0], points)
            except (FileNotFoundError, ProcessLookupError, OSError):
                return None
        if "process_cpu_seconds_total" not in scraped:
            return None
        return ResourceSample(scraped["process_cpu_seconds_total"],
                              scraped.get("process_resident_memory_bytes", 0.0) / 2**20,
                              points)


def loadavg() -> list[float]:
    """The 1/5/15-minute load average of the load-generator host."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
