"""`metricflow sync DIR`: upload spooled (offline, or left over) runs to a server.

DIR is a spool root (METRICFLOW_SPOOL_DIR: one sub-directory per client) or one
client's spool. Each spool is drained by a Client that adopts it: the same
sender that drains a live spool sends its frames in order, metric batches with
their original batch ids, run records replayed as RPCs after the points before
them were acknowledged, artifacts uploaded from the spool's copies. The
spool's cursor follows the acknowledgements (a record's at once), so a second
sync, or one after a crash halfway, starts where the last one stopped; what it
sends again is deduplicated by the server (docs/resilience.md).

Run ids are kept (offline runs get client-chosen ids); the mapping is printed
and kept in `<spool>/synced.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from metricflow import _env
from metricflow.client._spool import (
    KIND_ARTIFACT,
    KIND_CREATE_RUN,
    KIND_METRICS,
    Spool,
    is_spool_dir,
)
from metricflow.errors import InvalidArgument, InvalidState, MetricflowError

log = logging.getLogger(__name__)

_SAY_FAILING_AFTER_S = 10.0  # no progress and the stream failing: say why, keep trying


def find_spools(path: str) -> list[str]:
    """The spool directories at or directly below `path`, oldest first."""
    if not os.path.isdir(path):
        raise InvalidArgument(f"{path} is not a directory", field="DIR", received=path)
    if is_spool_dir(path):
        return [path]
    subs = [os.path.join(path, d) for d in sorted(os.listdir(path))]
    return [d for d in subs if os.path.isdir(d) and is_spool_dir(d)]


def _scan(spool: Spool) -> dict[str, int]:
    """What is left to send: frames, points, runs, artifacts, bytes (and torn bytes)."""
    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb

    out = {"frames": 0, "points": 0, "runs": 0, "artifacts": 0, "records": 0, "bytes": 0}
    for f in spool.frames():
        out["frames"] += 1
        out["bytes"] += len(f.payload)
        if f.kind == KIND_METRICS:
            out["points"] += len(pb.WriteBatch.FromString(f.payload).metrics.values) // 8
        else:
            out["records"] += 1
            out["runs"] += f.kind == KIND_CREATE_RUN
            out["artifacts"] += f.kind == KIND_ARTIFACT
    out["torn_bytes"] = spool.skipped_bytes
    return out


def sync_spool(path: str, tracking_uri: str, *, progress: Any = None,
               stall_timeout_s: float = 300.0) -> dict[str, Any]:
    """Drain one spool directory into the server; returns its summary."""
    from metricflow.client._client import Client

    probe = Spool(path, create=False)
    try:
        todo = _scan(probe)
    finally:
        probe.close()
    t0 = time.monotonic()
    summary: dict[str, Any] = {"spool": path, **todo, "errors": []}
    if not todo["frames"]:
        summary.update(seconds=0.0, run_ids=_load_mapping(path), uploaded_points=0)
        return summary
    client = Client(tracking_uri, _adopt_spool=path)
    sender = client._sender
    spool = client._spool
    assert spool is not None
    last_pending = spool.pending_bytes()
    last_move = time.monotonic()
    done_bytes = 0
    saved_runs = 0
    said_failing = False
    finished = False
    try:
        while sender.spooling:
            if sender.fatal is not None:
                raise sender.fatal
            time.sleep(0.05)
            pending = spool.pending_bytes()
            if progress is not None:
                moved = max(0, todo["bytes"] - pending)
                if moved > done_bytes:
                    progress.update(moved - done_bytes)
                    done_bytes = moved
            if len(client.replayed_runs) != saved_runs:  # kept across a crash of the sync
                saved_runs = len(client.replayed_runs)
                _save_mapping(path, {**_load_mapping(path), **client.replayed_runs})
            if pending != last_pending:
                last_pending, last_move = pending, time.monotonic()
            elif (not said_failing and sender.failing
                  and time.monotonic() - last_move > _SAY_FAILING_AFTER_S):
                said_failing = True  # a server that cannot be reached: say so, go on trying
                print(f"metricflow sync: no progress for {_SAY_FAILING_AFTER_S:.0f}s: "
                      f"{sender.health().describe()}; retrying until no progress for "
                      f"{stall_timeout_s:.0f}s (--stall-timeout)", file=sys.stderr, flush=True)
            elif time.monotonic() - last_move > stall_timeout_s:
                raise MetricflowError(
                    f"sync of {path} made no progress for {stall_timeout_s:.0f}s; "
                    f"{sender.health().describe()}; run it again later (it resumes)")
        if progress is not None and todo["bytes"] > done_bytes:
            progress.update(todo["bytes"] - done_bytes)
        summary["errors"] = [str(e) for e in sender.record_errors]
        mapping = {**_load_mapping(path), **client.replayed_runs}
        _save_mapping(path, mapping)
        summary.update(seconds=round(time.monotonic() - t0, 3), run_ids=mapping,
                       uploaded_points=sender.acked_points)
        finished = True
    finally:
        try:
            client.close(30)
        except MetricflowError as e:
            # A record the server refused is raised again by close: it is in the
            # summary's errors already, which the caller prints with everything else.
            if not finished:
                log.warning("metricflow sync: closing the client: %s", e)
            elif str(e) not in summary["errors"]:
                summary["errors"].append(str(e))
    return summary


def _load_mapping(path: str) -> dict[str, str]:
    try:
        with open(os.path.join(path, "synced.json")) as f:
            return dict(json.load(f).get("run_ids", {}))
    except FileNotFoundError:
        return {}


def _save_mapping(path: str, mapping: dict[str, str]) -> None:
    tmp = os.path.join(path, ".synced.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"run_ids": mapping, "synced_at": time.time()}, f)
    os.replace(tmp, os.path.join(path, "synced.json"))


def sync(path: str, tracking_uri: str, *, show_progress: bool = True,
         stall_timeout_s: float = 300.0) -> dict[str, Any]:
    """Sync every spool at or below `path`; returns the summary of all of them."""
    spools = find_spools(path)
    t0 = time.monotonic()
    results = []
    total = {"points": 0, "records": 0, "runs": 0, "artifacts": 0, "bytes": 0,
             "torn_bytes": 0, "uploaded_points": 0}
    bar = None
    skipped: list[str] = []
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="B", unit_scale=True, desc="metricflow sync", file=sys.stderr)
    try:
        for sp in spools:
            try:
                probe = Spool(sp, create=False)
            except InvalidState as e:  # a live client's spool: its own sender drains it
                skipped.append(str(e))
                continue
            try:
                if bar is not None:
                    bar.total += probe.pending_bytes()
                    bar.refresh()
            finally:
                probe.close()
            r = sync_spool(sp, tracking_uri, progress=bar, stall_timeout_s=stall_timeout_s)
            results.append(r)
            for k in total:
                total[k] += r.get(k, 0)
        if bar is not None and bar.n < bar.total:  # the spools' bytes are counted two ways
            bar.update(bar.total - bar.n)
    finally:
        if bar is not None:
            bar.close()
    run_ids: dict[str, str] = {}
    for r in results:
        run_ids.update(r["run_ids"])
    return {"tracking_uri": tracking_uri, "spools": len(spools), **total,
            "seconds": round(time.monotonic() - t0, 3), "run_ids": run_ids,
            "errors": [e for r in results for e in r["errors"]], "skipped_in_use": skipped}


def _cmd_sync(args: argparse.Namespace) -> int:
    summary = sync(args.dir, args.tracking_uri, show_progress=not args.no_progress,
                   stall_timeout_s=args.stall_timeout)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"synced {summary['spools']} spool(s) to {summary['tracking_uri']} in "
              f"{summary['seconds']}s: {summary['points']} points, {summary['runs']} runs "
              f"created, {summary['records']} run records, {summary['artifacts']} artifacts"
              + (f", {summary['torn_bytes']} torn bytes skipped" if summary["torn_bytes"]
                 else ""))
        for old, new in summary["run_ids"].items():
            print(f"  run {old} -> {new}")
        for e in summary["errors"]:
            print(f"  refused: {e}")
        for e in summary["skipped_in_use"]:
            print(f"  skipped: {e}")
    return 1 if summary["errors"] else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # argparse's API
    """Register `metricflow sync`."""
    p = sub.add_parser("sync", help="upload spooled or offline runs to a server",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="a spool root (METRICFLOW_SPOOL_DIR) or one spool")
    p.add_argument("--tracking-uri", default=_env.TRACKING_URI.get(),
                   help=_env.TRACKING_URI.help)
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stall-timeout", type=_stall_timeout, default=300.0, metavar="SECONDS",
                   help="give up after this long without progress (a server that cannot be "
                        "reached; it is said after 10 s); default 300, 1..86400")
    p.set_defaults(func=_cmd_sync)


def _stall_timeout(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 1.0 <= v <= 86400.0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds in 1..86400, got {text!r}")
    return v
