"""Give the memory a long-running relay has freed back to the OS, so its RSS tracks what it holds.

Why: a relay whose store sits at its cap replaces every stored event over and over; each event's
JSON and index entries are C allocations of a few hundred bytes to a few KB, freed in another
order than they were made. glibc keeps freed chunks for reuse and returns a page to the OS only
when asked (``malloc_trim``) or when it sits at the very top of the heap, so RSS creeps upward
for half an hour of churn (+15 MB on a 180 MB relay in ``bench/bench_relay_flat.py``) although
Python's own allocator and the store hold the same. ``malloc_trim(0)`` hands every wholly free page
back (``MADV_DONTNEED`` inside the heap too, glibc >= 2.8).

On a C library without ``malloc_trim`` (musl, macOS) every call here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache

import trio

__all__ = ["TRIM_INTERVAL", "release_free_memory", "trim_while_busy"]

TRIM_INTERVAL = 30.0  # seconds between two trims while something changes


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> None:
    """Return wholly free heap pages to the OS (nothing where unsupported)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


async def trim_while_busy(
    activity: Callable[[], int],
    interval: float = TRIM_INTERVAL,
    release: Callable[[], None] = release_free_memory,
) -> None:
    """Every ``interval`` seconds, ``release()`` if ``activity()`` moved since the last look (an
    idle relay frees nothing, so it is left alone). Runs until cancelled.

    The trim runs in a worker thread (ctypes lets go of the GIL): it walks the whole heap, ~15 ms
    for 100 MB, which the event loop's other connections should not wait for.
    """
    last = activity()
    while True:
        await trio.sleep(interval)
        now = activity()
        if now != last:
            last = now
            await trio.to_thread.run_sync(release)
