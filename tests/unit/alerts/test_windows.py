"""Change rules over step windows, vectorized across keys, against a plain reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._model import rule_from_dict
from metricflow.alerts._rules import CompiledRules, reduce_batch
from metricflow.alerts._windows import change_values


def _ref(history: dict[str, list[tuple[int, float]]], key: str, window: int
         ) -> tuple[bool, float]:
    pts = sorted(history[key])
    s1, v1 = pts[-1]
    base = [v for s, v in pts if s <= s1 - window]
    if not base:
        return False, 0.0
    v0 = base[-1]
    return True, (v1 - v0) / abs(v0)


def test_matches_a_plain_computation_over_many_batches() -> None:
    rng = np.random.default_rng(3)
    keys = ("a", "b", "c", "d")
    rules = [replace(rule_from_dict({"name": f"r{i}", "condition": {
        "type": "change", "metric": k, "op": ">", "value": 0.1, "window_steps": w}}),
        rule_id=i) for i, (k, w) in enumerate([("a", 5), ("a", 40), ("b", 1), ("c", 17),
                                               ("d", 300)])]
    c = CompiledRules(rules)
    history: dict[str, list[tuple[int, float]]] = {k: [] for k in keys}
    win = None
    step = 0
    for _ in range(30):
        n_steps = int(rng.integers(1, 25))
        present = [k for k in keys if rng.random() < 0.8] or ["a"]
        ki, st, va = [], [], []
        for s in range(step, step + n_steps):
            for k in present:
                v = float(rng.uniform(0.5, 2.0))
                ki.append(keys.index(k))
                st.append(s)
                va.append(v)
                history[k].append((s, v))
        step += n_steps
        b = DecodedMetrics("r" * 32, keys, np.array(ki, np.int32), np.array(st, np.int64),
                           np.array(st, np.int64), np.array(va))
        bk = reduce_batch(b)
        kmap = c.key_map(b.keys)
        idxs = np.array([i for i, r in enumerate(c.rules) if r.metric_key in present])
        win, change, ok, s1 = change_values(win, c, kmap, bk, b, idxs)
        for n, i in enumerate(idxs.tolist()):
            r = c.rules[i]
            want_ok, want = _ref(history, r.metric_key, r.window_steps)
            assert bool(ok[n]) == want_ok, (r.metric_key, r.window_steps)
            if want_ok:
                assert change[n] == want
            assert s1[n] == max(s for s, _ in history[r.metric_key])
    # the buffer keeps at most what the longest window of each key needs (+1 base point)
    for k, w in (("a", 40), ("b", 1), ("c", 17)):
        kept = win.steps[win.keys == c.key_id[k]]
        assert kept.min() >= max(s for s, _ in history[k]) - w - 1
