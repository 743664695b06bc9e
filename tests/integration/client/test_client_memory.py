"""A long-lived client drops the buffers of ended runs without losing their points.

The memory growth itself is measured over 10k runs in
tests/unit/client/test_client_run_buffers.py (tracemalloc); here a real client and server
show that ending runs (update_run and set_terminated) is what frees them.
"""

from __future__ import annotations

import metricflow as mf


def test_ended_runs_leave_no_buffer_in_a_long_lived_client(embedded_server) -> None:
    c = mf.Client(f"grpc://{embedded_server.target}", linger_ms=10)
    run_ids: list[str] = []
    try:
        for i in range(40):
            rid = c.create_run("0").run_id
            run_ids.append(rid)
            for step in range(3):
                c.log_metrics(rid, {"loss": 1.0 / (step + 1), f"k{i % 11}": float(i)}, step=step)
            c.update_run(rid, status="FINISHED")  # no flush: its buffer goes after the drain
        live = c.health.run_buffers
        c.flush(60)
        assert c.health.run_buffers == 0, f"{c.health.run_buffers} of 40 ended runs kept"
        assert live < 40  # most were already dropped while logging went on

        # set_terminated (what the fluent end_run calls) flushes, then forgets the run.
        for _ in range(3):
            rid = c.create_run("0").run_id
            run_ids.append(rid)
            for step in range(3):
                c.log_metrics(rid, {"loss": 0.5, "k0": 1.0}, step=step)
            c.set_terminated(rid)
            assert c.health.run_buffers == 0
        count, _ = c.count_points(run_ids)
        assert count == len(run_ids) * 3 * 2  # nothing lost by forgetting ended runs
    finally:
        c.close()
