"""metricflow: experiment tracking for ML at scale, with an MLflow-like API.

    import metricflow as mf
    mf.set_experiment("demo")
    with mf.start_run():
        mf.log_params({"lr": 0.01})
        for step in range(100):
            mf.log_metrics({"loss": 1 / (step + 1)}, step=step)

Names load lazily so `import metricflow` stays fast and needs no server extras.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_FLUENT = ("set_tracking_uri", "get_tracking_uri", "set_experiment", "start_run", "end_run",
           "active_run", "log_metric", "log_metrics", "log_param", "log_params", "set_tag",
           "set_tags", "flush", "get_run", "get_metric_history", "search_runs", "get_client",
           "ActiveRun", "log_artifact", "log_artifacts", "log_text", "log_dict", "register_model",
           "alert")
_LAZY = {name: "metricflow.client._fluent" for name in _FLUENT}
_LAZY.update({"Client": "metricflow.client._client", "MetricflowError": "metricflow.errors"})

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'metricflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
