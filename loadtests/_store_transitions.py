"""Transitions straight on the store (no HTTP): one of governance_bench's worker processes.

    python -m loadtests._store_transitions URI MODELS VERSIONS THREADS START_AT DURATION_S SEED

Each thread alternates a stage transition (archiving the stage's other versions) and
a move of the `champion` alias, on random models of ha-model-0..MODELS-1, from
START_AT (epoch s, so every process starts together) for DURATION_S. Prints one JSON
line: {"ops": N, "errors": E, "latencies_ms": [...]}.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

from metricflow.store.metadata import open_metadata_store


def main() -> None:
    uri, models, versions, threads, start_at, duration, seed = sys.argv[1:8]
    store = open_metadata_store(uri)
    n_models, n_versions = int(models), int(versions)
    ops, errors, lat = [0], [0], []
    lock = threading.Lock()
    begin = float(start_at)
    end = begin + float(duration)

    def run(k: int) -> None:
        rng = random.Random(f"{seed}-{k}")
        i = 0
        time.sleep(max(0.0, begin - time.time()))
        while time.time() < end:
            name = f"ha-model-{rng.randrange(n_models)}"
            v = rng.randint(1, n_versions)
            t0 = time.monotonic()
            try:
                if i % 2 == 0:
                    store.transition_model_version_stage(
                        name, v, rng.choice(("Staging", "Production")),
                        archive_existing_versions=True, comment=f"bench {seed}-{k}-{i}")
                else:
                    store.set_registered_model_alias(name, "champion", v)
                took = time.monotonic() - t0
                with lock:
                    ops[0] += 1
                    lat.append(1000 * took)
            except Exception:  # counted; the figure is what succeeded
                with lock:
                    errors[0] += 1
            i += 1

    pool = [threading.Thread(target=run, args=(k,)) for k in range(int(threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    store.close()
    print(json.dumps({"ops": ops[0], "errors": errors[0], "latencies_ms": lat}))


if __name__ == "__main__":
    main()
