"""MLflow's run-search fields on the query engine: a `datasets.*` clause resolved to a
(possibly long) run-id set, and `attributes.artifact_uri` as the MLflow API shows it."""

from __future__ import annotations

import uuid

import pytest

from metricflow.query._sql import LONG_LIST


def _search(core, flt: str, ids: list[str], order_by: list[str] | None = None) -> set[str]:
    out: set[str] = set()
    token = ""
    while True:
        page = core.search_run_ids([], flt, order_by or [], 50, token, "all",
                                   dataset_runs=lambda f, o, v: ids, artifact_root="")
        out.update(page.run_ids)
        token = page.next_page_token
        if not token:
            return out


@pytest.mark.parametrize("extra", [0, LONG_LIST + 500])
@pytest.mark.parametrize("comma", [False, True])
def test_resolved_sets_short_long_and_with_commas(dataset, extra: int, comma: bool) -> None:
    core, runs = dataset
    real = sorted(runs)[:7]
    ids = [uuid.uuid4().hex for _ in range(extra)] + real + (["a,b"] if comma else [])
    assert _search(core, "datasets.name = 'x'", ids) == set(real)
    # as one clause among others, driven by a keyed table too
    team = {r for r, ref in runs.items() if ref.tags.get("team") == "nlp_core"}
    assert team
    got = _search(core, "datasets.digest = 'd' OR tags.team = 'nlp_core'", ids,
                  ["tags.team DESC"])
    assert got == set(real) | team


def test_an_empty_set_matches_nothing(dataset) -> None:
    core, _ = dataset
    assert _search(core, "datasets.name = 'x'", []) == set()
    assert _search(core, "datasets.name = 'x' OR attributes.run_id = 'nope'", []) == set()


def test_artifact_uri_of_runs_without_a_stored_uri(dataset) -> None:
    core, runs = dataset
    rid = sorted(runs)[0]
    exp = runs[rid].attrs["experiment_id"]
    uri = f"mlflow-artifacts:/{exp}/{rid}/artifacts"
    assert _search(core, f"attributes.artifact_uri = '{uri}'", []) == {rid}
    assert rid not in _search(core, f"attributes.artifact_uri != '{uri}'", [])
    assert _search(core, f"attributes.artifact_uri LIKE '%/{rid}/artifacts'", []) == {rid}
