"""Samples of a running client and the exact rates drawn from them.

Theory of operation: the harness reads the probes at moments ``t`` of its own monotonic clock and
stores what it read as a :class:`Sample`. Counters such as ``totalAlloc`` are cumulative, so the
allocation rate over a window needs only the two readings that bound it -- no fitting, no
averaging, no noise from the samples in between (the seed's idle protocol). A figure the harness
could not read is ``None`` in ``figures``; every function here passes that on as ``None`` (or an
``unavailable`` verdict later) instead of a number it would have to invent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from relaysim.errors import RelaysimError

__all__ = [
    "DOM_HANDLES",
    "FIGURES",
    "HEAP_INUSE",
    "JS_HEAP_USED",
    "LISTENERS",
    "MALLOCS",
    "NODES",
    "RELAY_SUBSCRIPTIONS",
    "SYS",
    "THREAD_EVENTS",
    "TOTAL_ALLOC",
    "UASM_BYTES",
    "WASM_MEMORY_BYTES",
    "CounterReset",
    "DomHandles",
    "Sample",
    "SamplingCost",
    "Unavailable",
    "dom_handles",
    "figure_delta",
    "rate",
]

# Figure names. The first four are the app's ``__moxie_mem_stats()`` (Go MemStats meaning, bytes or
# counts); the rest come from other hooks or from the browser. A Sample may carry any other name too.
TOTAL_ALLOC = "totalAlloc"  #: cumulative bytes allocated (app hook)
MALLOCS = "mallocs"  #: cumulative allocation count (app hook)
HEAP_INUSE = "heapInuse"  #: bytes in use on the app heap (app hook)
SYS = "sys"  #: bytes obtained from the host (app hook)
DOM_HANDLES = "dom_handles"  #: size of the JS-side DOM handle table (``__moxie_dom_handles()``)
THREAD_EVENTS = "thread_events"  #: live entries in the app's threadEvents map (0 when no thread is open)
JS_HEAP_USED = "js_heap_used"  #: CDP Performance.getMetrics JSHeapUsedSize (main thread only)
NODES = "nodes"  #: CDP Memory.getDOMCounters nodes
LISTENERS = "listeners"  #: CDP Memory.getDOMCounters jsEventListeners
UASM_BYTES = "uasm_bytes"  #: performance.measureUserAgentSpecificMemory().bytes
WASM_MEMORY_BYTES = "wasm_memory_bytes"  #: WebAssembly.Memory buffer byteLength, when exposed
RELAY_SUBSCRIPTIONS = "relay_subscriptions"  #: subscriptions the relay holds open for this client

FIGURES: tuple[str, ...] = (
    TOTAL_ALLOC,
    MALLOCS,
    HEAP_INUSE,
    SYS,
    DOM_HANDLES,
    THREAD_EVENTS,
    JS_HEAP_USED,
    NODES,
    LISTENERS,
    UASM_BYTES,
    WASM_MEMORY_BYTES,
    RELAY_SUBSCRIPTIONS,
)
"""The figure names relaysim knows; a report lists each one it could not read."""


class CounterReset(RelaysimError):
    """A cumulative counter went down inside a window: the app restarted its heap (or its Worker).

    A rate across a restart would be a made-up number, so :func:`rate` refuses; the caller starts
    a new window after the reset.
    """

    def __init__(self, figure: str, start: float, end: float) -> None:
        super().__init__(f"{figure} went down from {start:g} to {end:g}: the counter was reset")
        self.figure = figure
        self.start = start
        self.end = end


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of every probe at harness time ``t``.

    ``t`` is seconds on the harness's monotonic clock (only differences mean anything);
    ``app_ts`` is the app's own timestamp (ms or s, as the app gives it) when it reports one;
    ``figures`` maps figure names (see :data:`FIGURES`) to numbers, ``None`` = could not be read.
    Samples are values: compare them, put them in reports, but do not hash them.
    """

    t: float
    figures: Mapping[str, float | int | None] = field(default_factory=dict)
    app_ts: float | None = None

    def get(self, name: str) -> float | int | None:
        """The figure ``name``, or ``None`` when it was not read or is not a finite number."""
        value = self.figures.get(name)
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used in reports and timelines: ``{"t", "app_ts", "figures"}``."""
        return {"t": self.t, "app_ts": self.app_ts, "figures": dict(self.figures)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Sample:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a wrong shape."""
        t = data.get("t")
        figures = data.get("figures", {})
        app_ts = data.get("app_ts")
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise ValueError(f"sample 't' must be a number, got {t!r}")
        if not isinstance(figures, Mapping):
            raise ValueError("sample 'figures' must be an object")
        if app_ts is not None and (not isinstance(app_ts, int | float) or isinstance(app_ts, bool)):
            raise ValueError(f"sample 'app_ts' must be a number or null, got {app_ts!r}")
        return cls(t=float(t), figures=dict(figures), app_ts=app_ts)


def rate(start: Sample, end: Sample, figure: str = TOTAL_ALLOC) -> float | None:
    """Exact rate of a cumulative counter between two samples, in units per second.

    ``(end.v - start.v) / (end.t - start.t)``. ``None`` when either reading is unavailable.
    Raises ``ValueError`` when ``end`` is not later than ``start`` and :class:`CounterReset` when
    the counter went down.
    """
    if not end.t > start.t:
        raise ValueError(f"a rate needs end.t > start.t, got {start.t!r} -> {end.t!r}")
    v0, v1 = start.get(figure), end.get(figure)
    if v0 is None or v1 is None:
        return None
    if v1 < v0:
        raise CounterReset(figure, v0, v1)
    return (v1 - v0) / (end.t - start.t)


def figure_delta(start: Sample, end: Sample, figure: str) -> float | int | None:
    """``end - start`` for one figure (may be negative for a gauge); ``None`` when unavailable."""
    v0, v1 = start.get(figure), end.get(figure)
    if v0 is None or v1 is None:
        return None
    return v1 - v0


@dataclass(frozen=True, slots=True)
class DomHandles:
    """The DOM handle table over a run: the largest size seen, when, and the last size."""

    max: int
    final: int
    max_t: float
    samples: int


def dom_handles(samples: Iterable[Sample], figure: str = DOM_HANDLES) -> DomHandles | None:
    """Max and final DOM handle count over ``samples`` (those that have the figure), or ``None``."""
    best: tuple[float | int, float] | None = None
    last: float | int | None = None
    n = 0
    for s in samples:
        v = s.get(figure)
        if v is None:
            continue
        n += 1
        last = v
        if best is None or v > best[0]:
            best = (v, s.t)
    if best is None or last is None:
        return None
    return DomHandles(max=int(best[0]), final=int(last), max_t=best[1], samples=n)


def values(samples: Sequence[Sample], figure: str) -> tuple[list[float], list[float]]:
    """The ``(t, value)`` columns of ``samples`` that have ``figure`` (for trend fitting)."""
    ts: list[float] = []
    vs: list[float] = []
    for s in samples:
        v = s.get(figure)
        if v is not None:
            ts.append(s.t)
            vs.append(float(v))
    return ts, vs


@dataclass(frozen=True)
class Unavailable:
    """A figure that could not be read, and why; ``missing_hook`` names the app hook that is absent
    (``__moxie_mem_stats`` ...) when that is the reason, so a report lists missing hooks without
    parsing reason text."""

    figure: str
    reason: str
    missing_hook: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"figure": self.figure, "reason": self.reason, "missing_hook": self.missing_hook}


@dataclass(frozen=True)
class SamplingCost:
    """What sampling cost the harness: samples taken, ms and WebDriver round trips per sample, and the
    interval in force at the end (``None`` where nothing was sampled); ``isolate_reads`` deep readings
    (every isolate after GC, over the browser's DevTools websocket) at ``ms_per_isolate_read`` each,
    not counted in the per-sample figures."""

    samples: int
    ms_per_sample: float | None = None
    round_trips_per_sample: float | None = None
    interval_seconds: float | None = None
    isolate_reads: int = 0
    ms_per_isolate_read: float | None = None
