"""Relative-change rules over step windows, for all of a batch's keys at once.

Each run keeps one flat buffer of the (key, step, value) points its change rules may
still need, sorted by (key, step). A batch's points of those keys are merged in (a
stable sort of two sorted runs: a linear merge), every rule finds its base point with
one `searchsorted` on a composite (key, step) code, and the buffer is trimmed to each
key's longest window. No Python loop over keys or points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._rules import BatchKeys, CompiledRules

_SPAN = np.int64(1) << np.int64(40)  # steps of one key fit below this in the code


@dataclass
class Window:
    keys: np.ndarray  # global key id (CompiledRules.keys) per point
    steps: np.ndarray
    values: np.ndarray


def _empty() -> Window:
    return Window(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def change_values(win: Window | None, c: CompiledRules, kmap: np.ndarray, bk: BatchKeys,
                  b: DecodedMetrics, idxs: np.ndarray
                  ) -> tuple[Window, np.ndarray, np.ndarray, np.ndarray]:
    """(the run's new window, change per rule, valid per rule, last step per rule) for
    the change rules `idxs`: (v_last - v_base) / |v_base|, v_base at the last step at or
    before last step - window_steps."""
    old = win or _empty()
    gk = np.unique(c.rule_key[idxs])  # global keys of these rules (all in the batch)
    jb = kmap[gk]
    counts = bk.counts[jb]
    pidx = bk.points_of(jb)
    keys = np.concatenate([old.keys, np.repeat(gk, counts)])
    steps = np.concatenate([old.steps, np.asarray(b.steps)[pidx].astype(np.int64)])
    vals = np.concatenate([old.values, np.asarray(b.values, dtype=np.float64)[pidx]])
    smin = steps.min()
    if int(steps.max() - smin) >= int(_SPAN):  # steps too far apart for the code
        o = np.lexsort((steps, keys))
        keys, steps, vals = keys[o], steps[o], vals[o]
        code = keys * _SPAN + np.minimum(steps - smin, _SPAN - 1)
    else:
        code = keys * _SPAN + (steps - smin)
        o = np.argsort(code, kind="stable")  # two sorted runs: a merge
        keys, steps, vals, code = keys[o], steps[o], vals[o], code[o]
    # Last point of each key present.
    ends = np.flatnonzero(np.append(keys[1:] != keys[:-1], True))
    kpres = keys[ends]
    last_of = np.full(len(c.keys), -1, dtype=np.int64)
    last_of[kpres] = ends
    rk = c.rule_key[idxs]
    li = last_of[rk]
    s1, v1 = steps[li], vals[li]
    target = rk * _SPAN + (s1 - c.window[idxs] - smin)
    base = np.searchsorted(code, target, side="right") - 1
    ok = (base >= 0) & (keys[np.maximum(base, 0)] == rk)
    v0 = vals[np.maximum(base, 0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(v0 != 0, (v1 - v0) / np.abs(v0),
                          np.where(v1 == v0, 0.0, np.inf * np.sign(v1 - v0)))
    ok &= np.isfinite(v0) & np.isfinite(v1)
    # Keep, per key, from the base point of its longest window on.
    starts = np.append(0, ends[:-1] + 1)
    keep_from = np.searchsorted(code, kpres * _SPAN + (steps[ends] - c.max_window[kpres]
                                                       - smin), side="right") - 1
    keep_from = np.maximum(keep_from, starts)
    lens = ends - keep_from + 1
    sel = np.repeat(keep_from - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
    return Window(keys[sel], steps[sel], vals[sel]), change, ok, s1
