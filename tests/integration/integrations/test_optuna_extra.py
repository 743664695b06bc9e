"""Optuna is an extra: `import metricflow` never loads it, and without it the
integration says what to install."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_OPTUNA = """
import importlib.abc, sys

class NoOptuna(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "optuna" or name.startswith("optuna."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoOptuna())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_metricflow_does_not_import_optuna() -> None:
    r = _run("import sys, metricflow, metricflow.integrations\n"
             "metricflow.Client, metricflow.start_run\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'optuna'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_without_optuna_the_error_names_the_extra() -> None:
    r = _run(_BLOCK_OPTUNA + "import metricflow\n"
             "try:\n"
             "    import metricflow.integrations.optuna\n"
             "except ImportError as e:\n"
             "    print(type(e).__name__, '|', e, '|', type(e.__cause__).__name__)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("ImportError | metricflow.integrations.optuna needs Optuna: "
                                "pip install metricflow[optuna] | ModuleNotFoundError")
