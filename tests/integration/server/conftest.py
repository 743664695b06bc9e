"""Fixtures of the distributed-roles tests (see roles_cluster.py)."""

from roles_cluster import cluster  # noqa: F401 - the module-scoped deployment fixture
