"""Compiled rules: the active rules as numpy arrays, and one batch's per-key reductions.

A batch is one run's points as columns (`DecodedMetrics`). `reduce_batch` groups
them by key with one stable radix argsort of the key index and takes, per key,
the max and min of the finite values, the count of NaN/+-Inf and the last point
(in arrival order); `CompiledRules.breaches` then compares every threshold rule
with its key's reductions at once. No Python object per point, and none per rule
on the hot path: Python work happens only for rules whose state may change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._model import Rule

OP_CODES = {">": 0, ">=": 1, "<": 2, "<=": 3}
KIND_THRESHOLD, KIND_NONFINITE, KIND_CHANGE = 0, 1, 2
_KINDS = {"threshold": KIND_THRESHOLD, "nonfinite": KIND_NONFINITE, "change": KIND_CHANGE}


def compare(op: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise `a op b` with a per-element op code (NaN compares False)."""
    with np.errstate(invalid="ignore"):
        return (((op == 0) & (a > b)) | ((op == 1) & (a >= b)) | ((op == 2) & (a < b))
                | ((op == 3) & (a <= b)))


@dataclass
class BatchKeys:
    """Per-key reductions of one batch (arrays indexed by the batch's key index)."""

    present: np.ndarray  # bool: the key has points in the batch
    fmax: np.ndarray  # max of finite values (-inf when none)
    fmin: np.ndarray  # min of finite values (+inf when none)
    nonfinite: np.ndarray  # count of NaN/Inf points
    last_value: np.ndarray
    last_step: np.ndarray
    order: np.ndarray  # point indices grouped by key (stable)
    starts: np.ndarray  # group start in `order` per key
    counts: np.ndarray


def reduce_batch(b: DecodedMetrics) -> BatchKeys:
    nk = len(b.keys)
    ki = b.key_index
    if nk <= 65535:
        ki = ki.astype(np.uint16, copy=False)  # stable argsort of 16 bits is a radix sort
    order = np.argsort(ki, kind="stable")
    counts = np.bincount(b.key_index, minlength=nk)[:nk]
    starts = np.zeros(nk, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    present = counts > 0
    vals = np.asarray(b.values, dtype=np.float64)[order]
    finite = np.isfinite(vals)
    nonfinite = np.zeros(nk, dtype=np.int64)
    fmax = np.full(nk, -np.inf)
    fmin = np.full(nk, np.inf)
    last_value = np.full(nk, np.nan)
    last_step = np.zeros(nk, dtype=np.int64)
    if vals.size:
        idx = starts[present]
        nonfinite[present] = np.add.reduceat((~finite).astype(np.int64), idx)
        fv_hi = np.where(finite, vals, -np.inf)
        fv_lo = np.where(finite, vals, np.inf)
        fmax[present] = np.maximum.reduceat(fv_hi, idx)
        fmin[present] = np.minimum.reduceat(fv_lo, idx)
        last = starts[present] + counts[present] - 1
        last_value[present] = vals[last]
        last_step[present] = np.asarray(b.steps)[order][last]
    return BatchKeys(present, fmax, fmin, nonfinite, last_value, last_step, order, starts,
                     counts)


class CompiledRules:
    """The metric rules (threshold, nonfinite, change) as parallel arrays."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        metric_rules = [r for r in rules if r.condition in _KINDS]
        self.rules = metric_rules
        self.rule_ids = np.array([r.rule_id for r in metric_rules], dtype=np.int64)
        self.kind = np.array([_KINDS[r.condition] for r in metric_rules], dtype=np.int8)
        self.op = np.array([OP_CODES[r.op] for r in metric_rules], dtype=np.int8)
        self.threshold = np.array([r.threshold for r in metric_rules], dtype=np.float64)
        self.window = np.array([r.window_steps for r in metric_rules], dtype=np.int64)
        self.is_change = self.kind == KIND_CHANGE
        self.keys = sorted({r.metric_key for r in metric_rules})
        self.key_id = {k: i for i, k in enumerate(self.keys)}
        self.rule_key = np.array([self.key_id[r.metric_key] for r in metric_rules],
                                 dtype=np.int64)
        self.index = {r.rule_id: i for i, r in enumerate(metric_rules)}
        # Per key: the longest window of its change rules (how much history to keep).
        self.max_window = np.zeros(len(self.keys), dtype=np.int64)
        if len(metric_rules):
            np.maximum.at(self.max_window, self.rule_key, np.where(self.is_change,
                                                                   self.window, 0))

    def __len__(self) -> int:
        return len(self.rules)

    def key_map(self, batch_keys: Sequence[str]) -> np.ndarray:
        """For each rule key id, its index in the batch's keys (-1: absent)."""
        out = np.full(len(self.keys), -1, dtype=np.int64)
        for j, k in enumerate(batch_keys):
            i = self.key_id.get(k)
            if i is not None:
                out[i] = j
        return out

    def breaches(self, bk: BatchKeys, kmap: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(has_points, any point breaches, the last point breaches) per rule, for
        threshold and nonfinite rules (change rules are evaluated on their window)."""
        j = kmap[self.rule_key]
        has = j >= 0
        jj = np.where(has, j, 0)
        has &= bk.present[jj] if bk.present.size else np.zeros_like(has)
        if not bk.present.size:
            z = np.zeros(len(self.rules), dtype=bool)
            return z, z, z
        upper = self.op <= 1  # > and >=: the max decides; < and <=: the min
        extreme = np.where(upper, bk.fmax[jj], bk.fmin[jj])
        last = bk.last_value[jj]
        thr = self.kind == KIND_THRESHOLD
        any_b = thr & compare(self.op, extreme, self.threshold)
        last_b = thr & compare(self.op, last, self.threshold)
        nf = self.kind == KIND_NONFINITE
        any_b |= nf & (bk.nonfinite[jj] > 0)
        last_b |= nf & ~np.isfinite(last)
        return has, any_b & has, last_b & has
