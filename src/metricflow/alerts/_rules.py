"""Compiled rules: the active rules as numpy arrays, and one batch's per-key reductions.

A batch is one run's points as columns (`DecodedMetrics`). `reduce_batch` takes, per
key, the max and min of the finite values, the count of NaN/+-Inf and the last point
(in arrival order); `CompiledRules.breaches` then compares every threshold rule
with its key's reductions at once. No Python object per point, and none per rule
on the hot path: Python work happens only for rules whose state may change.

Two layouts skip the sort. metricflow's client sends each batch grouped by key (the key
index never decreases): each key's points are then one slice, reduced in place with no
sort and no gather. A batch in logging order from a loop that logs the same keys every
step has the key index 0, 1, ..., k-1 repeated: it is read as a (steps x k) matrix, a
column max and min per key and its last row. Any other layout, or a NaN/Inf anywhere in
the batch, takes the general path: one stable radix argsort of the key index, then
segment reductions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._model import Rule

_KEY_MAPS = 4096  # key tuples whose key map is kept (then the cache starts over) ...
_KEY_MAP_KEYS = 250_000  # ... or keys in them all (a run's key list grows batch by batch)
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
    counts: np.ndarray
    order: np.ndarray | None  # point indices grouped by key (stable); None: the identity
    starts: np.ndarray | None  # group start in `order` per key; None: step-major

    def points_of(self, keys: np.ndarray) -> np.ndarray:
        """Indices in the batch of the points of batch keys `keys`, key by key, each key's
        in arrival order."""
        counts = self.counts[keys]
        if self.starts is None:  # step-major: key j's points are j, j + k, j + 2k, ...
            rows = int(counts[0]) if len(counts) else 0
            return (keys[:, None] + len(self.counts) * np.arange(rows)[None, :]).ravel()
        first = np.repeat(self.starts[keys] - (np.cumsum(counts) - counts), counts)
        at = first + np.arange(int(counts.sum()))
        return at if self.order is None else self.order[at]


def _segments(key_index: np.ndarray, nk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points per key, where each key's run starts once grouped, which keys have points)."""
    counts = np.bincount(key_index, minlength=nk)[:nk]
    starts = np.zeros(nk, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return counts, starts, counts > 0


def _finite_extremes(vals: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Max and min of each segment of `vals` starting at `idx`; None when a NaN or Inf
    is among them (they propagate into the extremes, so two checks of k values tell)."""
    hi, lo = np.maximum.reduceat(vals, idx), np.minimum.reduceat(vals, idx)
    return (hi + 0.0, lo + 0.0) if np.isfinite(hi).all() and np.isfinite(lo).all() else None


def _fast(b: DecodedMetrics) -> BatchKeys | None:
    """The reductions of a batch grouped by key or step-major, with finite values only;
    None for any other batch (the general path)."""
    nk, n = len(b.keys), len(b.values)
    if not n or not nk:
        return None
    ki = np.asarray(b.key_index)
    vals = np.asarray(b.values, dtype=np.float64)
    steps = np.asarray(b.steps)
    if not (ki[1:] < ki[:-1]).any():  # grouped by key: each key one slice
        counts, starts, present = _segments(ki, nk)
        idx = starts[present]
        ext = _finite_extremes(vals, idx)
        if ext is None:
            return None
        fmax, fmin = np.full(nk, -np.inf), np.full(nk, np.inf)
        fmax[present], fmin[present] = ext
        last_value, last_step = np.full(nk, np.nan), np.zeros(nk, dtype=np.int64)
        last = idx + counts[present] - 1
        last_value[present], last_step[present] = vals[last], steps[last]
        return BatchKeys(present, fmax, fmin, np.zeros(nk, dtype=np.int64), last_value,
                         last_step, counts, None, starts)
    if n % nk:
        return None
    rows = n // nk
    if not (ki.reshape(rows, nk) == np.arange(nk, dtype=ki.dtype)).all():
        return None
    m = vals.reshape(rows, nk)
    fmax, fmin = m.max(axis=0) + 0.0, m.min(axis=0) + 0.0  # (+ 0.0: -0.0 as 0.0, as below)
    if not (np.isfinite(fmax).all() and np.isfinite(fmin).all()):
        return None
    return BatchKeys(np.ones(nk, dtype=bool), fmax, fmin, np.zeros(nk, dtype=np.int64),
                     m[-1].copy(), steps.reshape(rows, nk)[-1].astype(np.int64),
                     np.full(nk, rows, dtype=np.int64), None, None)


def reduce_batch(b: DecodedMetrics) -> BatchKeys:
    fast = _fast(b)
    if fast is not None:
        return fast
    nk = len(b.keys)
    ki = b.key_index
    if nk <= 65535:
        ki = ki.astype(np.uint16, copy=False)  # stable argsort of 16 bits is a radix sort
    order = np.argsort(ki, kind="stable")
    counts, starts, present = _segments(b.key_index, nk)
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
        fmax[present] = np.maximum.reduceat(fv_hi, idx) + 0.0  # one sign of zero whatever
        fmin[present] = np.minimum.reduceat(fv_lo, idx) + 0.0  # the order of reduction
        last = starts[present] + counts[present] - 1
        last_value[present] = vals[last]
        last_step[present] = np.asarray(b.steps)[order][last]
    return BatchKeys(present, fmax, fmin, nonfinite, last_value, last_step, counts, order,
                     starts)


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
        self._key_maps: dict[tuple[str, ...], np.ndarray] = {}
        self._key_map_keys = 0  # keys in the cached tuples
        # Per key: the longest window of its change rules (how much history to keep).
        self.max_window = np.zeros(len(self.keys), dtype=np.int64)
        if len(metric_rules):
            np.maximum.at(self.max_window, self.rule_key, np.where(self.is_change,
                                                                   self.window, 0))

    def __len__(self) -> int:
        return len(self.rules)

    def key_map(self, batch_keys: Sequence[str]) -> np.ndarray:
        """For each rule key id, its index in the batch's keys (-1: absent). Read-only:
        kept per key tuple, as a run's batches usually repeat the same keys."""
        kt = tuple(batch_keys)
        out = self._key_maps.get(kt)
        if out is not None:
            return out
        out = np.full(len(self.keys), -1, dtype=np.int64)
        for j, k in enumerate(kt):
            i = self.key_id.get(k)
            if i is not None:
                out[i] = j
        out.setflags(write=False)
        if len(self._key_maps) >= _KEY_MAPS or self._key_map_keys + len(kt) > _KEY_MAP_KEYS:
            self._key_maps.clear()
            self._key_map_keys = 0
        if len(kt) <= _KEY_MAP_KEYS:
            self._key_maps[kt] = out
            self._key_map_keys += len(kt)
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
