"""Where a deployment's request log lives: the contract between `serve` and the report.

A serve process logs every request into runs of the experiment `experiment_name(d)`,
tagged with the deployment, the variant, the version and the role; one point per
request per key, at step = the request's serial number in its run. The report
(`_report.py`) finds the runs by the deployment tag and groups them by variant.
"""

from __future__ import annotations

EXPERIMENT_PREFIX = "serving/"
TAG_DEPLOYMENT = "mf.serving.deployment"
TAG_VARIANT = "mf.serving.variant"
TAG_VERSION = "mf.serving.version"
TAG_INSTANCE = "mf.serving.instance"
TAG_ROLE = "mf.serving.role"
""""primary" (routed traffic) or "shadow" (mirrored copies)."""
ROLE_PRIMARY = "primary"
ROLE_SHADOW = "shadow"

KEY_LATENCY = "latency_ms"
KEY_STATUS = "status"
"""The HTTP status code answered."""
KEY_ERROR = "error"
"""1 when the request failed on the server side (status >= 500), else 0."""
KEY_PREDICTION = "prediction"
OUTCOME_PREFIX = "outcome."
"""`outcome.<name>`: a label or business outcome attached later by /feedback, at the
request's step in the request's run."""


def experiment_name(deployment: str) -> str:
    """The experiment that holds a deployment's request log."""
    return f"{EXPERIMENT_PREFIX}{deployment}"
