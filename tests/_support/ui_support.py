"""Helpers of the web UI's browser tests (tests/integration/ui): a watched page, servers."""

from __future__ import annotations

from typing import Any


class Watched:
    """A page plus what it must not do."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.console: list[str] = []  # console errors (printed when a test fails)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []"))

    def pwned(self) -> list[Any]:
        return list(self.page.evaluate("window.__pwned || []"))

    def assert_clean(self) -> None:
        """No XSS canary fired, no CSP violation, no uncaught script error."""
        assert self.pwned() == [], f"a payload executed: {self.pwned()}"
        assert self.csp_violations() == [], f"CSP violations: {self.csp_violations()}"
        assert self.errors == [], f"uncaught page errors: {self.errors}"



def start_server(data_dir: str, auth: Any = None, **settings: Any) -> Any:
    """An embedded server on `data_dir`, started; `auth`: an AuthConfig to turn auth on."""
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    if auth is not None:
        settings["security"] = SecurityConfig(auth_mode="on", auth=auth)
    return ServerThread(ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0,
                                     **settings)).start()


def base_url(srv: Any) -> str:
    return f"http://127.0.0.1:{srv.server.http_port}"
