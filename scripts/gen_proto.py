"""Generate Python code for every proto under proto/ into src/metricflow/_proto/.

Usage: python scripts/gen_proto.py [--out DIR]

Generated modules live at metricflow._proto.metricflow.<area>.v1.<name>_pb2; imports
between generated files are rewritten to that package so they never shadow the
real `metricflow` package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
_IMPORT = re.compile(r"^from metricflow\.(\S+) import (\S+_pb2)", re.M)


def generate(out: Path) -> None:
    from grpc_tools import protoc  # noqa: PLC0415 - dev-only dependency

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for f in out.rglob("*.py*"):
        text = f.read_text()
        fixed = _IMPORT.sub(r"from metricflow._proto.metricflow.\1 import \2", text)
        if fixed != text:
            f.write_text(fixed)
    for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "metricflow" / "_proto")
    generate(ap.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
