"""Log Optuna studies to metricflow: one study run, one child run per trial.

    from metricflow.integrations.optuna import MetricflowCallback

    mfc = MetricflowCallback("grpc://127.0.0.1:50051", experiment_name="tuning")
    study.optimize(objective, n_trials=100, n_jobs=4, callbacks=[mfc])

What is logged where, the trial-state mapping and how several processes share one
study run: docs/integrations.md. Needs Optuna: `pip install metricflow[optuna]`.
"""

from __future__ import annotations

try:
    import optuna as _optuna  # noqa: F401 - fail here, with the install hint, not later
except ImportError as e:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "metricflow.integrations.optuna needs Optuna: pip install metricflow[optuna]"
    ) from e

from metricflow.integrations.optuna._callback import MetricflowCallback
from metricflow.integrations.optuna._study_run import STATE_TO_STATUS, study_run_id_for

__all__ = ["STATE_TO_STATUS", "MetricflowCallback", "study_run_id_for"]
