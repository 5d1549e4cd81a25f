"""The trio shell around :class:`TrafficGenerator`: a loop that ticks, asks, publishes.

The generator is pure and knows only "seconds since start_time"; this loop maps trio's clock onto
it (``start_time + (clock() - clock_at_start)``), so a test on trio's ``MockClock`` gets the same
events as a real run, and the events' ``created_at`` are real Unix times.

:class:`TrafficControl` is the switchboard the relay exposes (Python API and the loopback-only
``/control`` endpoint): pause, resume, burst. Its methods only flip flags and queue requests and
never block, so they are safe to call from the trio thread (use ``trio.from_thread.run_sync``
from another thread). Pausing stops the schedule; resuming does not release a backlog (the loop
skips the generator to now). A burst is an explicit request and is published even while paused.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import trio

from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.traffic.generator import TrafficGenerator
from relaysim.traffic.rates import KIND_NAMES, NOSTR_KINDS

__all__ = ["MAX_PENDING_BURSTS", "TrafficControl", "TrafficStatistics", "run_traffic"]

#: Burst requests queued between two ticks; more is a caller bug (and would grow memory).
MAX_PENDING_BURSTS = 1000


@dataclass(frozen=True)
class TrafficStatistics:
    """A snapshot of what the traffic loop has published."""

    emitted: Mapping[str, int]  # per traffic kind (notes, replies, ...), scheduled and burst
    total: int
    paused: bool
    pending_bursts: int

    def to_dict(self) -> dict[str, object]:
        return {
            "emitted": dict(self.emitted),
            "total": self.total,
            "paused": self.paused,
            "pending_bursts": self.pending_bursts,
        }


class TrafficControl:
    """Pause, resume and burst the traffic of one :func:`run_traffic` loop; read its counts."""

    def __init__(self, *, paused: bool = False) -> None:
        self._paused = paused
        self._resumes = 0
        self._bursts: deque[tuple[str, int]] = deque()
        self._emitted: Counter[str] = Counter()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop scheduled traffic at the next tick (bursts still go out)."""
        self._paused = True

    def resume(self) -> None:
        """Restart scheduled traffic from now on; what fell due while paused is dropped."""
        if self._paused:
            self._paused = False
            self._resumes += 1

    def burst(self, kind_name: str, n: int) -> None:
        """Queue ``n`` extra events of ``kind_name``; they are published at the next tick."""
        if kind_name not in NOSTR_KINDS:
            raise UsageError(f"unknown traffic kind '{kind_name}' (valid: {', '.join(KIND_NAMES)})")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000:
            raise UsageError(f"burst size must be an integer from 1 to 10000, got {n!r}")
        if len(self._bursts) >= MAX_PENDING_BURSTS:
            raise UsageError(f"too many pending bursts (at most {MAX_PENDING_BURSTS} between two ticks)")
        self._bursts.append((kind_name, n))

    def statistics(self) -> TrafficStatistics:
        emitted = {name: self._emitted[name] for name in KIND_NAMES}
        return TrafficStatistics(
            emitted=MappingProxyType(emitted),
            total=sum(emitted.values()),
            paused=self._paused,
            pending_bursts=sum(n for _, n in self._bursts),
        )

    # -- used by run_traffic ----------------------------------------------------------------

    def _take_bursts(self) -> list[tuple[str, int]]:
        taken = list(self._bursts)
        self._bursts.clear()
        return taken

    def _count(self, kind_name: str) -> None:
        self._emitted[kind_name] += 1


async def run_traffic(
    publish: Callable[[Event], Awaitable[object]],
    generator: TrafficGenerator,
    control: TrafficControl,
    tick: float = 0.1,
    clock: Callable[[], float] = trio.current_time,
) -> None:
    """Publish the generator's events through ``publish`` every ``tick`` seconds until cancelled.

    ``publish`` is the relay's own path for a new event (store it, fan it out), awaited one event
    at a time so a slow relay slows the traffic instead of queueing it without bound.
    """
    if tick <= 0:
        raise UsageError(f"traffic tick must be positive, got {tick}")
    clock_start = clock()
    resumes_seen = control._resumes
    while True:
        now = generator.start_time + (clock() - clock_start)
        if control._resumes != resumes_seen:
            resumes_seen = control._resumes
            generator.skip_to(now)
        emissions = []
        for kind_name, n in control._take_bursts():
            emissions.extend(generator.burst_emissions(kind_name, n, now))
        if not control.paused:
            emissions.extend(generator.emissions_due(now))
        else:
            # Keep the schedule at now while paused, so resuming starts from a clean slate even
            # if the resume and a later pause fall between two ticks.
            generator.skip_to(now)
        for emission in emissions:
            await publish(emission.event)
            control._count(emission.kind_name)
        await trio.sleep(tick)
