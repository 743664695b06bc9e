"""The web UI: its built files, its session routes and its data API (/ui-api/v1).

`mount_ui(app, core=core)` adds everything to a FastAPI app that serves the
query API; the auth layer (`secure_app`) then guards it like every other route:
each /ui-api endpoint names its rule (`mf_rule`), the static files and the
session routes are public (`mf_public`), and the HTML page at `/` is served by
server/_index.py when a browser asks for it. See docs/ui.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CSP", "SECURITY_HEADERS", "STATIC_DIR", "index_response", "mount_ui", "prefers_html",
           "session_router", "static_router", "ui_routers"]

# Loaded on first use: importing metricflow.ui does not import FastAPI.
_LAZY = {"CSP": "metricflow.ui._static", "SECURITY_HEADERS": "metricflow.ui._static",
         "STATIC_DIR": "metricflow.ui._static", "index_response": "metricflow.ui._static",
         "prefers_html": "metricflow.ui._static", "static_router": "metricflow.ui._static",
         "session_router": "metricflow.ui._session"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricflow.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


# Modules that export `ui_router(core) -> APIRouter` (the pages' data endpoints).
_API_MODULES = ("metricflow.ui._api", "metricflow.ui._api_compare")


def ui_routers(core: Any) -> list[Any]:
    """The /ui-api routers of the pages, bound to `core` (a module not present is skipped)."""
    out = []
    for name in _API_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        out.append(mod.ui_router(core))
    return out


def mount_ui(app: Any, *, core: Any = None) -> None:
    """Add the UI's static files, session routes and (given `core`) data API to `app`.

    Call before the auth layer wraps the app. `/` itself is the index route of
    server/_index.py (HTML for browsers, the JSON listing for API clients).
    """
    from metricflow.ui._session import session_router
    from metricflow.ui._static import static_router

    # The page's CSP and the other security headers are on the HTML and assets (what a
    # browser renders); /ui-api answers JSON, like /api/v1. (No header dependency here:
    # the auth layer reads a route's parameters, and a `response` one would be one.)
    app.include_router(static_router(), include_in_schema=False)
    app.include_router(session_router(), include_in_schema=False)
    if core is not None:
        for router in ui_routers(core):
            app.include_router(router, include_in_schema=False)
