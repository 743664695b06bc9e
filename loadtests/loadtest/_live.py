"""Live progress during a load test: a rich table on a terminal, a line every 5 s otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from loadtests.loadtest._scenario import Scenario


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M{unit}"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k{unit}"
    return f"{v:.1f}{unit}"


def elapsed_text(t_s: float, total_s: float, phase: str) -> str:
    """`12s / 60s (steady)`; the first sample may come a moment before the start
    (t_s slightly below 0), which must not print as "-0s"."""
    return f"{max(t_s, 0.0):z.0f}s / {total_s:.0f}s ({phase})"


class LiveView:
    """Context manager; `update` is called once per second by the controller."""

    def __init__(self, s: Scenario, enabled: bool = True) -> None:
        self.s = s
        self.rich = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self._live: Any = None
        self._last_line = 0.0

    def __enter__(self) -> LiveView:
        if self.rich:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, row: dict[str, Any], col: Any, ql: Any) -> None:
        if not self.enabled:
            return
        planned = self.s.planned_points
        logged = col.total("logged")
        fields = [
            ("elapsed", elapsed_text(row["t_s"], self.s.phases.total_s, row["phase"])),
            ("logged", f"{logged:,}" + (f" / {planned:,}" if planned else "")),
            ("acked", f"{col.total('acked'):,}"),
            ("points/s (acked)", _fmt(row["acked_per_s"])),
            ("ack p50/p99", f"{_fmt(row['ack_p50_ms'], 'ms')} / {_fmt(row['ack_p99_ms'], 'ms')}"),
            ("lag p50/p99", f"{_fmt(row['lag_p50_ms'], 'ms')} / {_fmt(row['lag_p99_ms'], 'ms')}"),
            ("runs started/done", f"{col.total('runs_started'):,} / {col.total('runs_done'):,}"),
            ("queries s/h", f"{ql.total['search'].total} / {ql.total['history'].total}"),
            ("server cpu/rss", f"{_fmt(row['server_cpu_pct'], '%')} / "
                               f"{_fmt(row['server_rss_mb'], ' MiB')}"),
            ("errors", str(row["errors_total"])),
        ]
        if self._live is not None:
            from rich.table import Table

            t = Table(title=f"metricflow loadtest: {self.s.name}", show_header=False)
            for k, v in fields:
                t.add_row(k, v, style="bold red" if k == "errors" and v != "0" else None)
            self._live.update(t, refresh=True)
        elif time.monotonic() - self._last_line >= 5.0:
            self._last_line = time.monotonic()
            print(" | ".join(f"{k}: {v}" for k, v in fields), file=sys.stderr, flush=True)
