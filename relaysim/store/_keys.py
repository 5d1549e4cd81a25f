"""Sort keys and the sorted key lists every index is made of.

``key = created_at << 256 | (2**256 - 1 - int(id, 16))``: ascending keys are oldest first and,
within one second, highest id first, so walking a list backwards is NIP-01's REQ order (newest
first, ties lowest id first). One int compares in C and is shared by every index list.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from relaysim.nostr.event import Event

__all__ = ["bounds", "dedupe", "list_remove", "sort_key"]

_ID_MASK = (1 << 256) - 1


def sort_key(event: Event) -> int:
    """The store's ordering key: ascending = oldest first, same second highest id first."""
    return (event.created_at << 256) | (_ID_MASK - int(event.id, 16))


def bounds(keys: list[int], since: int | None, until: int | None) -> tuple[int, int]:
    """The slice of ``keys`` with since <= created_at <= until (both inclusive, NIP-01)."""
    lo = 0 if since is None else bisect_left(keys, since << 256)
    hi = len(keys) if until is None else bisect_left(keys, (until + 1) << 256)
    return lo, hi


def list_remove(keys: list[int], key: int) -> None:
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]
    else:  # pragma: no cover - would mean the indexes disagree
        raise AssertionError(f"store index lost key {key:x}")


def dedupe(keys: Iterable[int]) -> Iterator[int]:
    """Drop repeats from a sorted stream (an event in two merged lists shows up twice, adjacent)."""
    last = None
    for key in keys:
        if key != last:
            yield key
            last = key
