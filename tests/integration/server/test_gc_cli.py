"""`metricflow gc` frees the chunks of deleted runs and keeps live runs intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import metricflow as mf
from metricflow.app import ServerConfig, ServerThread


def test_gc_frees_deleted_runs_only(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    keep, drop = tmp_path / "keep.bin", tmp_path / "drop.bin"
    keep.write_bytes(rng.bytes(3 << 20))
    drop.write_bytes(rng.bytes(3 << 20))
    with ServerThread(ServerConfig(data_dir=str(data), grpc_port=0, http_port=-1)) as srv:
        c = mf.Client(f"grpc://{srv.target}")
        live = c.create_run("0").run_id
        dead = c.create_run("0").run_id
        c.log_artifact(live, str(keep))
        c.log_artifact(dead, str(drop))
        c.delete_run(dead)
        c.close()
    out = subprocess.run(
        [sys.executable, "-m", "metricflow.server.cli", "gc", "--data-dir", str(data),
         "--grace-period-hours", "0"], capture_output=True, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["bytes_freed"] >= 2 << 20 and report["complete"]
    with ServerThread(ServerConfig(data_dir=str(data), grpc_port=0, http_port=-1)) as srv:
        c = mf.Client(f"grpc://{srv.target}")
        dst = tmp_path / "dl"
        c.download_artifacts(live, "keep.bin", str(dst))
        got = dst / "keep.bin" if (dst / "keep.bin").exists() else dst
        assert got.read_bytes() == keep.read_bytes()
        c.close()
