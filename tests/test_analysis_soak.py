"""Soak trend verdicts on synthetic timelines whose right answer is known (pure; no browser).

The series: one sample every 10 s; every 10 minutes the last 3 are an idle period (``idle_start`` /
``idle_end`` events) in which a sound app allocates nothing, while browsing allocates 20 KB/s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from relaysim.analysis import (
    APP_RESTARTS,
    SOAK_ASSERTION_NAMES,
    Sample,
    SoakThresholds,
    Verdict,
    analyze_soak,
    find_gaps,
    find_restarts,
    idle_periods,
    judge_soak,
    rolling_rates,
    trend,
)
from relaysim.report import report_from_json

Fn = Callable[[float], float]


def soak_series(
    hours: float = 2.0,
    *,
    leak_bps: float = 0.0,
    heap: Fn | None = None,
    dom: Fn | None = None,
    restarts: tuple[float, ...] = (),
    counter: Fn | None = None,
    dt: float = 10.0,
) -> tuple[list[Sample], list[dict[str, Any]]]:
    samples: list[Sample] = []
    events: list[dict[str, Any]] = []
    total = 1_000_000.0
    idle_open = False
    for i in range(int(hours * 3600 / dt) + 1):
        t = i * dt
        idle = t % 600 >= 420
        if idle and not idle_open:
            events.append({"t": t, "wall": 1.7e9 + t, "type": "idle_start"})
        if not idle and idle_open:
            events.append({"t": t - dt, "wall": 1.7e9 + t, "type": "idle_end", "rate": leak_bps})
        idle_open = idle
        figures: dict[str, float | int | None] = {
            "totalAlloc": total,
            "heapInuse": heap(t) if heap else 8_000_000 + 50_000 * math.sin(t / 300),
            "dom_handles": round(dom(t) if dom else 400 + 100 * math.sin(t / 97)),
        }
        if counter is not None:
            figures[APP_RESTARTS] = counter(t)
        samples.append(Sample(t, figures))
        total += (leak_bps + (0.0 if idle else 20_000.0)) * dt
    events += [{"t": r, "wall": 1.7e9 + r, "type": "restart"} for r in restarts]
    return samples, events


def verdicts(samples: list[Sample], events: list[dict[str, Any]]) -> dict[str, Any]:
    return {r.name: r for r in judge_soak(analyze_soak(samples, events))}


def test_a_flat_soak_passes_every_verdict() -> None:
    res = verdicts(*soak_series())
    assert list(res) == list(SOAK_ASSERTION_NAMES)
    assert {n: (r.measured, r.verdict) for n, r in res.items()} == {
        "soak_alloc_rate": (0.0, Verdict.PASS),
        "soak_heap_trend": (0.0, Verdict.PASS),
        "soak_dom_trend": (0.0, Verdict.PASS),
        "soak_heap_plateau": (1.0016, Verdict.PASS),
        "soak_restarts_per_hour": (0.0, Verdict.PASS),
    }
    assert res["soak_alloc_rate"].detail.startswith(
        "lowest 95% upper bound of 6 idle window(s) (600 s of idle time each, 2040 s idle in 12 period(s))"
    )
    assert res["soak_heap_trend"].detail == "no increasing trend in 1 segment(s) (Mann-Kendall, alpha 0.05)"


def test_a_2_kb_per_s_idle_leak_fails_the_alloc_rate_and_the_plateau() -> None:
    res = verdicts(*soak_series(leak_bps=2048.0, heap=lambda t: 8e6 + 2048 * t))
    rate = res["soak_alloc_rate"]
    assert (rate.measured, rate.threshold, rate.unit, rate.verdict) == (2048.0, 1024.0, "B/s", Verdict.FAIL)
    assert "2,048.0 B/s (2,048.0..2,048.0)" in rate.detail
    assert (res["soak_heap_plateau"].measured, res["soak_heap_plateau"].verdict) == (2.0225, Verdict.FAIL)
    # 2 KB/s reaches 128 MB in 17 h: within the seed's 10-hour restart budget, so the trend passes.
    heap = res["soak_heap_trend"]
    assert (heap.measured, heap.verdict) == (2048.0, Verdict.PASS)
    assert heap.threshold == pytest.approx(3728.27, abs=0.01)


def test_the_browsing_rate_is_not_judged_only_idle_time() -> None:
    """20 KB/s while browsing, 0 while idle: a whole-timeline rate would fail; the idle clock passes."""
    samples, events = soak_series(hours=1.0)
    ts = [s.t for s in samples]
    vs = [float(s.get("totalAlloc") or 0) for s in samples]
    assert min(w.slope for w in rolling_rates(ts, vs, 600.0)) > 10_000
    assert verdicts(samples, events)["soak_alloc_rate"].measured == 0.0


def test_the_lowest_upper_bound_ignores_a_noisy_idle_period() -> None:
    """The first idle period allocates 3,000 B/s (a timer left running until it fired); the rest 0."""
    samples, events = soak_series()

    def extra(t: float) -> float:
        return 3000.0 * (min(t, 590.0) - 420.0) if t >= 420 else 0.0

    noisy = [
        Sample(s.t, {**s.figures, "totalAlloc": (s.get("totalAlloc") or 0) + extra(s.t)}) for s in samples
    ]
    a = analyze_soak(noisy, events, window_s=180.0)
    highs = [round(w.high, 4) for w in a.alloc_rate.windows]
    assert (len(highs), highs[0], highs[1]) == (22, 3000.0, 1714.2857)
    assert (a.alloc_rate.ucb, a.alloc_rate.lowest) == (0.0, 2)


def test_a_sawtooth_with_restarts_is_judged_per_segment() -> None:
    """5 KB/s growth, restarted every 30 minutes: over the whole run Theil-Sen sees ~500 B/s."""
    samples, events = soak_series(
        hours=7190 / 3600, heap=lambda t: 8e6 + 5000 * (t % 1800), restarts=(1795.0, 3595.0, 5395.0)
    )
    whole = trend(samples, "heapInuse")
    assert whole is not None and whole.theil_sen is not None
    assert whole.theil_sen.slope == 500.0
    a = analyze_soak(samples, events)
    assert [(s.begins, s.samples) for s in a.segments] == [
        ("start", 180),
        ("restart", 180),
        ("restart", 180),
        ("restart", 180),
    ]
    assert [(r.t, r.evidence) for r in a.restarts] == [
        (1800.0, ("heap_drop", "event")),
        (3600.0, ("heap_drop", "event")),
        (5400.0, ("heap_drop", "event")),
    ]
    res = {r.name: r for r in judge_soak(a)}
    assert (res["soak_heap_trend"].measured, res["soak_heap_trend"].verdict) == (5000.0, Verdict.FAIL)
    assert res["soak_heap_trend"].detail.startswith("4 of 4 segment(s) increasing; steepest: segment 0")
    assert (res["soak_heap_plateau"].measured, res["soak_heap_plateau"].verdict) == (1.5372, Verdict.FAIL)
    rph = res["soak_restarts_per_hour"]
    assert (rph.measured, rph.verdict) == (1.5021, Verdict.FAIL)
    assert rph.detail == (
        "3 restart(s) in 2.00 h (3 confirmed by a restart event or counter, 0 heap drop only); "
        "at 30 min, 60 min, 90 min"
    )


def test_flat_segments_between_restarts_pass_and_the_counter_confirms_them() -> None:
    """Each restart drops the heap from 20 MB back to 8 MB; in between it is flat: no trend."""

    def heap(t: float) -> float:
        return 20e6 if t % 3600 >= 60 else 8e6

    samples, events = soak_series(hours=10790 / 3600, heap=heap, counter=lambda t: t // 3600)
    a = analyze_soak(samples, events)
    assert [(r.t, r.evidence) for r in a.restarts] == [
        (3600.0, ("heap_drop", "counter")),
        (7200.0, ("heap_drop", "counter")),
    ]
    res = {r.name: r for r in judge_soak(a, SoakThresholds(restarts_per_hour_max=1.0))}
    assert res["soak_heap_trend"].verdict == Verdict.PASS
    assert res["soak_heap_plateau"].measured == 1.0
    assert (res["soak_restarts_per_hour"].measured, res["soak_restarts_per_hour"].verdict) == (
        0.6673,
        Verdict.PASS,
    )


def test_a_plateau_passes_a_rising_heap_after_warm_up_does_not_count_the_warm_up() -> None:
    """The heap climbs to 20 MB in the first minutes (caches filling) and stays there."""
    res = verdicts(*soak_series(heap=lambda t: 20e6 - 12e6 * math.exp(-t / 60)))
    plateau = res["soak_heap_plateau"]
    assert (plateau.measured, plateau.verdict) == (1.0, Verdict.PASS)
    assert plateau.detail.endswith("after 300 s warm-up")


def bump_heap_series(cost_per_event: Fn, hours: float = 1.0) -> tuple[list[Sample], list[dict[str, Any]]]:
    """A heap that never frees (heapInuse = totalAlloc, the seed's bump allocator): the client is
    delivered 8 events/s while browsing (none while idle) and each costs ``cost_per_event(t)`` bytes."""
    samples, events = soak_series(hours=hours)
    heap, delivered, out = 2_000_000.0, 0, []
    for prev, s in zip([None, *samples], samples, strict=False):
        if prev is not None and not 420 <= s.t % 600 < 600:
            n = 8 * round(s.t - prev.t)
            delivered += n
            heap += n * cost_per_event(s.t)
        figures = {**s.figures, "heapInuse": heap, "totalAlloc": heap, "relay_events_sent": delivered}
        out.append(Sample(s.t, figures))
    return out, events


def test_a_heap_that_never_frees_is_judged_on_its_cost_per_event_not_its_level() -> None:
    """1 KB per event for an hour: the heap climbs ~4x after warm-up yet the work costs the same."""
    steady = verdicts(*bump_heap_series(lambda t: 1000.0))
    plateau = steady["soak_heap_plateau"]
    assert (plateau.measured, plateau.verdict) == (1.0, Verdict.PASS)
    assert "the heap never frees" in plateau.detail and "1,000 B allocated per event" in plateau.detail
    # the level still counts against the restart budget: ~5.6 KB/s on average is past 3,728 B/s
    trend_ = steady["soak_heap_trend"]
    assert trend_.verdict == Verdict.FAIL
    assert "restart threshold in" in trend_.detail
    # a leak that makes every event cost more as the session goes on (1 KB + 1 B per second)
    growing = verdicts(*bump_heap_series(lambda t: 1000.0 + t))["soak_heap_plateau"]
    assert growing.verdict == Verdict.FAIL and growing.measured > 2.0


def test_a_growing_dom_handle_table_fails_its_trend_in_handles_per_hour() -> None:
    res = verdicts(*soak_series(dom=lambda t: 300 + t / 6))  # 600 handles/h
    dom = res["soak_dom_trend"]
    assert (dom.measured, dom.unit, dom.threshold, dom.verdict) == (600.0, "handles/h", 300.0, Verdict.FAIL)


def test_a_replaced_session_is_a_gap_and_a_segment_not_a_restart() -> None:
    samples, events = soak_series(hours=1.0)
    kept = [s for s in samples if not 1200 < s.t < 1500]  # the tab crashed: 4.5 minutes unsampled
    kept = [Sample(s.t, {**s.figures, "heapInuse": 1e6}) if s.t >= 1500 else s for s in kept]
    events += [
        {"t": 1210.0, "wall": 0, "type": "fault", "reason": "tab crashed"},
        {"t": 1490.0, "wall": 0, "type": "session_replaced"},
    ]
    a = analyze_soak(kept, events)
    assert a.restarts == ()
    assert [(g.start_t, g.end_t, g.cause) for g in a.gaps] == [
        (1200.0, 1500.0, "tab crashed; session_replaced")
    ]
    assert [s.begins for s in a.segments] == ["start", "session_replaced"]
    assert find_gaps(samples) == ()


def test_without_idle_periods_or_samples_the_verdicts_say_why() -> None:
    samples, _ = soak_series(hours=0.08)  # shorter than the 300 s warm-up
    res = verdicts(samples, [])
    assert res["soak_alloc_rate"].verdict == Verdict.UNAVAILABLE
    assert res["soak_alloc_rate"].measured is None
    assert res["soak_alloc_rate"].detail == (
        "not measured: no idle period in the timeline (no idle_start/idle_end events)"
    )
    assert res["soak_heap_plateau"].verdict == Verdict.UNAVAILABLE
    empty = verdicts([], [])
    assert {r.verdict for r in empty.values()} == {Verdict.UNAVAILABLE}


def test_idle_periods_pair_events_and_an_unclosed_one_ends_at_the_last_sample() -> None:
    events = [
        {"t": 10, "type": "idle_start"},
        {"t": 40, "type": "idle_end", "rate": 12.5},
        {"t": 100, "type": "idle_start"},
        {"t": 5, "type": "page"},
    ]
    periods = idle_periods(events, end_t=130.0)
    assert [(p.start_t, p.end_t, p.rate) for p in periods] == [(10.0, 40.0, 12.5), (100.0, 130.0, None)]


def test_a_restart_inside_an_idle_period_is_stepped_over() -> None:
    samples = [
        Sample(float(t), {"totalAlloc": 5000.0 + 100 * t if t < 50 else 100 * (t - 50)})
        for t in range(0, 100, 5)
    ]
    a = analyze_soak(samples, [{"t": 0, "type": "idle_start"}, {"t": 95, "type": "idle_end"}])
    assert (a.alloc_rate.periods, a.alloc_rate.ucb) == (2, 100.0)
    assert find_restarts(samples) == ()  # no heapInuse, no event, no counter: only the idle rate saw it


def test_the_soak_section_round_trips_through_a_report() -> None:
    from relaysim.report import AppInfo, Environment, HeapFigures, Report, ScenarioInfo, Timing

    samples, events = soak_series(hours=1.0, restarts=(1795.0,), heap=lambda t: 8e6 + 5000 * (t % 1800))
    a = analyze_soak(samples, events)
    report = Report(
        scenario=ScenarioInfo(name="soak"),
        app=AppInfo(url="builtin", mode="fixed"),
        environment=Environment(),
        timing=Timing(
            started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T01:00:00Z", duration_s=3600.0
        ),
        heap=HeapFigures(initial={}, final={}),
        assertions=tuple(judge_soak(a)),
        soak=a,
    )
    assert report_from_json(report.to_json()) == report
