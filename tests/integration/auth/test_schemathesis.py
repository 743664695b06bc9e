"""Schemathesis against the served OpenAPI spec (as an admin): no 5xx on any input.

The operations and their input strategies come from schemathesis; hypothesis
drives them directly (the schemathesis pytest plugin is not needed). Budget:
METRICFLOW_FUZZ_EXAMPLES // 20 examples per operation (default 7).
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

N = max(1, int(os.environ.get("METRICFLOW_FUZZ_EXAMPLES", "150")) // 20)


def test_no_server_errors_on_any_operation(secured) -> None:
    spec = secured.srv.server.http_app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 40
    failures: list[str] = []
    headers = secured.headers("admin")

    def fuzz(op: object) -> None:
        @settings(max_examples=N, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            case = data.draw(op.as_strategy())  # type: ignore[attr-defined]
            resp = case.call(base_url=secured.http, headers=headers, timeout=60)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.path} -> {resp.status_code}: "
                                f"{resp.text[:200]} body={str(case.body)[:200]}")
        run()

    for op in ops:
        fuzz(op)
    assert not failures, "\n".join(failures[:20])
