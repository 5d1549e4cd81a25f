"""Trend verdicts for a soak: hours of samples judged by statistics that a short run cannot give.

Theory of operation. A soak's timeline mixes browsing, idle periods, live traffic, proactive
Worker restarts and (sometimes) a replaced browser session. Each verdict here looks only at the
part of the timeline where its question has an answer:

* **Allocation rate** (``soak_alloc_rate``) uses the *idle periods only*. Browsing allocates by
  design -- a page load copies events into the heap at tens of KB/s -- so a rolling rate over the
  whole timeline measures the browsing mix, not a leak, and would fail every app against the seed's
  1024 B/s idle budget. Nor does the heap trend answer it: with the seed's bump allocator
  (``gc_leaking``) heapInuse *is* totalAlloc, so its trend is the browsing rate again. Idle time is
  where a sound app allocates (almost) nothing and a leak keeps allocating. The idle periods are
  spliced into one "idle clock" (each period's totalAlloc and time rebased to where the previous
  one ended, so the browsing in between is cut out and a restart's counter reset is stepped over),
  and a Theil--Sen slope with its confidence interval is fitted in rolling windows of idle time
  (default 10 min, step half a window). The verdict is the **lowest upper confidence bound** over
  the windows. Why the lowest: a leak is persistent -- it raises the floor of the rate in *every*
  idle window -- while noise (a late frame, a timer, the probe landing mid-task) comes and goes and
  raises *some* windows. The highest bound would make 10 hours of windows a lottery of false
  alarms; the lowest asks "even in its quietest stretch, could the app be shown to stay under
  budget?". Why the *upper* bound and not the slope: a window passes only when it demonstrates
  (at ``confidence``) that the rate is under budget, so a short or noisy window cannot pass by the
  luck of its point estimate. The price, stated plainly: a leak that allocates only sometimes
  while idle can hide behind one quiet window; the per-period exact rates (``idle_end`` events,
  judged by ``idle_rate``) catch that one.
* **Heap and DOM trends** (``soak_heap_trend``, ``soak_dom_trend``) are judged per *segment*: the
  stretches between proactive restarts (and replaced browser sessions), because a restart resets
  the heap and a trend across it means nothing (a leaking sawtooth has no trend overall). In each
  segment -- after its warm-up: the seed's 5 minutes for a fresh app (the first segment, a new
  browser session), ``settle_s`` after a restart, because an app filling its caches grows by design --
  segment Mann--Kendall (Hamed--Rao, as :func:`relaysim.analysis.mann_kendall`) says whether there
  is an increasing trend and Theil--Sen how steep it is. Over hours, Mann--Kendall finds a trend of
  1 B/s, so the verdict is "no increasing trend that matters": a segment fails only when its trend
  is increasing *and* its slope reaches the tolerance. The default tolerances come from the seed's
  own budget: the heap may reach the 128 MB restart threshold no sooner than in 10 hours
  (128 MiB / 10 h = 3,728 B/s), the DOM handle table no sooner than the 3,000-handle limit in
  10 hours (300 handles/h). Set a tolerance to 0 for the strict "no increasing trend at all".
* **Plateau** (``soak_heap_plateau``): per segment, after a warm-up (default the seed's 5 minutes),
  the median heapInuse of the last quarter of the segment's time against the first quarter's;
  the worst ratio last / first must stay within a limit (default 1.10: at most 10 % growth). A heap
  that never frees (the seed's bump allocator: heapInuse steps exactly with totalAlloc) cannot
  plateau -- it grows with any work -- so there the plateau compares what the work costs: bytes
  allocated per event delivered to the client, last quarter against first (:class:`Plateau`).
* **Restarts** (``soak_restarts_per_hour``): a restart is a heapInuse drop of more than
  ``drop_fraction`` between consecutive samples, a ``restart`` event, or a rise of the page's
  restart counter (figure ``app_restarts``, from ``__relaysim_app_state().restarts``); what it
  rested on is kept as its ``evidence``. A drop explained by a ``session_replaced`` event is the
  harness's new tab, not the app: it ends a segment but is not counted. The count per hour of
  sampled time must stay within a limit (default 0.1/h: the seed's "a restart every 10+ hours").

Every function is pure: samples and event mappings in, frozen dataclasses out. ``judge_*`` turn an
:class:`SoakAnalysis` into :class:`~relaysim.analysis.AssertionResult` values.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from relaysim.analysis._assertions import IDLE_RATE
from relaysim.analysis._samples import DOM_HANDLES, HEAP_INUSE, TOTAL_ALLOC, Sample
from relaysim.analysis._trend import Trend, theil_sen, trend
from relaysim.analysis._verdict import (
    Assertion,
    AssertionResult,
    Evidence,
    Measured,
    NotMeasured,
    Threshold,
    Thresholds,
    Tolerance,
    Verdict,
    register,
)

__all__ = [
    "APP_RESTARTS",
    "EVENTS_DELIVERED",
    "SOAK_ASSERTION_NAMES",
    "SOAK_HEAP_CEILING",
    "AllocRate",
    "Gap",
    "IdlePeriod",
    "Plateau",
    "RateWindow",
    "Restart",
    "Segment",
    "SoakAnalysis",
    "SoakThresholds",
    "analyze_soak",
    "find_gaps",
    "find_restarts",
    "idle_alloc_rate",
    "idle_periods",
    "judge_alloc_rate",
    "judge_dom_trend",
    "judge_heap_plateau",
    "judge_heap_trend",
    "judge_restarts_per_hour",
    "judge_soak",
    "rolling_rates",
    "segments",
]

APP_RESTARTS = "app_restarts"
"""Optional sample figure: the page's own restart counter (``__relaysim_app_state().restarts``)."""

SOAK_ASSERTION_NAMES: tuple[str, ...] = (
    "soak_alloc_rate",
    "soak_heap_trend",
    "soak_dom_trend",
    "soak_heap_plateau",
    "soak_restarts_per_hour",
)

MiB = 1024 * 1024
RESTART_HEAP_BYTES = 128 * MiB
"""The seed's proactive-restart threshold (heapInuse > 128 MB)."""
TREND_MAX_POINTS = 1000
"""Trend statistics thin a segment to this many evenly spaced samples: Theil--Sen's pairwise slopes
take O(n^2) memory (10 h at 10 s = 3,600 samples = 6.5 M pairs, ~200 MB), and 1,000 points
estimate a slope over hours as well as 3,600 do."""


@dataclass(frozen=True, slots=True)
class SoakThresholds:
    """Limits of the soak verdicts (keys as in a scenario's ``[thresholds]`` table)."""

    idle_rate_bps: float = 1024.0
    heap_growth_bps: float = 128 * MiB / 36000
    dom_growth_per_h: float = 300.0
    heap_plateau_ratio_max: float = 1.10
    restarts_per_hour_max: float = 0.1

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SoakThresholds:
        """The defaults overridden by the numeric keys of ``values`` that name a field (others ignored)."""
        known = {f.name for f in fields(cls)}
        picked = {
            k: float(v)
            for k, v in values.items()
            if k in known and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        return cls(**picked)


# --- events -----------------------------------------------------------------------------------------


def _event_t(event: Mapping[str, Any]) -> float | None:
    t = event.get("t")
    if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
        return float(t)
    return None


def _events_of(events: Sequence[Mapping[str, Any]], *types: str) -> list[tuple[float, Mapping[str, Any]]]:
    out = [(t, e) for e in events if e.get("type") in types and (t := _event_t(e)) is not None]
    out.sort(key=lambda te: te[0])
    return out


@dataclass(frozen=True, slots=True)
class IdlePeriod:
    """One idle period, ``idle_start`` to ``idle_end``; ``rate`` is the soak loop's measured B/s, if given."""

    start_t: float
    end_t: float
    rate: float | None = None


def idle_periods(events: Sequence[Mapping[str, Any]], end_t: float | None = None) -> tuple[IdlePeriod, ...]:
    """Pair ``idle_start``/``idle_end`` events in time order; an unclosed period ends at ``end_t``."""
    out: list[IdlePeriod] = []
    start: float | None = None
    for t, e in _events_of(events, "idle_start", "idle_end"):
        if e.get("type") == "idle_start":
            start = t
        elif start is not None:
            rate = e.get("rate")
            ok = isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate)
            out.append(IdlePeriod(start, t, float(rate) if ok and rate is not None else None))
            start = None
    if start is not None and end_t is not None and end_t > start:
        out.append(IdlePeriod(start, end_t))
    return tuple(out)


# --- gaps and restarts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples missing between ``start_t`` and ``end_t`` (a harness fault); ``cause`` from events."""

    start_t: float
    end_t: float
    cause: str | None = None


def find_gaps(
    samples: Sequence[Sample], events: Sequence[Mapping[str, Any]] = (), factor: float = 3.0
) -> tuple[Gap, ...]:
    """Intervals longer than ``factor`` x the usual sampling interval, named by a fault event in them.

    The usual interval is the 90th percentile of the intervals, not their median: a soak samples on
    a schedule *and* after every browsing step, so most intervals are the steps' spacing (a second
    or two) and the schedule's own interval sits in the upper tail; the median would call every
    idle window a gap.
    """
    if len(samples) < 3:
        return ()
    dts = sorted(b.t - a.t for a, b in itertools.pairwise(samples))
    usual = dts[min(len(dts) - 1, int(0.9 * len(dts)))]
    if usual <= 0:
        return ()
    faults = _events_of(events, "fault", "session_replaced")
    out = []
    for a, b in itertools.pairwise(samples):
        if b.t - a.t > factor * usual:
            causes = [str(e.get("reason") or e.get("type")) for t, e in faults if a.t <= t <= b.t]
            out.append(Gap(a.t, b.t, "; ".join(causes) or None))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Restart:
    """A proactive restart seen between the samples at ``before_t`` and ``t``.

    ``evidence`` lists what showed it: ``"heap_drop"`` (heapInuse fell by more than the drop
    fraction), ``"event"`` (a ``restart`` event in the interval), ``"counter"`` (``app_restarts`` rose).
    """

    t: float
    before_t: float | None
    heap_before: float | None
    heap_after: float | None
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Break:
    index: int  # first sample of the new segment
    kind: str  # "restart" | "session_replaced"


def _breaks(
    samples: Sequence[Sample], events: Sequence[Mapping[str, Any]], drop_fraction: float
) -> tuple[list[Restart], list[_Break]]:
    restarts: list[Restart] = []
    breaks: list[_Break] = []
    restart_ts = [t for t, _ in _events_of(events, "restart")]
    replaced_ts = [t for t, _ in _events_of(events, "session_replaced")]

    def within(ts: list[float], lo: float, hi: float) -> bool:
        i = bisect.bisect_right(ts, lo)
        return i < len(ts) and ts[i] <= hi

    for i in range(1, len(samples)):
        a, b = samples[i - 1], samples[i]
        h0, h1 = a.get(HEAP_INUSE), b.get(HEAP_INUSE)
        c0, c1 = a.get(APP_RESTARTS), b.get(APP_RESTARTS)
        evidence = []
        if h0 is not None and h1 is not None and h0 > 0 and (h0 - h1) / h0 > drop_fraction:
            evidence.append("heap_drop")
        if within(restart_ts, a.t, b.t):
            evidence.append("event")
        if c0 is not None and c1 is not None and c1 > c0:
            evidence.append("counter")
        if within(replaced_ts, a.t, b.t):
            breaks.append(_Break(i, "session_replaced"))
        elif evidence:
            restarts.append(Restart(b.t, a.t, h0, h1, tuple(evidence)))
            breaks.append(_Break(i, "restart"))
    if samples:
        last = samples[-1]
        for t in restart_ts:
            if t > last.t:  # the app said it restarted after the last sample
                restarts.append(Restart(t, last.t, last.get(HEAP_INUSE), None, ("event",)))
    return restarts, breaks


def find_restarts(
    samples: Sequence[Sample], events: Sequence[Mapping[str, Any]] = (), drop_fraction: float = 0.5
) -> tuple[Restart, ...]:
    """Every proactive restart in the timeline (see the module docstring for what counts)."""
    return tuple(_breaks(samples, events, drop_fraction)[0])


# --- rolling Theil-Sen rates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateWindow:
    """One window's Theil--Sen slope (units/s) with its interval ``[low, high]``; times are harness ``t``."""

    start_t: float
    end_t: float
    n: int
    slope: float
    low: float
    high: float


def rolling_rates(
    ts: Sequence[float],
    vs: Sequence[float],
    window_s: float,
    step_s: float | None = None,
    *,
    confidence: float = 0.95,
    min_points: int = 4,
    real_ts: Sequence[float] | None = None,
) -> tuple[RateWindow, ...]:
    """Theil--Sen slope of ``vs`` over ``ts`` in windows of ``window_s`` every ``step_s`` (default half).

    The last window is aligned to the end so the tail is covered; a series shorter than one window
    is one window. A window with fewer than ``min_points`` points is skipped. ``real_ts`` (same
    length) gives the times to report when ``ts`` is a spliced clock.
    """
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    step = window_s / 2 if step_s is None else step_s
    if not step > 0:
        raise ValueError(f"step_s must be > 0, got {step_s!r}")
    if len(ts) != len(vs):
        raise ValueError(f"{len(ts)} times but {len(vs)} values")
    real = ts if real_ts is None else real_ts
    if len(ts) < 2:
        return ()
    first, last = ts[0], ts[-1]
    starts: list[float] = []
    if last - first <= window_s:
        starts.append(first)
    else:
        k = 0
        while first + k * step + window_s <= last + 1e-9 and k < 1_000_000:
            starts.append(first + k * step)
            k += 1
        if starts[-1] + window_s < last - 1e-9:
            starts.append(last - window_s)
    out = []
    for s in starts:
        lo = bisect.bisect_left(ts, s - 1e-9)
        hi = bisect.bisect_right(ts, s + window_s + 1e-9)
        if hi - lo < min_points:
            continue
        fit = theil_sen(ts[lo:hi], vs[lo:hi], confidence)
        if fit is None or not all(math.isfinite(x) for x in (fit.slope, fit.low, fit.high)):
            continue
        out.append(RateWindow(real[lo], real[hi - 1], hi - lo, fit.slope, fit.low, fit.high))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class AllocRate:
    """Rolling Theil--Sen totalAlloc rate over the spliced idle periods (see the module docstring).

    ``ucb`` is the lowest upper confidence bound of any window (what ``soak_alloc_rate`` judges),
    ``lowest`` its index in ``windows``; both ``None`` with ``why`` saying what was missing.
    ``idle_s`` is the idle time covered, ``periods`` the idle periods with two or more samples,
    ``probe_bytes`` what each sample's probe was taken to cost (subtracted).
    """

    figure: str
    window_s: float
    step_s: float
    confidence: float
    idle_s: float
    periods: int
    windows: tuple[RateWindow, ...]
    lowest: int | None
    ucb: float | None
    probe_bytes: float = 0.0
    why: str | None = None


def _idle_series(
    samples: Sequence[Sample], periods: Sequence[IdlePeriod], figure: str, probe_bytes: float
) -> tuple[list[float], list[float], list[float], int]:
    """The idle clock: (spliced t, spliced value, real t, runs used) -- see the module docstring."""
    clock: list[float] = []
    vals: list[float] = []
    real: list[float] = []
    runs = 0
    times = [s.t for s in samples]
    for p in periods:
        run: list[tuple[float, float]] = []
        inside = samples[bisect.bisect_left(times, p.start_t) : bisect.bisect_right(times, p.end_t)]
        for s in inside:
            raw = s.get(figure)
            if raw is None:
                continue
            t, v = s.t, float(raw)
            if run and v < run[-1][1]:  # the counter was reset (a restart mid-idle): a new run
                runs += _splice(run, clock, vals, real, probe_bytes)
                run = []
            run.append((t, v))
        runs += _splice(run, clock, vals, real, probe_bytes)
    return clock, vals, real, runs


def _splice(
    run: list[tuple[float, float]], clock: list[float], vals: list[float], real: list[float], probe: float
) -> int:
    if len(run) < 2:
        return 0
    t0, v0 = run[0]
    base_t = clock[-1] if clock else 0.0
    base_v = vals[-1] if vals else 0.0
    for k, (t, v) in enumerate(run):
        if k == 0 and clock:
            continue  # lands exactly on the previous run's last point
        clock.append(base_t + (t - t0))
        vals.append(base_v + (v - v0) - k * probe)
        real.append(t)
    return 1


def idle_alloc_rate(
    samples: Sequence[Sample],
    events: Sequence[Mapping[str, Any]],
    *,
    window_s: float = 600.0,
    step_s: float | None = None,
    confidence: float = 0.95,
    probe_bytes: float = 0.0,
    min_points: int = 4,
    figure: str = TOTAL_ALLOC,
) -> AllocRate:
    """The rolling idle allocation rate and its lowest upper bound (``soak_alloc_rate``'s evidence)."""
    step = window_s / 2 if step_s is None else step_s
    end_t = samples[-1].t if samples else None
    periods = idle_periods(events, end_t)
    clock, vals, real, runs = _idle_series(samples, periods, figure, probe_bytes)
    windows = rolling_rates(
        clock, vals, window_s, step, confidence=confidence, min_points=min_points, real_ts=real
    )
    idle_s = clock[-1] if clock else 0.0
    why = None
    lowest = None
    ucb = None
    if windows:
        lowest = min(range(len(windows)), key=lambda i: windows[i].high)
        ucb = windows[lowest].high
    elif not periods:
        why = "no idle period in the timeline (no idle_start/idle_end events)"
    elif not clock:
        why = f"{figure} was not read during any idle period"
    else:
        why = f"{len(clock)} idle samples over {idle_s:.0f} s: a window needs {min_points}"
    return AllocRate(figure, window_s, step, confidence, idle_s, runs, windows, lowest, ucb, probe_bytes, why)


# --- segments, trends, plateau ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plateau:
    """Where a segment's heap stands in the first and the last quarter (by time) after warm-up.

    ``basis`` says what ``first`` and ``last`` are:

    * ``"heap_median"``: the median heapInuse of the quarter (bytes). A heap that frees settles once
      its caches are full; ``ratio`` = last / first, 1.05 meaning it ended 5 % above where it began.
    * ``"bytes_per_event"``: bytes allocated per event the relay delivered to the client in that
      quarter. Used when the heap never frees (every heapInuse step equals the totalAlloc step: the
      seed's ``gc_leaking`` bump allocator), because then heapInuse *is* the allocation counter and
      grows with any work, leak or not: its level never plateaus. What stays flat in a sound app is
      the cost of the work -- bytes per event handled -- and what a leak raises is that cost (a map
      walked on every event, a handle kept per render). Per event, not per second: the browsing
      mix and the live traffic of a quarter vary by several times, the cost per event by ~20 %.
    """

    start_t: float
    end_t: float
    basis: str
    first: float
    last: float
    first_n: int
    last_n: int
    ratio: float


@dataclass(frozen=True, slots=True)
class Segment:
    """Samples between two restarts: ``begins`` with "start", "restart" or "session_replaced".

    ``heap`` and ``dom`` are Theil--Sen + Mann--Kendall of heapInuse and DOM handles over the
    segment after its warm-up (``settle_s`` after a restart, ``warmup_s`` for a fresh app: the first
    segment or a new browser session); ``plateau`` after ``warmup_s``.
    """

    index: int
    begins: str
    start_t: float
    end_t: float
    samples: int
    heap: Trend | None
    dom: Trend | None
    plateau: Plateau | None


def _thin(samples: Sequence[Sample], n: int) -> Sequence[Sample]:
    if len(samples) <= n:
        return samples
    step = (len(samples) - 1) / (n - 1)
    return [samples[round(i * step)] for i in range(n)]


EVENTS_DELIVERED = "relay_events_sent"
"""Sample figure: events the relay has sent this client so far (cumulative; the soak recorder's)."""


def _never_frees(samples: Sequence[Sample]) -> bool:
    """True when heapInuse moves exactly with totalAlloc between every pair of readings (3 or more)."""
    pairs = [
        (h, a) for s in samples
        if (h := s.get(HEAP_INUSE)) is not None and (a := s.get(TOTAL_ALLOC)) is not None
    ]
    steps = [(h1 - h0, a1 - a0) for (h0, a0), (h1, a1) in itertools.pairwise(pairs)]
    return len(steps) >= 3 and any(dh > 0 for dh, _ in steps) and all(dh == da for dh, da in steps)


Reading = tuple[float, tuple[float, ...]]
"""(t, figures) of one sample, as the plateau reads them."""


def _quarters(pts: Sequence[Reading]) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    t0, t1 = pts[0][0], pts[-1][0]
    quarter = (t1 - t0) / 4
    return [v for t, v in pts if t <= t0 + quarter], [v for t, v in pts if t >= t1 - quarter]


def _plateau(samples: Sequence[Sample], start_t: float, warmup_s: float) -> Plateau | None:
    late = [s for s in samples if s.t >= start_t + warmup_s]
    if _never_frees(late):
        per_event = _cost_per_event(late)
        if per_event is not None:
            return per_event
    pts: list[Reading] = [(s.t, (float(v),)) for s in late if (v := s.get(HEAP_INUSE)) is not None]
    if len(pts) < 4:
        return None
    first, last = _quarters(pts)
    if len(first) < 2 or len(last) < 2:
        return None
    m0, m1 = statistics.median(v[0] for v in first), statistics.median(v[0] for v in last)
    if m0 <= 0:
        return None
    return Plateau(pts[0][0], pts[-1][0], "heap_median", m0, m1, len(first), len(last), m1 / m0)


def _cost_per_event(late: Sequence[Sample]) -> Plateau | None:
    """Bytes allocated per event delivered, first quarter against last; None without event counts
    or when a quarter delivered nothing (then the heap's own level is judged instead)."""
    pts: list[Reading] = [
        (s.t, (float(h), float(e))) for s in late
        if (h := s.get(HEAP_INUSE)) is not None and (e := s.get(EVENTS_DELIVERED)) is not None
    ]
    if len(pts) < 4:
        return None
    first, last = _quarters(pts)
    if len(first) < 2 or len(last) < 2:
        return None
    costs = []
    for part in (first, last):
        grown, delivered = part[-1][0] - part[0][0], part[-1][1] - part[0][1]
        if delivered <= 0:
            return None
        costs.append(grown / delivered)
    c0, c1 = costs
    if c0 <= 0:
        return None
    return Plateau(pts[0][0], pts[-1][0], "bytes_per_event", c0, c1, len(first), len(last), c1 / c0)


def segments(
    samples: Sequence[Sample],
    events: Sequence[Mapping[str, Any]] = (),
    *,
    drop_fraction: float = 0.5,
    settle_s: float = 30.0,
    warmup_s: float = 300.0,
    confidence: float = 0.95,
) -> tuple[Segment, ...]:
    """Split at restarts and replaced sessions; trend and plateau of each piece."""
    _, breaks = _breaks(samples, events, drop_fraction)
    bounds = [(0, "start"), *((b.index, b.kind) for b in breaks), (len(samples), "end")]
    out: list[Segment] = []
    for k in range(len(bounds) - 1):
        (i0, begins), (i1, _) = bounds[k], bounds[k + 1]
        part = samples[i0:i1]
        if not part:
            continue
        start = part[0].t
        # a fresh app (the first segment, a new browser session) fills its caches: its trend starts
        # after the seed's warm-up ("heapInuse after 5 minutes of use"); a restarted Worker's after
        # settle_s (it restores one page, not a session)
        skip = settle_s if begins == "restart" else warmup_s
        settled = [s for s in part if s.t >= start + skip]
        thin = _thin(settled, TREND_MAX_POINTS)
        out.append(
            Segment(
                index=len(out),
                begins=begins,
                start_t=start,
                end_t=part[-1].t,
                samples=len(part),
                heap=trend(thin, HEAP_INUSE, confidence),
                dom=trend(thin, DOM_HANDLES, confidence),
                plateau=_plateau(part, start, warmup_s),
            )
        )
    return tuple(out)


# --- the whole analysis -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SoakAnalysis:
    """Everything the soak verdicts are judged on (``summary.json``'s ``soak`` section).

    ``hours`` is the sampled time (first to last sample); ``warmup_s``, ``settle_s`` and
    ``drop_fraction`` are the settings used.
    """

    hours: float
    samples: int
    start_t: float | None
    end_t: float | None
    restarts: tuple[Restart, ...]
    gaps: tuple[Gap, ...]
    segments: tuple[Segment, ...]
    alloc_rate: AllocRate
    warmup_s: float = 300.0
    settle_s: float = 30.0
    drop_fraction: float = 0.5


def analyze_soak(
    samples: Sequence[Sample],
    events: Sequence[Mapping[str, Any]] = (),
    *,
    window_s: float = 600.0,
    confidence: float = 0.95,
    warmup_s: float = 300.0,
    settle_s: float = 30.0,
    drop_fraction: float = 0.5,
    probe_bytes: float = 0.0,
) -> SoakAnalysis:
    """Analyse a soak's samples (in time order) and events; judge it with :func:`judge_soak`."""
    restarts, _ = _breaks(samples, events, drop_fraction)
    start = samples[0].t if samples else None
    end = samples[-1].t if samples else None
    hours = (end - start) / 3600 if start is not None and end is not None else 0.0
    return SoakAnalysis(
        hours=hours,
        samples=len(samples),
        start_t=start,
        end_t=end,
        restarts=tuple(restarts),
        gaps=find_gaps(samples, events),
        segments=segments(
            samples,
            events,
            drop_fraction=drop_fraction,
            settle_s=settle_s,
            warmup_s=warmup_s,
            confidence=confidence,
        ),
        alloc_rate=idle_alloc_rate(
            samples, events, window_s=window_s, confidence=confidence, probe_bytes=probe_bytes
        ),
        warmup_s=warmup_s,
        settle_s=settle_s,
        drop_fraction=drop_fraction,
    )


# --- verdicts ---------------------------------------------------------------------------------------


def _result(
    name: str, threshold: float, measured: float | None, unit: str, detail: str, comparison: str
) -> AssertionResult:
    if measured is None:
        return AssertionResult(name, threshold, None, unit, Verdict.UNAVAILABLE, detail, comparison)
    ok = measured < threshold if comparison == "<" else measured <= threshold
    verdict = Verdict.PASS if ok else Verdict.FAIL
    return AssertionResult(name, threshold, measured, unit, verdict, detail, comparison)


def _mins(t: float, t0: float | None) -> str:
    return f"{(t - (t0 or 0.0)) / 60:.0f} min"


def judge_alloc_rate(analysis: SoakAnalysis, budget_bps: float = 1024.0) -> AssertionResult:
    """``soak_alloc_rate``: the lowest upper confidence bound of the idle windows' rates < budget."""
    r = analysis.alloc_rate
    if r.ucb is None or r.lowest is None:
        return _result("soak_alloc_rate", budget_bps, None, "B/s", f"not measured: {r.why}", "<")
    w = r.windows[r.lowest]
    slopes = sorted(x.slope for x in r.windows)
    detail = (
        f"lowest {r.confidence:.0%} upper bound of {len(r.windows)} idle window(s) "
        f"({r.window_s:g} s of idle time each, {r.idle_s:.0f} s idle in {r.periods} period(s)): "
        f"{w.slope:,.1f} B/s ({w.low:,.1f}..{w.high:,.1f}) at {_mins(w.start_t, analysis.start_t)}; "
        f"median slope {statistics.median(slopes):,.1f} B/s, highest {slopes[-1]:,.1f} B/s"
    )
    if r.probe_bytes:
        detail += f"; probe cost {r.probe_bytes:g} B per sample taken out"
    return _result("soak_alloc_rate", budget_bps, round(r.ucb, 3), "B/s", detail, "<")


def _judge_trend(
    analysis: SoakAnalysis, name: str, label: str, tolerance: float, unit: str, scale: float, which: str
) -> AssertionResult:
    judged = [(s, getattr(s, which)) for s in analysis.segments]
    judged = [(s, tr) for s, tr in judged if tr is not None and tr.mann_kendall is not None and tr.theil_sen]
    if not judged:
        why = (
            f"not measured: {label} was read in fewer than 3 samples of any segment after its warm-up "
            f"({analysis.warmup_s:g} s for a fresh app, {analysis.settle_s:g} s after a restart)"
        )
        return _result(name, tolerance, None, unit, why, "<=")
    rising = [(s, tr) for s, tr in judged if tr.mann_kendall.trend == "increasing"]
    if not rising:
        alpha = judged[0][1].mann_kendall.alpha
        detail = f"no increasing trend in {len(judged)} segment(s) (Mann-Kendall, alpha {alpha:g})"
        return _result(name, tolerance, 0.0, unit, detail, "<=")
    seg, tr = max(rising, key=lambda st: st[1].theil_sen.slope)
    ts, mk = tr.theil_sen, tr.mann_kendall
    assert ts is not None and mk is not None
    measured = max(0.0, ts.slope * scale)
    p = f"p={mk.p:.2g}" if mk.p is not None else "p unknown"
    detail = (
        f"{len(rising)} of {len(judged)} segment(s) increasing; steepest: segment {seg.index} "
        f"({_mins(seg.start_t, analysis.start_t)}..{_mins(seg.end_t, analysis.start_t)}), "
        f"Theil-Sen {ts.slope * scale:,.1f} {unit} ({ts.low * scale:,.1f}..{ts.high * scale:,.1f}), "
        f"Mann-Kendall {mk.test} {p}"
    )
    return _result(name, tolerance, round(measured, 3), unit, detail, "<=")


def judge_heap_trend(analysis: SoakAnalysis, tolerance_bps: float = 128 * MiB / 36000) -> AssertionResult:
    """``soak_heap_trend``: the steepest increasing (Mann--Kendall) heapInuse segment's slope <= tolerance."""
    result = _judge_trend(analysis, "soak_heap_trend", "heapInuse", tolerance_bps, "B/s", 1.0, "heap")
    if result.measured:
        # the figure a person weighs against the seed's "a restart every 10+ hours"
        hours = RESTART_HEAP_BYTES / result.measured / 3600
        reach = f"the {RESTART_HEAP_BYTES // MiB} MiB restart threshold in {hours:,.1f} h"
        result = replace(result, detail=f"{result.detail}; at this slope the heap grows by {reach}")
    return result


def judge_dom_trend(analysis: SoakAnalysis, tolerance_per_h: float = 300.0) -> AssertionResult:
    """``soak_dom_trend``: the steepest increasing DOM-handle segment's slope <= tolerance (handles/h)."""
    return _judge_trend(
        analysis, "soak_dom_trend", "dom_handles", tolerance_per_h, "handles/h", 3600.0, "dom"
    )


def judge_heap_plateau(analysis: SoakAnalysis, ratio_max: float = 1.10) -> AssertionResult:
    """``soak_heap_plateau``: the worst segment's last / first quarter median heapInuse <= ``ratio_max``."""
    judged = [s for s in analysis.segments if s.plateau is not None]
    if not judged:
        why = (
            f"not measured: no segment has heapInuse over more than {analysis.warmup_s:g} s of warm-up "
            "(2 or more samples in each quarter after it)"
        )
        return _result("soak_heap_plateau", ratio_max, None, "x first quarter", why, "<=")
    seg = max(judged, key=lambda s: s.plateau.ratio)  # type: ignore[union-attr]
    p = seg.plateau
    assert p is not None
    where = f"segment {seg.index} of {len(analysis.segments)}"
    if p.basis == "bytes_per_event":
        detail = (
            f"{where}: the heap never frees (heapInuse = totalAlloc), so the cost of the work is judged: "
            f"{p.first:,.0f} B allocated per event delivered (first quarter) -> {p.last:,.0f} B (last "
            f"quarter) after {analysis.warmup_s:g} s warm-up"
        )
    else:
        detail = (
            f"{where}: median heapInuse {p.first / MiB:,.2f} MiB (first quarter, {p.first_n} samples) "
            f"-> {p.last / MiB:,.2f} MiB (last quarter, {p.last_n} samples) after {analysis.warmup_s:g} s "
            "warm-up"
        )
    return _result("soak_heap_plateau", ratio_max, round(p.ratio, 4), "x first quarter", detail, "<=")


def judge_restarts_per_hour(analysis: SoakAnalysis, limit: float = 0.1) -> AssertionResult:
    """``soak_restarts_per_hour``: proactive restarts per hour of sampled time <= limit."""
    if analysis.samples < 2 or analysis.hours <= 0:
        return _result(
            "soak_restarts_per_hour", limit, None, "/h", "not measured: fewer than 2 samples", "<="
        )
    n = len(analysis.restarts)
    confirmed = sum(1 for r in analysis.restarts if set(r.evidence) - {"heap_drop"})
    detail = f"{n} restart(s) in {analysis.hours:.2f} h"
    if n:
        detail += f" ({confirmed} confirmed by a restart event or counter, {n - confirmed} heap drop only)"
        detail += "; at " + ", ".join(_mins(r.t, analysis.start_t) for r in analysis.restarts[:10])
    return _result("soak_restarts_per_hour", limit, round(n / analysis.hours, 4), "/h", detail, "<=")


def judge_soak(analysis: SoakAnalysis, thresholds: SoakThresholds | None = None) -> list[AssertionResult]:
    """All five soak verdicts, in :data:`SOAK_ASSERTION_NAMES` order."""
    th = thresholds or SoakThresholds()
    return [
        judge_alloc_rate(analysis, th.idle_rate_bps),
        judge_heap_trend(analysis, th.heap_growth_bps),
        judge_dom_trend(analysis, th.dom_growth_per_h),
        judge_heap_plateau(analysis, th.heap_plateau_ratio_max),
        judge_restarts_per_hour(analysis, th.restarts_per_hour_max),
    ]


# --- the registry's soak-scope assertions -----------------------------------------------------------
# One Assertion object per verdict above, scope "soak": judged by `relaysim soak` on Evidence whose
# ``soak`` is the whole run's SoakAnalysis; a scenario's ``names = "all"`` and `relaysim run` never
# see them. soak_alloc_rate shares the run's idle budget (the same Threshold object, one key).


def _from_result(result: AssertionResult) -> Measured | NotMeasured:
    if result.measured is None:
        return NotMeasured(result.detail)
    return Measured(result.measured, result.detail)


def _soak_measure(judge: Any, key: str) -> Any:
    def measure(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
        if ev.soak is None:
            return NotMeasured("not a soak: no soak analysis in the evidence")
        return _from_result(judge(ev.soak, th[key]))

    return measure


def _measure_ceiling(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    have = [(s, v) for s in ev.samples if (v := s.get(HEAP_INUSE)) is not None]
    if not have:
        return NotMeasured("heapInuse unavailable")
    peak, value = max(have, key=lambda sv: sv[1])
    t0 = have[0][0].t
    return Measured(value, f"max heapInuse over {len(have)} samples, at {(peak.t - t0) / 60:.0f} min")


_SOAK_DEFAULTS = SoakThresholds()

# Run-to-run noise ``relaysim compare`` allows on each soak verdict's figure (Assertion.tolerance).
_SOAK_TOLERANCES = {
    "soak_alloc_rate": Tolerance(abs=256, rel=0.25),
    "soak_heap_trend": Tolerance(abs=512, rel=0.5),
    "soak_dom_trend": Tolerance(abs=30, rel=0.5),
    "soak_heap_plateau": Tolerance(abs=0.05),
    "soak_restarts_per_hour": Tolerance(abs=0.05),
}

for _name, _summary, _unit, _threshold, _judge, _cmp in (
    ("soak_alloc_rate", "lowest upper confidence bound of the rolling idle allocation rate", "B/s",
     IDLE_RATE.thresholds[0], judge_alloc_rate, "<"),
    ("soak_heap_trend", "steepest increasing heapInuse trend of any segment (Mann-Kendall + Theil-Sen)",
     "B/s", Threshold("heap_growth_bps", _SOAK_DEFAULTS.heap_growth_bps,
                      "heapInuse growth a segment may trend at (128 MiB in 10 h)"), judge_heap_trend, "<="),
    ("soak_dom_trend", "steepest increasing DOM-handle trend of any segment", "handles/h",
     Threshold("dom_growth_per_h", _SOAK_DEFAULTS.dom_growth_per_h,
               "DOM handle growth a segment may trend at (3000 in 10 h)"), judge_dom_trend, "<="),
    ("soak_heap_plateau", "worst segment's last-quarter vs first-quarter median heapInuse", "x first quarter",
     Threshold("heap_plateau_ratio_max", _SOAK_DEFAULTS.heap_plateau_ratio_max,
               "a segment's last-quarter median heapInuse / its first quarter's"),
     judge_heap_plateau, "<="),
    ("soak_restarts_per_hour", "proactive Worker restarts per hour of sampled time", "/h",
     Threshold("restarts_per_hour_max", _SOAK_DEFAULTS.restarts_per_hour_max,
               "proactive restarts allowed per hour (the seed: one in 10+ hours)"),
     judge_restarts_per_hour, "<="),
):
    register(Assertion(
        name=_name,
        summary=_summary,
        unit=_unit,
        thresholds=(_threshold,),
        measure=_soak_measure(_judge, _threshold.key),
        comparison=_cmp,
        reads=("soak",),
        scope="soak",
        tolerance=_SOAK_TOLERANCES[_name],
    ))

SOAK_HEAP_CEILING = register(Assertion(
    name="soak_heap_ceiling",
    summary="max heapInuse over the whole soak, every segment and the first minutes included",
    unit="B",
    thresholds=(Threshold("heap_ceiling_bytes", 128 * MiB,
                          "heapInuse a soak must stay under (the seed's proactive-restart threshold)"),),
    measure=_measure_ceiling,
    reads=("samples",),
    scope="soak",
    tolerance=Tolerance(abs=4 * MiB, rel=0.10),
))
