"""The loss check: every run's stored point count and checksum against what was logged.

Logged values are multiples of 1/64 (markers are integers), so the sum of a
run's values is exact in float64 whatever the order; count AND checksum must
match exactly. The server's `count_points` is deduplicated, so a duplicate
shows as 'EXTRA', a dropped or altered point as 'LOSS'.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

CHUNK = 500


def _chunks(ids: list[str], n: int) -> list[list[str]]:
    return [ids[i:i + n] for i in range(0, len(ids), n)]


def _stored_total(client: Any, chunks: list[list[str]]) -> tuple[int, float]:
    n, s = 0, 0.0
    for c in chunks:
        cn, cs = client.count_points(c)
        n, s = n + cn, s + cs
    return n, s


def verify_points(client: Any, expected: Mapping[str, tuple[int, float]],
                  timeout_s: float = 120.0, max_listed: int = 50) -> dict[str, Any]:
    """Compare stored points with `expected` {run_id: (count, checksum)}; a report section.

    Acked points may take a moment to become queryable (Kafka -> writer), so the
    totals are polled until they match, stop changing for 10 s, or timeout_s passes.
    """
    ids = sorted(expected)
    chunks = _chunks(ids, CHUNK)
    exp_n = sum(int(c) for c, _ in expected.values())
    exp_s = sum(float(s) for _, s in expected.values())
    t0 = time.monotonic()
    last, changed_at = (-1, 0.0), t0
    while True:
        got = _stored_total(client, chunks) if ids else (0, 0.0)
        now = time.monotonic()
        if got[0] == exp_n or now - t0 > timeout_s or (got == last and now - changed_at > 10):
            break
        if got != last:
            last, changed_at = got, now
        time.sleep(0.5)
    waited = time.monotonic() - t0
    bad: list[dict[str, Any]] = []
    runs_short = runs_extra = runs_checksum = 0
    for c in chunks:
        want_n = sum(expected[r][0] for r in c)
        want_s = sum(expected[r][1] for r in c)
        if client.count_points(c) == (want_n, want_s):
            continue
        for r in c:  # drill down to the runs that differ
            n, s = client.count_points([r])
            en, es = expected[r]
            if (n, s) == (en, es):
                continue
            if n < en:
                runs_short += 1
            elif n > en:
                runs_extra += 1
            else:
                runs_checksum += 1
            if len(bad) < max_listed:
                bad.append({"run_id": r, "expected_points": en, "stored_points": n,
                            "expected_checksum": es, "stored_checksum": s})
    stored_n, stored_s = got
    if runs_short or runs_checksum:
        status = "LOSS"
    elif runs_extra:
        status = "EXTRA"
    else:
        status = "PASS"
    return {
        "status": status,
        "runs_checked": len(ids),
        "expected_points": exp_n,
        "stored_points": stored_n,
        "missing_points": max(0, exp_n - stored_n),
        "extra_points": max(0, stored_n - exp_n),
        "expected_checksum": exp_s,
        "stored_checksum": stored_s,
        "runs_with_missing_points": runs_short,
        "runs_with_extra_points": runs_extra,
        "runs_with_checksum_mismatch": runs_checksum,
        "mismatched_runs": bad,
        "wait_for_queryable_s": round(waited, 3),
    }
