"""Must-show concurrency properties, with several OS processes, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from metricflow.store.metadata import MetadataStore

WORKER = str(Path(__file__).with_name("_worker.py"))


def _run_workers(uri: str, op: str, model: str, chunks: list[str], threads: int) -> list[str]:
    start_at = time.time() + 3.0  # every process opens its store, then all start at once
    procs = [subprocess.Popen([sys.executable, WORKER, uri, op, model, chunk, str(threads),
                               str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for chunk in chunks]
    results: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.extend(json.loads(out.strip().splitlines()[-1]))
    return results


def test_50_concurrent_versions_from_5_processes_are_exactly_1_to_50(
        store: MetadataStore, metadata_uri: str) -> None:
    store.create_registered_model("race")
    got = _run_workers(metadata_uri, "create_version", "race", ["10"] * 5, threads=5)
    assert sorted(int(v) for v in got) == list(range(1, 51))
    versions, _ = store.search_model_versions("name = 'race'", max_results=100)
    assert sorted(int(v.version) for v in versions) == list(range(1, 51))
    assert store.create_model_version("race", "runs:/abc/m").version == "51"
    created = store.search_audit_log(model_name="race", action="create_model_version",
                                     max_results=100)[0]
    assert len(created) == 51


def test_20_concurrent_production_transitions_leave_one_production(
        store: MetadataStore, metadata_uri: str) -> None:
    store.create_registered_model("promo")
    for i in range(20):
        store.create_model_version("promo", f"runs:/{i:032x}/m")
    chunks = [",".join(str(v) for v in range(1 + k, 21, 4)) for k in range(4)]
    got = _run_workers(metadata_uri, "promote", "promo", chunks, threads=5)
    assert sorted(int(v) for v in got) == list(range(1, 21))
    prod = store.get_latest_versions("promo", ["Production"])
    versions, _ = store.search_model_versions("name = 'promo'", max_results=100)
    stages = [v.current_stage for v in versions]
    assert stages.count("Production") == 1
    assert stages.count("Archived") == 19
    assert prod[0].current_stage == "Production"
    audit, _ = store.search_audit_log(model_name="promo",
                                      action="transition_model_version_stage")
    assert len(audit) == 20
    assert {e.actor for e in audit} == {f"user{i}" for i in range(1, 21)}
    # The last transition committed is the Production one; it archived whatever was there.
    assert audit[-1].version == prod[0].version
    assert all(e.comment.startswith("promote ") for e in audit)
