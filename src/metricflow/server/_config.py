"""Moved: the settings tree lives in `metricflow.app` (import it from there)."""

from __future__ import annotations

from metricflow.app import SecurityConfig, ServerConfig, auth_banner, resolve_auth

__all__ = ["SecurityConfig", "ServerConfig", "auth_banner", "resolve_auth"]
