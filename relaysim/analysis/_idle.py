"""The idle measurement of the seed: the exact rate over a window, minus what the probe itself costs.

Theory of operation. When the client is idle (no subscription open on the relay, 5 s since the
last EOSE), any growth of ``totalAlloc`` is a leak -- except the bytes the harness's own probe
makes the app allocate (the seed's probe returns JSON built inside the heap). So the harness

1. calls the probe back to back at the start and takes the per-call difference:
   :func:`measure_probe_cost` -> :class:`ProbeCost`;
2. reads the counter at the start and the end of each window (and maybe in between);
3. takes the exact rate per window and subtracts ``probes * bytes_per_probe / window``:
   :func:`compensated_rate`, :func:`idle_windows`;
4. keeps the weakest window (the highest rate) when asked for N windows:
   :func:`measure_idle` -> :class:`IdleMeasurement`.
5. names what allocated during that weakest window, per allocation site and per second:
   :func:`idle_sites` -> ``IdleMeasurement.sites`` (so two runs can be compared site by site).

Counting probes: with back-to-back readings r0, r1, ..., every gap r(i+1) - r(i) holds exactly one
probe's worth of allocation, whichever side of the read it happens on. So a window bounded by two
readings with ``k`` readings in between contains ``k + 1`` probes: ``probes_in_window`` counts the
probe calls made *after* the start reading up to and including the end reading.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from relaysim.analysis._samples import TOTAL_ALLOC, Sample, rate
from relaysim.analysis._sites import SiteDelta

__all__ = [
    "IdleMeasurement",
    "IdleSite",
    "ProbeCost",
    "WindowRate",
    "compensated_rate",
    "idle_sites",
    "idle_windows",
    "measure_idle",
    "measure_probe_cost",
]


@dataclass(frozen=True, slots=True)
class ProbeCost:
    """What one probe call allocates in the app, measured from back-to-back calls.

    ``bytes_per_probe`` = (last - first) / (calls - 1) over ``calls_measured`` readings;
    ``min_bytes``/``max_bytes`` are the smallest and largest single gaps (equal for a steady probe).
    """

    bytes_per_probe: float
    calls_measured: int
    figure: str = TOTAL_ALLOC
    min_bytes: float | None = None
    max_bytes: float | None = None


def measure_probe_cost(readings: Sequence[float | int], figure: str = TOTAL_ALLOC) -> ProbeCost:
    """:class:`ProbeCost` from ``readings`` of a cumulative counter taken back to back.

    Needs at least two readings; raises ``ValueError`` otherwise or when the counter went down.
    """
    if len(readings) < 2:
        raise ValueError(f"probe cost needs at least 2 back-to-back readings, got {len(readings)}")
    gaps = [b - a for a, b in itertools.pairwise(readings)]
    if min(gaps) < 0:
        raise ValueError(f"{figure} went down between back-to-back probe readings")
    return ProbeCost(
        bytes_per_probe=(readings[-1] - readings[0]) / (len(readings) - 1),
        calls_measured=len(readings),
        figure=figure,
        min_bytes=float(min(gaps)),
        max_bytes=float(max(gaps)),
    )


def compensated_rate(
    raw_rate: float, probes_in_window: int, window_s: float, probe_cost: ProbeCost | None
) -> float:
    """The app's own rate: ``raw_rate - probes_in_window * bytes_per_probe / window_s``.

    Not clamped: a result a little below zero says the probe cost was measured high, and the
    report shows that rather than hiding it. ``probe_cost=None`` (not measured) returns the raw rate.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    if probes_in_window < 0:
        raise ValueError(f"probes_in_window must be >= 0, got {probes_in_window!r}")
    if probe_cost is None:
        return raw_rate
    return raw_rate - probes_in_window * probe_cost.bytes_per_probe / window_s


@dataclass(frozen=True, slots=True)
class WindowRate:
    """One idle window: its bounds (harness seconds), the counter delta and both rates."""

    start_t: float
    end_t: float
    window_s: float
    delta: float
    probes: int
    raw_rate: float
    compensated_rate: float


def idle_windows(
    boundaries: Sequence[Sample],
    probes: Sequence[int] | None = None,
    probe_cost: ProbeCost | None = None,
    figure: str = TOTAL_ALLOC,
) -> list[WindowRate] | None:
    """Consecutive windows between ``boundaries`` (N+1 samples give N windows).

    ``probes[i]`` is the number of probe calls in window i (see the module doc); by default 1, the
    end reading only. ``None`` when any boundary lacks the figure. Raises :class:`CounterReset` if
    the counter went down, ``ValueError`` on fewer than two boundaries or a length mismatch.
    """
    if len(boundaries) < 2:
        raise ValueError(f"idle windows need at least 2 boundary samples, got {len(boundaries)}")
    n = len(boundaries) - 1
    counts = [1] * n if probes is None else list(probes)
    if len(counts) != n:
        raise ValueError(f"{n} windows but {len(counts)} probe counts")
    out: list[WindowRate] = []
    for (a, b), k in zip(itertools.pairwise(boundaries), counts, strict=True):
        raw = rate(a, b, figure)
        if raw is None:
            return None
        window_s = b.t - a.t
        out.append(
            WindowRate(
                start_t=a.t,
                end_t=b.t,
                window_s=window_s,
                delta=float(b.get(figure) - a.get(figure)),  # type: ignore[operator]
                probes=k,
                raw_rate=raw,
                compensated_rate=compensated_rate(raw, k, window_s, probe_cost),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class IdleSite:
    """What one allocation site allocated during the weakest idle window: ``count`` allocations,
    ``bytes``, and ``rate`` = bytes / the window's length (B/s, raw: a probe that allocates in the
    app shows under its own site)."""

    site: int | str
    name: str
    count: int
    bytes: int
    rate: float


def idle_sites(deltas: Sequence[SiteDelta], window_s: float) -> tuple[IdleSite, ...]:
    """The sites that grew (``deltas`` over one window of ``window_s`` seconds), most bytes first."""
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    grown = [d for d in deltas if d.bytes > 0 or d.count > 0]
    grown.sort(key=lambda d: (-d.bytes, -d.count, d.name, str(d.site)))
    return tuple(IdleSite(d.site, d.name, d.count, d.bytes, d.bytes / window_s) for d in grown)


@dataclass(frozen=True, slots=True)
class IdleMeasurement:
    """The idle figure of a run: the weakest (highest-rate) of ``len(windows)`` windows.

    ``raw_rate``/``compensated_rate`` are those of ``windows[weakest]``, bytes per second;
    ``settle_s`` is the settling time the harness waited after the last EOSE;
    ``subscriptions_open`` is the relay-side count for this client when idle was declared.
    ``sites`` are the allocation sites that grew during the weakest window, with their rates
    (:func:`idle_sites`); ``None`` when the alloc counters were not read, ``()`` when none grew.
    """

    figure: str
    windows: tuple[WindowRate, ...]
    weakest: int
    raw_rate: float
    compensated_rate: float
    window_s: float
    settle_s: float | None = None
    subscriptions_open: int | None = None
    probe_cost: ProbeCost | None = None
    sites: tuple[IdleSite, ...] | None = None

    @property
    def rate(self) -> float:
        """The rate the ``idle_rate`` assertion judges: compensated when a probe cost is known."""
        return self.compensated_rate


def measure_idle(
    boundaries: Sequence[Sample],
    probes: Sequence[int] | None = None,
    probe_cost: ProbeCost | None = None,
    figure: str = TOTAL_ALLOC,
    settle_s: float | None = None,
    subscriptions_open: int | None = None,
) -> IdleMeasurement | None:
    """:func:`idle_windows` reduced to the weakest window; ``None`` when the figure is unavailable.

    The weakest window is the one with the highest compensated rate (ties: the first), so a leak
    that shows in any one of three windows is not averaged away.
    """
    windows = idle_windows(boundaries, probes, probe_cost, figure)
    if windows is None:
        return None
    weakest = max(range(len(windows)), key=lambda i: (windows[i].compensated_rate, -i))
    w = windows[weakest]
    return IdleMeasurement(
        figure=figure,
        windows=tuple(windows),
        weakest=weakest,
        raw_rate=w.raw_rate,
        compensated_rate=w.compensated_rate,
        window_s=w.window_s,
        settle_s=settle_s,
        subscriptions_open=subscriptions_open,
        probe_cost=probe_cost,
    )
