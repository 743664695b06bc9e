"""The committed generated protobuf code must match `make proto` output."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path):
    out = tmp_path / "_proto"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(out)],
                   check=True)
    committed = ROOT / "src" / "metricflow" / "_proto"
    fresh = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    current = {p.relative_to(committed) for p in committed.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert fresh == current, "run `make proto` and commit the result"
    stale = [str(p) for p in fresh if not filecmp.cmp(out / p, committed / p, shallow=False)]
    assert not stale, f"stale generated files (run `make proto`): {stale}"
