"""The routing table: weighted choice, sticky hashing, shadows, tripped variants.

A `Table` is immutable; a routing change builds a new one and swaps one reference,
so a request sees either the old routing or the new one, never half of each.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from metricflow.entities import StickyKey


@dataclass(frozen=True, slots=True)
class Slot:
    """A variant as this process serves it right now."""

    name: str
    model: Any
    """A LocalModel or ProxyModel (None: nothing loaded for this variant yet)."""
    version: str
    weight: float
    shadow: bool = False


def sticky_point(key: str) -> float:
    """A stable point in [0, 1) for a sticky key (the same in every serve process)."""
    h = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0 ** 64


@dataclass(frozen=True)
class Table:
    routed: tuple[Slot, ...]
    shadows: tuple[Slot, ...]
    sticky: StickyKey | None
    fallback: str
    out: frozenset[str] = frozenset()
    """Variants taken out of rotation by a guardrail (their share goes to `fallback`)."""

    def __post_init__(self) -> None:
        total = sum(max(0.0, s.weight) for s in self.routed)
        acc = 0.0
        cum = []
        for s in self.routed:
            acc += max(0.0, s.weight) / total if total > 0 else 0.0
            cum.append(acc)
        object.__setattr__(self, "_cum", cum)
        by_name = {s.name: s for s in self.routed}
        object.__setattr__(self, "_by_name", by_name)

    def slot(self, name: str) -> Slot | None:
        return self._by_name.get(name)  # type: ignore[attr-defined, no-any-return]

    def pick(self, key: str | None) -> Slot | None:
        """The variant for a request: by its sticky key's hash, else at random; a tripped or
        unloaded variant's share goes to the fallback (then to any loaded variant)."""
        cum: list[float] = self._cum  # type: ignore[attr-defined]
        if not cum:
            return None
        u = sticky_point(key) if key is not None else random.random()
        i = min(bisect.bisect_right(cum, u), len(cum) - 1)
        s = self.routed[i]
        if s.model is not None and s.name not in self.out and s.weight > 0:
            return s
        fb = self.slot(self.fallback)
        if fb is not None and fb.model is not None and fb.name not in self.out:
            return fb
        for s in self.routed:
            if s.model is not None and s.name not in self.out:
                return s
        return None

    def with_out(self, out: frozenset[str]) -> Table:
        return Table(self.routed, self.shadows, self.sticky, self.fallback, out)
