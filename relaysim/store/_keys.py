"""Sort keys and the sorted key lists every index is made of.

A key is an 80-character ASCII string: ``created_at`` as 16 zero-padded digits, then the event id
with every hex digit inverted (``0``<->``f``, ``1``<->``e``, ...). Ascending keys are oldest first
and, within one second, highest id first, so walking a list backwards is NIP-01's REQ order
(newest first, ties lowest id first).

Why a string and not ``created_at << 256 | ~id``: a ``str`` caches its hash, an ``int`` does not.
Every result is looked up by key and the planner builds key sets, so hashing dominated the
query cost with 290-bit ints (~80 ns a hash); comparisons stay in C either way. The price is
about 65 bytes more per event. One key object is shared by every index list of its event.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from relaysim.nostr.event import Event

__all__ = ["MAX_TIME", "Key", "bounds", "dedupe", "list_remove", "sort_key"]

Key = str
_INVERT = str.maketrans("0123456789abcdef", "fedcba9876543210")
# The largest created_at parse_event accepts (2**53 - 1, 16 digits); the store refuses larger.
MAX_TIME = 2**53 - 1


def sort_key(event: Event) -> Key:
    """The store's ordering key: ascending = oldest first, same second highest id first."""
    return f"{event.created_at:016d}{event.id.translate(_INVERT)}"


def bounds(keys: list[Key], since: int | None, until: int | None) -> tuple[int, int]:
    """The slice of ``keys`` with since <= created_at <= until (both inclusive, NIP-01).

    A 16-digit prefix sorts before every key that starts with it; values outside 0..MAX_TIME
    are clamped first because their decimal form need not have 16 digits.
    """
    if since is None or since <= 0:
        lo = 0
    elif since > MAX_TIME:
        lo = len(keys)
    else:
        lo = bisect_left(keys, f"{since:016d}")
    if until is None or until >= MAX_TIME:
        hi = len(keys)
    elif until < 0:
        hi = 0
    else:
        hi = bisect_left(keys, f"{until + 1:016d}")
    return lo, hi


def list_remove(keys: list[Key], key: Key) -> None:
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]
    else:  # pragma: no cover - would mean the indexes disagree
        raise AssertionError(f"store index lost key {key}")


def dedupe(keys: Iterable[Key]) -> Iterator[Key]:
    """Drop repeats from a sorted stream (an event in two merged lists shows up twice, adjacent)."""
    last = None
    for key in keys:
        if key != last:
            yield key
            last = key
