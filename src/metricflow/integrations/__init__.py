"""Integrations of metricflow with other libraries, each an optional extra.

Nothing is imported here: `metricflow.integrations.optuna` needs Optuna
(`pip install metricflow[optuna]`) and loads it only when imported itself.
"""

from __future__ import annotations

__all__: list[str] = []
