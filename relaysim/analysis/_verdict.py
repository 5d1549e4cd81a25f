"""Memory assertions with the seed's thresholds, and their verdicts.

Theory of operation: the runner gathers :class:`Evidence` (the timeline, the idle measurement, the
relay's count of open subscriptions when idle was declared, the samples around each thread close)
and calls :func:`evaluate`. Each assertion turns evidence into one :class:`AssertionResult` with
the threshold, the measured value, the unit and a verdict. A figure that could not be read gives
``UNAVAILABLE`` with ``measured=None`` and a detail saying why -- never a number standing in for it.

The assertions (names used in scenario files, reports and the CLI table):

========================================  ====================================  ======================
name                                      measured                              passes when
========================================  ====================================  ======================
``idle_rate``                             idle totalAlloc rate, probe cost out  < ``idle_rate_bps``
``heap_delta``                            final - initial heapInuse             < ``heap_delta_bytes``
``heap_inuse_after_5min``                 max heapInuse once ``heap_inuse_      < ``heap_inuse_after_
                                          after_s`` of use have passed          5min_bytes``
``dom_handles_max``                       max DOM handle table size, all run    < ``dom_handles_max``
``subscriptions_closed_when_idle``        relay-side open subs at idle          <= ``subscriptions_
                                                                                open_when_idle_max``
``thread_events_released``                max live threadEvents entries after   <= ``thread_events_
                                          any thread closed                     retained_max``
``cycle_growth``                          smallest heapInuse growth of any      < ``cycle_growth_
                                          measured cycle (ignored sites out)    bytes``
``cache_entries_bounded``                 largest entries / declared limit of   <= ``cache_limit_
                                          any cache group over the run          factor``
========================================  ====================================  ======================
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

from relaysim.analysis._cycles import CacheGroupSize, CycleGrowth, cache_peaks, cache_ratio
from relaysim.analysis._idle import IdleMeasurement
from relaysim.analysis._samples import DOM_HANDLES, HEAP_INUSE, THREAD_EVENTS, Sample, dom_handles

__all__ = [
    "ASSERTION_NAMES",
    "AssertionResult",
    "Evidence",
    "ThreadClose",
    "ThresholdError",
    "Thresholds",
    "Verdict",
    "evaluate",
    "overall_verdict",
]

MiB = 1024 * 1024


class Verdict(enum.StrEnum):
    """Outcome of one assertion (and of a run)."""

    PASS = "PASS"
    FAIL = "FAIL"
    UNAVAILABLE = "UNAVAILABLE"


class ThresholdError(ValueError):
    """A thresholds table names an unknown key or gives a bad value; ``key`` says which."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits for the assertions; defaults are the seed's. Override per scenario ``[thresholds]``."""

    idle_rate_bps: float = 1024.0
    heap_delta_bytes: float = 20 * MiB
    heap_inuse_after_5min_bytes: float = 64 * MiB
    heap_inuse_after_s: float = 300.0
    dom_handles_max: float = 3000
    subscriptions_open_when_idle_max: float = 0
    thread_events_retained_max: float = 0
    cycle_growth_bytes: float = 4096
    cache_limit_factor: float = 2
    cache_default_limit: float = 10000

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The valid keys of a ``[thresholds]`` table."""
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, overrides: Mapping[str, object]) -> Thresholds:
        """A copy with ``overrides`` applied; raises :class:`ThresholdError` on a bad key or value."""
        valid = self.keys()
        changes: dict[str, float] = {}
        for key, value in overrides.items():
            if key not in valid:
                raise ThresholdError(
                    key, f"unknown threshold {key!r} (expected one of: {', '.join(sorted(valid))})"
                )
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ThresholdError(key, f"threshold {key!r} must be a number >= 0, got {value!r}")
            changes[key] = value
        return replace(self, **changes)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """One assertion's outcome: ``measured`` is ``None`` exactly when the verdict is UNAVAILABLE.

    ``comparison`` is how ``measured`` must relate to ``threshold`` to pass ("<" or "<=").
    """

    name: str
    threshold: float
    measured: float | None
    unit: str
    verdict: Verdict
    detail: str = ""
    comparison: str = "<"


@dataclass(frozen=True, slots=True)
class ThreadClose:
    """Samples around one thread: just before it opened and just after it closed (page left)."""

    before_open: Sample
    after_close: Sample
    label: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the runner measured, for :func:`evaluate`. Every field may be missing.

    ``samples`` is the timeline in time order. ``initial``/``final`` default to its ends and
    ``start_t`` to ``initial.t`` (when use of the app began). ``idle`` is the idle measurement;
    ``idle_unavailable`` says why there is none (e.g. "app lacks __moxie_mem_stats").
    ``subscriptions_open_when_idle`` is the relay's count for this client after close-all and
    settling (``None`` = not checked). ``cycles`` is the measured repeat's growth per cycle
    (``cycles_unavailable`` says why there is none); ``cache_readings`` are ``(t, sizes)`` pairs
    from ``__moxie_cache_sizes()`` (``cache_unavailable`` says why there are none).
    """

    samples: Sequence[Sample] = ()
    initial: Sample | None = None
    final: Sample | None = None
    start_t: float | None = None
    idle: IdleMeasurement | None = None
    idle_unavailable: str | None = None
    subscriptions_open_when_idle: int | None = None
    thread_closes: Sequence[ThreadClose] = ()
    cycles: CycleGrowth | None = None
    cycles_unavailable: str | None = None
    cache_readings: Sequence[tuple[float, Sequence[CacheGroupSize]]] = ()
    cache_unavailable: str | None = None

    def first(self) -> Sample | None:
        return self.initial if self.initial is not None else (self.samples[0] if self.samples else None)

    def last(self) -> Sample | None:
        return self.final if self.final is not None else (self.samples[-1] if self.samples else None)


def _judge(
    name: str,
    threshold: float,
    measured: float | None,
    unit: str,
    detail: str,
    comparison: str = "<",
    unavailable: str = "",
) -> AssertionResult:
    if measured is None:
        return AssertionResult(
            name, threshold, None, unit, Verdict.UNAVAILABLE, unavailable or detail, comparison
        )
    ok = measured < threshold if comparison == "<" else measured <= threshold
    return AssertionResult(
        name, threshold, measured, unit, Verdict.PASS if ok else Verdict.FAIL, detail, comparison
    )


def _check_idle_rate(ev: Evidence, th: Thresholds) -> AssertionResult:
    idle = ev.idle
    if idle is None:
        if ev.subscriptions_open_when_idle:
            why = (
                f"not measured: the client still held {ev.subscriptions_open_when_idle} subscription(s) "
                "when told to go idle (see subscriptions_closed_when_idle)"
            )
        else:
            why = f"not measured: {ev.idle_unavailable or 'no idle measurement in this run'}"
        return _judge("idle_rate", th.idle_rate_bps, None, "B/s", "", unavailable=why)
    pc = idle.probe_cost
    w = idle.windows[idle.weakest]
    probe = f"probe {pc.bytes_per_probe:g} B x {w.probes}" if pc is not None else "probe cost not measured"
    detail = (
        f"raw {idle.raw_rate:.1f} B/s, {probe}, window {idle.window_s:.1f} s, weakest of {len(idle.windows)}"
    )
    return _judge("idle_rate", th.idle_rate_bps, idle.rate, "B/s", detail)


def _check_heap_delta(ev: Evidence, th: Thresholds) -> AssertionResult:
    a, b = ev.first(), ev.last()
    v0 = a.get(HEAP_INUSE) if a is not None else None
    v1 = b.get(HEAP_INUSE) if b is not None else None
    measured = None if v0 is None or v1 is None else v1 - v0
    detail = "" if measured is None else f"heapInuse {v0:,} -> {v1:,}"
    return _judge(
        "heap_delta", th.heap_delta_bytes, measured, "B", detail, unavailable="heapInuse unavailable"
    )


def _check_heap_after(ev: Evidence, th: Thresholds) -> AssertionResult:
    first = ev.first()
    start = ev.start_t if ev.start_t is not None else (first.t if first is not None else None)
    name = "heap_inuse_after_5min"
    have = [s for s in ev.samples if s.get(HEAP_INUSE) is not None]
    if start is None or not have:
        return _judge(
            name, th.heap_inuse_after_5min_bytes, None, "B", "", unavailable="heapInuse unavailable"
        )
    late = [s for s in have if s.t - start >= th.heap_inuse_after_s]
    if not late:
        ran = have[-1].t - start
        why = f"the run used the app for {ran:.0f} s; this assertion needs {th.heap_inuse_after_s:g} s"
        return _judge(name, th.heap_inuse_after_5min_bytes, None, "B", "", unavailable=why)
    peak = max(late, key=lambda s: s.get(HEAP_INUSE))  # type: ignore[arg-type,return-value]
    detail = f"max over {len(late)} samples after {th.heap_inuse_after_s:g} s (at {peak.t - start:.0f} s)"
    return _judge(name, th.heap_inuse_after_5min_bytes, peak.get(HEAP_INUSE), "B", detail)


def _check_dom(ev: Evidence, th: Thresholds) -> AssertionResult:
    d = dom_handles(ev.samples)
    if d is None:
        return _judge(
            "dom_handles_max",
            th.dom_handles_max,
            None,
            "handles",
            "",
            unavailable="DOM handle count unavailable",
        )
    return _judge(
        "dom_handles_max", th.dom_handles_max, d.max, "handles", f"final {d.final}, over {d.samples} samples"
    )


def _check_subs(ev: Evidence, th: Thresholds) -> AssertionResult:
    n = ev.subscriptions_open_when_idle
    if n is None and ev.idle is not None:
        n = ev.idle.subscriptions_open
    return _judge(
        "subscriptions_closed_when_idle",
        th.subscriptions_open_when_idle_max,
        n,
        "subscriptions",
        "relay-side subscriptions still open for this client when idle was declared",
        comparison="<=",
        unavailable="not checked: no idle point in this run",
    )


def _check_thread(ev: Evidence, th: Thresholds) -> AssertionResult:
    name = "thread_events_released"
    if not ev.thread_closes:
        return _judge(
            name,
            th.thread_events_retained_max,
            None,
            "events",
            "",
            "<=",
            unavailable="no thread was opened and closed in this run",
        )
    retained = [(c, c.after_close.get(THREAD_EVENTS)) for c in ev.thread_closes]
    known = [(c, v) for c, v in retained if v is not None]
    if not known:
        return _judge(
            name,
            th.thread_events_retained_max,
            None,
            "events",
            "",
            "<=",
            unavailable="thread_events figure unavailable (app does not report threadEvents)",
        )
    worst, value = max(known, key=lambda cv: cv[1])  # type: ignore[arg-type,return-value]
    d0, d1 = worst.before_open.get(DOM_HANDLES), worst.after_close.get(DOM_HANDLES)
    dom = "" if d0 is None or d1 is None else f", DOM handles {d0} -> {d1}"
    label = f" ({worst.label})" if worst.label else ""
    detail = f"max threadEvents entries left after {len(known)} thread close(s){label}{dom}"
    return _judge(name, th.thread_events_retained_max, value, "events", detail, "<=")


def _check_cycles(ev: Evidence, th: Thresholds) -> AssertionResult:
    name = "cycle_growth"
    c = ev.cycles
    if c is None:
        why = ev.cycles_unavailable or "no repeat with measure_cycles = true in this run"
        return _judge(name, th.cycle_growth_bytes, None, "B/cycle", "", unavailable=why)
    ignoring = f", {', '.join(c.ignore_sites)} taken out" if c.ignore_sites else ""
    detail = f"weakest of {c.cycles} cycle(s) after {c.warmup} warm-up ({c.figure}{ignoring})"
    if c.sites:
        grew = ", ".join(f"{s.name} +{s.min_bytes:,} B/cycle" for s in c.sites[:5])
        detail += f"; grew in every cycle: {grew}"
    else:
        detail += "; no site grew in every cycle"
    return _judge(name, th.cycle_growth_bytes, c.weakest, "B/cycle", detail)


def _check_caches(ev: Evidence, th: Thresholds) -> AssertionResult:
    name = "cache_entries_bounded"
    peaks = cache_peaks(ev.cache_readings)
    if not peaks:
        why = ev.cache_unavailable or "no cache sizes read in this run"
        return _judge(name, th.cache_limit_factor, None, "x limit", "", "<=", unavailable=why)
    rated = sorted(((cache_ratio(p, th.cache_default_limit), p) for p in peaks), key=lambda rp: -rp[0])
    worst_ratio, worst = rated[0]
    limit = worst.limit if worst.limit is not None else th.cache_default_limit
    over = [p for r, p in rated if r > th.cache_limit_factor]
    if over:
        listed = ", ".join(
            f"{p.group} ({p.site}) {p.max_entries} entries > {th.cache_limit_factor:g} x limit "
            f"{p.limit if p.limit is not None else th.cache_default_limit:g}"
            for p in over
        )
        detail = f"unbounded: {listed}"
    else:
        detail = (
            f"largest: {worst.group} ({worst.site}) {worst.max_entries} entries, limit {limit:g}; "
            f"{len(peaks)} groups over {len(ev.cache_readings)} readings"
        )
    return _judge(name, th.cache_limit_factor, round(worst_ratio, 4), "x limit", detail, "<=")


_CHECKS: dict[str, Callable[[Evidence, Thresholds], AssertionResult]] = {
    "idle_rate": _check_idle_rate,
    "heap_delta": _check_heap_delta,
    "heap_inuse_after_5min": _check_heap_after,
    "dom_handles_max": _check_dom,
    "subscriptions_closed_when_idle": _check_subs,
    "thread_events_released": _check_thread,
    "cycle_growth": _check_cycles,
    "cache_entries_bounded": _check_caches,
}

ASSERTION_NAMES: tuple[str, ...] = tuple(_CHECKS)
"""Every assertion relaysim knows, in report order."""


def evaluate(
    evidence: Evidence, thresholds: Thresholds | None = None, names: Iterable[str] | None = None
) -> list[AssertionResult]:
    """Judge ``names`` (default: all of :data:`ASSERTION_NAMES`) on ``evidence``.

    Raises ``ValueError`` for an unknown name (scenario files are checked when loaded).
    """
    th = thresholds or Thresholds()
    out = []
    for name in ASSERTION_NAMES if names is None else names:
        check = _CHECKS.get(name)
        if check is None:
            raise ValueError(f"unknown assertion {name!r} (expected one of: {', '.join(ASSERTION_NAMES)})")
        out.append(check(evidence, th))
    return out


def overall_verdict(results: Iterable[AssertionResult]) -> Verdict:
    """FAIL if any failed; else UNAVAILABLE if any could not be measured; else PASS (also when empty)."""
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.UNAVAILABLE in verdicts:
        return Verdict.UNAVAILABLE
    return Verdict.PASS
