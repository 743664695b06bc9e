"""Fixtures of the serving tests (see serving_stack.py)."""

from serving_stack import serve, stack  # noqa: F401 - module/test-scoped fixtures
