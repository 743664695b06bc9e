"""Subprocess worker of test_transition_serialization.py (a fresh interpreter each).

Usage: python _transition_worker.py <uri> <op> <model> <items,...> <threads> <start_at_s>
Prints one JSON list (one result per item) to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from metricflow.store.metadata import open_metadata_store


def main() -> None:
    uri, op, model, items, threads, start_at = sys.argv[1:7]
    store = open_metadata_store(uri)
    time.sleep(max(0.0, float(start_at) - time.time()))  # every process starts at once

    def one(i: int) -> str:
        if op == "alias":  # move `champion` to version i
            store.set_registered_model_alias(model, "champion", i, actor=f"user{i}")
            return str(i)
        if op == "mixed":  # number a new version, promote it, point the alias at it
            v = store.create_model_version(model, f"runs:/{i:032x}/model",
                                           actor=f"user{i}").version
            store.transition_model_version_stage(model, v, "Production",
                                                 archive_existing_versions=True,
                                                 comment=f"item {i}", actor=f"user{i}")
            store.set_registered_model_alias(model, "champion", v, actor=f"user{i}")
            return v
        raise SystemExit(f"unknown op {op}")

    with ThreadPoolExecutor(int(threads)) as pool:
        out = list(pool.map(one, [int(x) for x in items.split(",")]))
    store.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
