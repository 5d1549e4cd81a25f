"""The relay hands freed heap pages back to the OS (relaysim/relay/allocator.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from relaysim.relay.allocator import _malloc_trim, release_free_memory, trim_while_busy


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise KeyError("VmRSS")


NO_TRIM = _malloc_trim() is None or not Path("/proc/self/status").exists()


@pytest.mark.skipif(NO_TRIM, reason="needs glibc (malloc_trim) and /proc")
def test_freed_chunks_in_the_middle_of_the_heap_leave_rss() -> None:
    # 96 MB of 2 KB chunks (above pymalloc's 512 B: glibc's heap), every 16th kept so the heap's
    # top stays in use and glibc cannot shrink it by itself: the freed pages stay resident.
    chunks = [bytes(2048) + i.to_bytes(4, "little") for i in range(48_000)]
    kept = chunks[::16]
    del chunks
    before = rss()
    release_free_memory()
    after = rss()
    assert len(kept) == 3_000
    assert before - after > 40 * 1024 * 1024, (before, after)


def test_trims_only_while_something_happens() -> None:
    activity = [0]
    trims: list[float] = []

    def release() -> None:  # runs in a worker thread, as the real trim does
        trims.append(1.0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trim_while_busy, lambda: activity[0], 30.0, release)
            await trio.sleep(100)  # idle: three looks, no trim
            assert trims == []
            activity[0] += 5
            await trio.sleep(31)  # one look after the change: one trim
            assert len(trims) == 1
            await trio.sleep(90)  # idle again
            assert len(trims) == 1
            nursery.cancel_scope.cancel()

    # The clock jumps only once the worker thread's trim is back (50 ms of real idleness).
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.05))
