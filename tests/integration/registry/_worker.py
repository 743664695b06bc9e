"""Subprocess worker for the concurrency tests (a fresh interpreter per process).

Usage: python _worker.py <uri> <op> <model> <count> <threads> <start_at_epoch_s>
Prints one JSON list of results (version numbers) to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from metricflow.store.metadata import open_metadata_store


def main() -> None:
    uri, op, model, count, threads, start_at = sys.argv[1:7]
    store = open_metadata_store(uri)
    time.sleep(max(0.0, float(start_at) - time.time()))

    def one(i: int) -> str:
        if op == "create_version":
            return store.create_model_version(model, f"runs:/{i:032x}/model").version
        if op == "promote":
            return store.transition_model_version_stage(
                model, i, "Production", archive_existing_versions=True,
                comment=f"promote {i}", actor=f"user{i}").version
        raise SystemExit(f"unknown op {op}")

    items = [int(x) for x in count.split(",")] if "," in count else list(range(int(count)))
    with ThreadPoolExecutor(int(threads)) as pool:
        out = list(pool.map(one, items))
    store.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
