"""Searches only ever return what the caller may read, on every page."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def three(secured):
    """Experiments A, B, C with 5 runs each; carol may read A and C only (default: none)."""
    a = secured.client("admin")
    ids, runs = {}, {}
    for name in ("sf-A", "sf-B", "sf-C"):
        eid = a.get_or_create_experiment(name)
        ids[name] = eid
        runs[eid] = set()
        for i in range(5):
            r = a.create_run(eid)
            a.log_batch(r.info.run_id, params={"i": str(i)})
            a.log_metric(r.info.run_id, "acc", i / 10, step=0)
            runs[eid].add(r.info.run_id)
    a.flush()
    a.close()
    for name in ("sf-A", "sf-C"):
        secured.store.set_experiment_permission(ids[name], "carol", "READ", actor="admin")
    return ids, runs


def _all_pages(client, experiment_ids, page_size, flt=""):
    seen, token, pages = [], "", 0
    while True:
        page, token = client.search_runs(experiment_ids, filter_string=flt,
                                         max_results=page_size, page_token=token)
        pages += 1
        seen += [r.info for r in page]
        if not token:
            return seen, pages


def test_run_search_is_filtered_in_sql_across_pages(secured, three) -> None:
    ids, runs = three
    readable = runs[ids["sf-A"]] | runs[ids["sf-C"]]
    c = secured.client("carol")
    try:
        for exp_ids in ([], [ids["sf-A"], ids["sf-B"], ids["sf-C"]], [ids["sf-B"]]):
            infos, pages = _all_pages(c, exp_ids, page_size=3)
            got = [i.run_id for i in infos]
            assert len(got) == len(set(got))  # no repeats across pages
            assert {i.experiment_id for i in infos} <= {ids["sf-A"], ids["sf-C"]}
            want = readable if exp_ids != [ids["sf-B"]] else set()
            assert set(got) & (runs[ids["sf-A"]] | runs[ids["sf-B"]] | runs[ids["sf-C"]]) \
                == want
        # Full pages: the filter is inside the query, so pages are not thinned out.
        page, _ = c.search_runs([ids["sf-A"], ids["sf-B"], ids["sf-C"]], max_results=4)
        assert len(page) == 4
        infos, _ = _all_pages(c, [], 2, "metrics.acc >= 0.2")
        assert {i.run_id for i in infos} <= readable and len(infos) == 6
    finally:
        c.close()


def test_experiment_and_model_search_are_filtered(secured, three) -> None:
    ids, _ = three
    c = secured.client("carol")
    try:
        names, token = [], None
        while True:
            page = c.registry.search_experiments(max_results=1, page_token=token)
            names += [e.name for e in page]
            token = page.token
            if not token:
                break
        assert "sf-B" not in names and {"sf-A", "sf-C"} <= set(names)
    finally:
        c.close()
    r = secured.post("carol", "/api/v1/runs/search",
                     {"experiment_ids": [ids["sf-B"]], "max_results": 100})
    assert r.status_code == 200 and r.json()["runs"] == []
    r = secured.post("carol", "/api/v1/experiments/search", {"max_results": 100})
    assert "sf-B" not in {e["name"] for e in r.json()["experiments"]}
