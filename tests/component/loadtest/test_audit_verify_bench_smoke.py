"""loadtests/audit_verify_bench.py at a tiny size: one JSON line with the issue's key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_prints_one_json_line_with_audit_verify_s() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "loadtests" / "audit_verify_bench.py"),
                          "--entries", "300", "--workers", "1", "--json"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["entries"] == 301 and data["audit_verify_s"] == data["by_workers"]["1"] >= 0


def test_refuses_bad_sizes() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "loadtests" / "audit_verify_bench.py"),
                          "--entries", "0", "--json"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode != 0 and "--entries" in out.stderr
