"""PNG plots of a report's time series (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _phase_bands(ax: Any, series: dict[str, list[Any]]) -> None:
    colors = {"ramp_up": "#fff3cd", "soak": "#e2e3ff", "drain": "#eeeeee"}
    t, ph = series["t_s"], series["phase"]
    start = 0
    for i in range(1, len(t) + 1):
        if i == len(t) or ph[i] != ph[start]:
            if ph[start] in colors and i - 1 > start:
                ax.axvspan(t[start], t[i - 1], color=colors[ph[start]], lw=0,
                           label=ph[start])
            start = i


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """throughput.png, latency.png, lag.png, queries.png, server.png; returns the names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["timeseries"]
    t = s["t_s"]
    name = report["scenario"]["name"]
    written: list[str] = []

    def save(fig: Any, ax: Any, fname: str, title: str, ylabel: str, log: bool = False) -> None:
        ax.set_title(f"{name}: {title}")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(),
                      fontsize=8)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
        written.append(fname)

    def nz(col: str) -> list[float]:
        return [float("nan") if v is None else v for v in s[col]]

    fig, ax = plt.subplots(figsize=(8, 4))
    _phase_bands(ax, s)
    ax.plot(t, s["acked_per_s"], label="acked points/s")
    ax.plot(t, s["logged_per_s"], label="logged points/s", alpha=0.6)
    if any(v is not None for v in s["server_ingest_points_per_s"]):
        ax.plot(t, nz("server_ingest_points_per_s"), ":", label="server ingest points/s")
    save(fig, ax, "throughput.png", "throughput", "points/s")

    fig, ax = plt.subplots(figsize=(8, 4))
    _phase_bands(ax, s)
    for q in (50, 95, 99):
        ax.plot(t, nz(f"ack_p{q}_ms"), label=f"ack p{q}")
    save(fig, ax, "latency.png", "ack latency (log call -> durable ack)", "ms", log=True)

    fig, ax = plt.subplots(figsize=(8, 4))
    _phase_bands(ax, s)
    samples = report["lag_samples"]
    if samples:
        ax.scatter([x for x, _ in samples], [y for _, y in samples], s=6, alpha=0.5,
                   label="marker lag")
    ax.plot(t, nz("lag_p99_ms"), label="lag p99 (1 s)")
    save(fig, ax, "lag.png", "ingest-to-queryable lag", "ms", log=True)

    if any(v is not None for v in s["search_p50_ms"] + s["history_p50_ms"]):
        fig, ax = plt.subplots(figsize=(8, 4))
        _phase_bands(ax, s)
        for kind in ("search", "history"):
            ax.plot(t, nz(f"{kind}_p50_ms"), label=f"{kind} p50")
            ax.plot(t, nz(f"{kind}_p99_ms"), "--", label=f"{kind} p99")
        save(fig, ax, "queries.png", "query latency under load", "ms", log=True)

    if any(v is not None for v in s["server_rss_mb"]):
        fig, ax = plt.subplots(figsize=(8, 4))
        _phase_bands(ax, s)
        ax.plot(t, nz("server_cpu_pct"), label="server CPU %")
        ax2 = ax.twinx()
        ax2.plot(t, nz("server_rss_mb"), color="tab:red", label="RSS MiB")
        ax2.set_ylabel("RSS MiB")
        save(fig, ax, "server.png", "server CPU and RSS", "CPU % of one core")
    return written
