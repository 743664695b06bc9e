"""governance_bench's data builders at tiny sizes: the chain it writes verifies with the
store's verify_chain, and lineage answers on the graph it builds (real PostgreSQL)."""

from __future__ import annotations

from loadtests._governance_data import audit_verify_seconds, lineage_query_ms


def test_the_bench_chain_verifies_end_to_end() -> None:
    got = audit_verify_seconds(3000)
    assert got["entries"] >= 3000  # plus the entries the store wrote when it was opened
    assert got["value"] > 0


def test_the_bench_lineage_graph_answers_upstream_and_digest_queries() -> None:
    got = lineage_query_ms(runs=600, versions=60, queries=5, models=6, datasets=40)
    assert got["runs"] == 600 and got["versions"] == 60
    assert got["run_inputs"] >= 600
    assert got["value"] > 0 and got["versions_trained_on_p50_ms"] > 0
