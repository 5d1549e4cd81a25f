"""A seeded random source whose output cannot change between machines or Python versions.

Python only promises that ``Random.random()`` keeps its sequence for a given seed; ``randrange``,
``choice``, ``sample`` and ``shuffle`` have changed algorithms before. So everything here is
built from ``random()`` with correctly rounded arithmetic only (no ``log``/``pow``, whose last bit
may differ between C libraries), and each :class:`Rng` is its own instance: no global state.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

__all__ = ["Rng", "WeightedPicker"]

T = TypeVar("T")


class Rng:
    """Deterministic choices derived from a byte seed and a stream name."""

    def __init__(self, seed: bytes, stream: str) -> None:
        digest = hashlib.sha256(seed + b"\x00rng\x00" + stream.encode()).digest()
        self._random = random.Random(int.from_bytes(digest, "big"))

    def unit(self) -> float:
        """A float in [0, 1)."""
        return self._random.random()

    def below(self, n: int) -> int:
        """An integer in [0, n)."""
        if n <= 0:
            raise ValueError("below() needs a positive bound")
        return int(self._random.random() * n)

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high] (both inclusive)."""
        return low + self.below(high - low + 1)

    def chance(self, probability: float) -> bool:
        return self._random.random() < probability

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """``k`` distinct items in a random order (a partial Fisher-Yates shuffle)."""
        pool = list(items)
        if k > len(pool):
            raise ValueError(f"cannot sample {k} items from {len(pool)}")
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def shuffled(self, items: Sequence[T]) -> list[T]:
        return self.sample(items, len(items))


class WeightedPicker(Generic[T]):
    """Pick items with fixed weights (cumulative table + bisect: exact, reproducible)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if len(items) != len(weights) or not items:
            raise ValueError("WeightedPicker needs as many weights as items, and at least one")
        self.items = list(items)
        self._cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self._cumulative.append(total)
        self._total = total

    def pick(self, rng: Rng) -> T:
        index = bisect.bisect_right(self._cumulative, rng.unit() * self._total)
        return self.items[min(index, len(self.items) - 1)]

    @classmethod
    def zipf(cls, items: Sequence[T], offset: float = 1.0) -> WeightedPicker[T]:
        """Heavy-tailed weights ``1 / (rank + offset)``: the first items are picked far more often."""
        return cls(items, [1.0 / (rank + offset) for rank in range(len(items))])
