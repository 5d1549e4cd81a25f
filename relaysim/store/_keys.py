"""The sorted record lists every index is made of: time bounds, removal, merging.

Every list holds records (``_record``) in ascending byte order: oldest first and, within one
second, highest id first, so walking a list backwards is NIP-01's REQ order (newest first, ties
lowest id first). A record starts with its ``created_at`` as 8 big-endian bytes, and those 8
bytes alone sort before every record that starts with them, so ``since``/``until`` are two
bisections with a bare prefix.

Why records and not separate key strings (the first design): a string key cost ~130 bytes an
event and a dictionary from key to event another ~100; a record *is* its own key (its first 40
bytes are unique per event), so every list slot points straight at what a query sends.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from relaysim.store._record import Record, time_prefix

__all__ = ["MAX_TIME", "bounds", "dedupe", "list_remove"]

# The largest created_at parse_event accepts (2**53 - 1); the store refuses larger.
MAX_TIME = 2**53 - 1


def bounds(records: list[Record], since: int | None, until: int | None) -> tuple[int, int]:
    """The slice of ``records`` with since <= created_at <= until (both inclusive, NIP-01).

    Values outside 0..MAX_TIME are clamped first: they have no 8-byte prefix of their own.
    """
    if since is None or since <= 0:
        lo = 0
    elif since > MAX_TIME:
        lo = len(records)
    else:
        lo = bisect_left(records, time_prefix(since))
    if until is None or until >= MAX_TIME:
        hi = len(records)
    elif until < 0:
        hi = 0
    else:
        hi = bisect_left(records, time_prefix(until + 1))
    return lo, hi


def list_remove(records: list[Record], record: Record) -> None:
    index = bisect_left(records, record)
    if index < len(records) and records[index] is record:
        del records[index]
    else:  # pragma: no cover - would mean the indexes disagree
        raise AssertionError(f"store index lost record {record[:43].hex()}")


def dedupe(records: Iterable[Record]) -> Iterator[Record]:
    """Drop repeats from a sorted stream (an event in two merged lists shows up twice, adjacent)."""
    last = None
    for record in records:
        if record is not last:
            yield record
            last = record
