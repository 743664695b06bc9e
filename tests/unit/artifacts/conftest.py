"""A local ArtifactStore and an ArtifactService in a thread
(tests/_support/artifact_fixtures.py)."""

from artifact_fixtures import ServerThread, channel, client, serve, server, store

__all__ = ["ServerThread", "channel", "client", "serve", "server", "store"]
