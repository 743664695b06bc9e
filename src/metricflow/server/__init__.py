"""The server side's transport pieces: CLI, HTTP front end, forwarding, start-up checks.

What a process is built from (settings, components, roles) lives in
`metricflow.app`; this package holds what it mounts and binds:
`cli` (the `metricflow` command), `_http` (the query API's FastAPI app),
`_ops` (the ops-only app), `_index` (`/` and `/docs`), `_forward` (one tracking
URI: forward or refuse what a role does not serve), `_net` (binding both
ports), `_preflight` (one-line start-up errors) and `_maintenance` (`gc`).
"""

from __future__ import annotations

__all__: list[str] = []
