"""Assertions and verdicts: thresholds, PASS/FAIL at the boundary, UNAVAILABLE never a number."""

from __future__ import annotations

import pytest

from relaysim.analysis import (
    ASSERTION_NAMES,
    Evidence,
    ProbeCost,
    Sample,
    ThreadClose,
    ThresholdError,
    Thresholds,
    Verdict,
    evaluate,
    measure_idle,
    overall_verdict,
)

MiB = 1024 * 1024


def s(t: float, **figures: float | None) -> Sample:
    return Sample(t=t, figures=figures)


def one(name: str, evidence: Evidence, thresholds: Thresholds | None = None):
    (result,) = evaluate(evidence, thresholds, [name])
    return result


def idle_at(rate_bps: float, probe: ProbeCost | None = None, probes: int = 1):
    return measure_idle(
        [s(100, totalAlloc=1_000_000), s(130, totalAlloc=1_000_000 + rate_bps * 30)],
        probes=[probes],
        probe_cost=probe,
        settle_s=5.0,
        subscriptions_open=0,
    )


def test_seed_defaults() -> None:
    th = Thresholds()
    assert th.idle_rate_bps == 1024
    assert th.heap_delta_bytes == 20 * MiB
    assert th.heap_inuse_after_5min_bytes == 64 * MiB
    assert th.heap_inuse_after_s == 300
    assert th.dom_handles_max == 3000
    assert th.subscriptions_open_when_idle_max == 0
    assert th.thread_events_retained_max == 0
    assert ASSERTION_NAMES == (
        "idle_rate",
        "heap_delta",
        "heap_inuse_after_5min",
        "dom_handles_max",
        "subscriptions_closed_when_idle",
        "subscriptions_bounded",
        "thread_events_released",
        "cycle_growth",
        "cache_entries_bounded",
        "revisit_growth",
        "subscriptions_agree",
        "no_events_after_close",
        "js_heap_growth",
        "dom_nodes_growth",
        "listeners_growth",
        "worker_memory_growth",
    )
    assert (th.cycle_growth_bytes, th.cache_limit_factor, th.cache_default_limit) == (4096, 2, 10000)


def test_threshold_overrides_and_errors() -> None:
    th = Thresholds().with_overrides({"idle_rate_bps": 2048, "dom_handles_max": 5000})
    assert (th.idle_rate_bps, th.dom_handles_max, th.heap_delta_bytes) == (2048, 5000, 20 * MiB)
    with pytest.raises(ThresholdError) as info:
        Thresholds().with_overrides({"idle_rate": 1})
    assert info.value.key == "idle_rate"
    assert str(info.value) == (
        "unknown threshold 'idle_rate' (expected one of: cache_default_limit, cache_limit_factor, "
        "cycle_growth_bytes, dom_handles_max, dom_nodes_growth_max, events_after_close_max, "
        "heap_delta_bytes, heap_inuse_after_5min_bytes, heap_inuse_after_s, idle_rate_bps, "
        "js_heap_growth_bytes, listeners_growth_max, revisit_growth_bytes, "
        "subscriptions_added_max, subscriptions_disagree_max, subscriptions_open_when_idle_max, "
        "thread_events_retained_max, worker_memory_growth_bytes)"
    )
    for bad in (-1, "1k", True, float("inf")):
        with pytest.raises(ThresholdError) as info:
            Thresholds().with_overrides({"heap_delta_bytes": bad})
        assert str(info.value) == f"threshold 'heap_delta_bytes' must be a number >= 0, got {bad!r}"


# --- idle_rate -------------------------------------------------------------------------------------


def test_idle_rate_pass_and_fail_at_the_boundary() -> None:
    r = one("idle_rate", Evidence(idle=idle_at(1023.5)))
    assert (r.verdict, r.measured, r.threshold, r.unit, r.comparison) == (
        Verdict.PASS,
        1023.5,
        1024,
        "B/s",
        "<",
    )
    r = one("idle_rate", Evidence(idle=idle_at(1024)))
    assert r.verdict is Verdict.FAIL and r.measured == 1024


def test_idle_rate_judges_the_compensated_rate() -> None:
    # 1100 B/s raw, of which 31 probes x 120 B / 30 s = 124 B/s is the probe's own cost.
    probe = ProbeCost(bytes_per_probe=120.0, calls_measured=10)
    r = one("idle_rate", Evidence(idle=idle_at(1100, probe, probes=31)))
    assert r.verdict is Verdict.PASS
    assert r.measured == pytest.approx(976.0)
    assert r.detail == "raw 1100.0 B/s, probe 120 B x 31, window 30.0 s, weakest of 1"


def test_idle_rate_unavailable_says_why() -> None:
    r = one("idle_rate", Evidence(idle_unavailable="app lacks __moxie_mem_stats"))
    assert (r.verdict, r.measured) == (Verdict.UNAVAILABLE, None)
    assert r.detail == "not measured: app lacks __moxie_mem_stats"
    r = one("idle_rate", Evidence())
    assert r.detail == "not measured: no idle measurement in this run"


def test_idle_rate_with_subscriptions_still_open_is_not_a_rate() -> None:
    ev = Evidence(subscriptions_open_when_idle=2)
    r = one("idle_rate", ev)
    assert (r.verdict, r.measured) == (Verdict.UNAVAILABLE, None)
    assert r.detail == (
        "not measured: the client still held 2 subscription(s) when told to go idle "
        "(see subscriptions_closed_when_idle)"
    )
    subs = one("subscriptions_closed_when_idle", ev)
    assert (subs.verdict, subs.measured, subs.comparison) == (Verdict.FAIL, 2, "<=")


def test_subscriptions_closed_when_idle() -> None:
    r = one("subscriptions_closed_when_idle", Evidence(subscriptions_open_when_idle=0))
    assert (r.verdict, r.measured, r.threshold) == (Verdict.PASS, 0, 0)
    r = one("subscriptions_closed_when_idle", Evidence(idle=idle_at(10)))  # count taken from the idle point
    assert r.verdict is Verdict.PASS
    r = one("subscriptions_closed_when_idle", Evidence())
    assert (r.verdict, r.detail) == (Verdict.UNAVAILABLE, "not checked: no idle point in this run")


# --- heap ---------------------------------------------------------------------------------------


def test_heap_delta() -> None:
    ev = Evidence(samples=[s(0, heapInuse=4 * MiB), s(60, heapInuse=10 * MiB)])
    r = one("heap_delta", ev)
    assert (r.verdict, r.measured, r.unit) == (Verdict.PASS, 6 * MiB, "B")
    assert r.detail == "heapInuse 4,194,304 -> 10,485,760"
    ev = Evidence(samples=[s(0, heapInuse=0), s(60, heapInuse=20 * MiB)])
    assert one("heap_delta", ev).verdict is Verdict.FAIL
    # Explicit initial/final win over the timeline's ends.
    ev = Evidence(samples=[s(0, heapInuse=0)], initial=s(0, heapInuse=5), final=s(9, heapInuse=7))
    assert one("heap_delta", ev).measured == 2
    r = one("heap_delta", Evidence(samples=[s(0, js_heap_used=5), s(1, js_heap_used=9)]))
    assert (r.verdict, r.measured, r.detail) == (Verdict.UNAVAILABLE, None, "heapInuse unavailable")


def test_heap_inuse_after_5min_takes_the_max_after_the_mark() -> None:
    samples = [s(t, heapInuse=(70 * MiB if t == 100 else 30 * MiB + t * 1000)) for t in range(0, 400, 50)]
    r = one("heap_inuse_after_5min", Evidence(samples=samples))
    # The 70 MiB spike at 100 s is before the 5-minute mark; after it the max is at 350 s.
    assert (r.verdict, r.measured) == (Verdict.PASS, 30 * MiB + 350_000)
    assert r.detail == "max over 2 samples after 300 s (at 350 s)"
    samples.append(s(420, heapInuse=64 * MiB))
    assert one("heap_inuse_after_5min", Evidence(samples=samples)).verdict is Verdict.FAIL


def test_heap_inuse_after_5min_unavailable_on_a_short_run() -> None:
    r = one("heap_inuse_after_5min", Evidence(samples=[s(10, heapInuse=1), s(72, heapInuse=2)]))
    assert (r.verdict, r.measured) == (Verdict.UNAVAILABLE, None)
    assert r.detail == "the run used the app for 62 s; this assertion needs 300 s"
    short = Thresholds().with_overrides({"heap_inuse_after_s": 60})
    r = one("heap_inuse_after_5min", Evidence(samples=[s(10, heapInuse=1), s(72, heapInuse=2)]), short)
    assert (r.verdict, r.measured) == (Verdict.PASS, 2)


# --- DOM handles, thread events -------------------------------------------------------------------


def test_dom_handles_max_throughout() -> None:
    ev = Evidence(samples=[s(0, dom_handles=100), s(1, dom_handles=2999), s(2, dom_handles=50)])
    r = one("dom_handles_max", ev)
    assert (r.verdict, r.measured, r.detail) == (Verdict.PASS, 2999, "final 50, over 3 samples")
    ev = Evidence(samples=[s(0, dom_handles=3000), s(1, dom_handles=10)])
    assert one("dom_handles_max", ev).verdict is Verdict.FAIL
    r = one("dom_handles_max", Evidence(samples=[s(0, nodes=10)]))
    assert (r.verdict, r.measured) == (Verdict.UNAVAILABLE, None)


def test_thread_events_released() -> None:
    closes = [
        ThreadClose(s(1, thread_events=0, dom_handles=200), s(5, thread_events=0, dom_handles=200), "k=0"),
        ThreadClose(s(6, thread_events=0, dom_handles=200), s(9, thread_events=0, dom_handles=210), "k=3"),
    ]
    r = one("thread_events_released", Evidence(thread_closes=closes))
    assert (r.verdict, r.measured, r.unit, r.comparison) == (Verdict.PASS, 0, "events", "<=")
    leaky = [*closes, ThreadClose(s(10, thread_events=0), s(12, thread_events=37, dom_handles=260), "k=5")]
    r = one("thread_events_released", Evidence(thread_closes=leaky))
    assert (r.verdict, r.measured) == (Verdict.FAIL, 37)
    assert r.detail == "max threadEvents entries left after 3 thread close(s) (k=5)"


def test_thread_events_unavailable() -> None:
    r = one("thread_events_released", Evidence())
    assert (r.verdict, r.detail) == (Verdict.UNAVAILABLE, "no thread was opened and closed in this run")
    closes = [ThreadClose(s(1, dom_handles=1), s(2, dom_handles=1))]
    r = one("thread_events_released", Evidence(thread_closes=closes))
    assert (r.verdict, r.measured) == (Verdict.UNAVAILABLE, None)
    assert r.detail == "thread_events figure unavailable (app does not report threadEvents)"


# --- evaluate / overall ---------------------------------------------------------------------------


def test_evaluate_all_in_order_and_unknown_name() -> None:
    results = evaluate(Evidence())
    assert [r.name for r in results] == list(ASSERTION_NAMES)
    assert all(r.verdict is Verdict.UNAVAILABLE and r.measured is None for r in results)
    with pytest.raises(ValueError, match=r"^unknown assertion 'idle' \(expected one of: idle_rate, "):
        evaluate(Evidence(), names=["idle"])


def test_overall_verdict() -> None:
    ev = Evidence(samples=[s(0, dom_handles=5000, heapInuse=1), s(1, dom_handles=1, heapInuse=2)])
    fail, ok = evaluate(ev, names=["dom_handles_max", "heap_delta"])
    unavailable = one("idle_rate", Evidence())
    assert overall_verdict([ok, unavailable, fail]) is Verdict.FAIL
    assert overall_verdict([ok, unavailable]) is Verdict.UNAVAILABLE
    assert overall_verdict([ok]) is Verdict.PASS
    assert overall_verdict([]) is Verdict.PASS
    assert str(Verdict.FAIL) == "FAIL"
