"""Where a serve process reads its deployment and reports variant status.

`DeploymentSource` is the seam; `HttpDeploymentSource` talks to the control plane's
`/api/v1/deployments` (any role that mounts it), so a serve process needs only an
HTTP address and, with auth on, a token.
"""

from __future__ import annotations

from typing import Protocol

from metricflow.entities import Deployment, VariantStatus, deployment_from_dict
from metricflow.errors import MetricflowError, NotFound


class DeploymentSource(Protocol):
    def get(self, name: str) -> Deployment:
        """The deployment with each alias resolved to a version (raises NotFound)."""
        ...

    def report(self, name: str, status: VariantStatus) -> None:
        """Record a variant's state (audit log, `deploy show`)."""
        ...


class HttpDeploymentSource:
    """The control plane's /api/v1 over HTTP (one keep-alive session)."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def _check(self, r: object, what: str) -> dict[str, object]:
        status = getattr(r, "status_code", 0)
        try:
            doc = r.json()  # type: ignore[attr-defined]
        except ValueError:
            doc = {}
        if status == 404:
            raise NotFound(str(doc.get("message") or f"{what}: not found"))
        if status != 200:
            raise MetricflowError(f"{what}: HTTP {status} {doc.get('message') or ''}".strip())
        return doc  # type: ignore[no-any-return]

    def get(self, name: str) -> Deployment:
        r = self._session.get(f"{self.base_url}/api/v1/deployments/get", params={"name": name},
                              timeout=self.timeout_s)
        doc = self._check(r, f"deployment {name!r}")
        return deployment_from_dict(doc["deployment"])  # type: ignore[arg-type]

    def report(self, name: str, status: VariantStatus) -> None:
        r = self._session.post(
            f"{self.base_url}/api/v1/deployments/report-status",
            json={"name": name, "variant": status.variant, "state": status.state,
                  "version": status.version, "reason": status.reason,
                  "reporter": status.reporter}, timeout=self.timeout_s)
        self._check(r, f"report-status for {name}/{status.variant}")

    def close(self) -> None:
        self._session.close()
