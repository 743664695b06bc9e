"""Versioned revisions; each one is append-only once released."""
