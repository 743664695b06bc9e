"""The wheel: runtime code and its data ship; the test/bench launchers (devservices) do not.
Building the metadata prints no license deprecation warning (issue 22 item 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "node_modules")
    for name in ("src", "loadtests"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(src), "-w", str(out)],
                   cwd=out, check=True, capture_output=True, timeout=240)
    (whl,) = out.glob("metricflow-*.whl")
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def test_devservices_is_not_in_the_wheel(wheel_names: set[str]) -> None:
    assert "metricflow/devservices/__init__.py" not in wheel_names
    assert not [n for n in wheel_names if n.startswith("metricflow/devservices/")]


def test_runtime_code_and_data_ship(wheel_names: set[str]) -> None:
    for name in ("metricflow/__init__.py", "metricflow/py.typed",
                 "metricflow/server/cli.py",
                 "metricflow/_proto/metricflow/ingest/v1/ingest_pb2.pyi",
                 "metricflow/store/metadata/migrations/env.py",
                 "metricflow/store/metadata/migrations/versions/0001_experiments.py",
                 "metricflow/store/metadata/migrations/script.py.mako",
                 "loadtests/loadtest/__init__.py"):
        assert name in wheel_names, name


def test_every_package_data_pattern_names_files_that_exist() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = cfg["tool"]["setuptools"]["package-data"]
    roots = {"metricflow": ROOT / "src" / "metricflow", "loadtests": ROOT / "loadtests"}
    for package, patterns in data.items():
        for pattern in patterns:
            assert list(roots[package].glob(pattern)), f"{package}: {pattern} matches nothing"


def test_package_metadata_builds_without_license_deprecation_warnings(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c",
         "import sys; from setuptools import build_meta; "
         "build_meta.prepare_metadata_for_build_wheel(sys.argv[1])", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "license" not in res.stderr.lower(), res.stderr[-2000:]
    (meta,) = tmp_path.glob("*.dist-info/METADATA")
    assert "License-Expression: Apache-2.0" in meta.read_text()
