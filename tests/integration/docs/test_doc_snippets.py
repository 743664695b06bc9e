"""The README's and docs' runnable snippets, run as written against real servers.

A doc whose marked snippet no longer runs fails here (marker syntax, the rules of
a run and the placeholders: snippets.py). `EXPECTED` pins where the marked
snippets are, so a snippet cannot silently lose its marker either: a change of the
list must be a change of this file too.
"""

from __future__ import annotations

import pytest
from snippets import Scenario, find_snippets, groups, snippet_table

pytestmark = pytest.mark.timeout(900)

SNIPPETS = find_snippets()
GROUPS = groups(SNIPPETS)
NEEDS_KAFKA = {"distributed"}

EXPECTED = {
    ("README.md", "embedded"): ["sh", "python", "sh"],
    ("README.md", "auth"): ["sh"],
    ("docs/loadtesting.md", "embedded"): ["sh"],
    ("docs/operations.md", "distributed"): ["sh", "file train.py", "file mlflow_train.py"],
    ("docs/query.md", "embedded"): ["sh", "python", "sh"],
    ("docs/registry.md", "control-plane"): ["python"],
    ("docs/security.md", "admin"): ["sh"],
}
"""(doc, group) -> the kinds of its marked snippets, in document order."""


def test_the_marked_snippets_are_the_expected_ones() -> None:
    got: dict[tuple[str, str], list[str]] = {}
    for row in snippet_table(SNIPPETS):
        got.setdefault((row["where"].split(":")[0], row["group"]), []).append(row["kind"])
    assert got == EXPECTED


@pytest.mark.parametrize("key", sorted(GROUPS), ids=lambda k: f"{k[0]}:{k[1]}")
def test_snippets_run_as_written(key: tuple[str, str], request: pytest.FixtureRequest,
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    doc, group = key
    kafka = request.getfixturevalue("kafka_bootstrap") if group in NEEDS_KAFKA else None
    scenario = Scenario(tmp_path_factory.mktemp(f"snippets-{group}"), kafka)
    try:
        # Files first: a doc may show a script after the command that runs it.
        for snippet in sorted(GROUPS[key], key=lambda s: s.file is None):
            scenario.run(snippet)
    finally:
        scenario.stop()
