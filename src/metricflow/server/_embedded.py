"""Moved: `metricflow server` is `metricflow.app.App` with the `server` role."""

from __future__ import annotations

from metricflow.app import App, ServerThread

EmbeddedServer = App

__all__ = ["EmbeddedServer", "ServerThread"]
