"""Rates, probe-cost compensation, idle windows, site deltas and DOM handles on synthetic samples."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.analysis import (
    AllocSite,
    CounterReset,
    ProbeCost,
    Sample,
    compensated_rate,
    dom_handles,
    figure_delta,
    idle_windows,
    measure_idle,
    measure_probe_cost,
    parse_alloc_counters,
    rate,
    site_deltas,
    top_sites,
)


def s(t: float, **figures: float | None) -> Sample:
    return Sample(t=t, figures=figures)


# --- exact rates ------------------------------------------------------------------------------


def test_rate_is_exact_difference_over_time() -> None:
    assert rate(s(10.0, totalAlloc=1_000), s(40.0, totalAlloc=31_720)) == 1024.0


def test_rate_of_other_figure() -> None:
    assert rate(s(0, mallocs=3), s(2, mallocs=7), "mallocs") == 2.0


def test_rate_unavailable_figure_is_none_never_a_number() -> None:
    assert rate(s(0, totalAlloc=None), s(1, totalAlloc=5)) is None
    assert rate(s(0), s(1, totalAlloc=5)) is None
    assert rate(s(0, totalAlloc=float("nan")), s(1, totalAlloc=5)) is None
    assert rate(s(0, totalAlloc=True), s(1, totalAlloc=5)) is None


def test_rate_needs_increasing_time() -> None:
    with pytest.raises(ValueError, match=r"^a rate needs end.t > start.t, got 5.0 -> 5.0$"):
        rate(s(5.0, totalAlloc=1), s(5.0, totalAlloc=2))


def test_rate_refuses_a_counter_reset() -> None:
    with pytest.raises(CounterReset) as info:
        rate(s(0, totalAlloc=500), s(1, totalAlloc=100))
    assert str(info.value) == "totalAlloc went down from 500 to 100: the counter was reset"
    assert (info.value.start, info.value.end) == (500, 100)


def test_figure_delta_may_be_negative_for_a_gauge() -> None:
    assert figure_delta(s(0, heapInuse=900), s(1, heapInuse=400), "heapInuse") == -500
    assert figure_delta(s(0, heapInuse=900), s(1), "heapInuse") is None


monotone = st.lists(
    st.tuples(st.fractions(min_value=Fraction(1, 1000), max_value=100), st.integers(0, 10**9)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=100)
@given(start=st.integers(0, 10**12), steps=monotone)
def test_rate_of_monotone_series_is_its_endpoints_slope(
    start: int, steps: list[tuple[Fraction, int]]
) -> None:
    # Build a monotone counter; the window rate depends only on the ends, and equals the
    # time-weighted mean of the sub-window rates exactly (Fractions: no rounding to hide behind).
    samples = [s(Fraction(0), totalAlloc=start)]
    for dt, dv in steps:
        prev = samples[-1]
        samples.append(s(prev.t + dt, totalAlloc=prev.figures["totalAlloc"] + dv))
    whole = rate(samples[0], samples[-1])
    assert whole == Fraction(samples[-1].figures["totalAlloc"] - start, samples[-1].t)
    parts = [rate(a, b) * (b.t - a.t) for a, b in itertools.pairwise(samples)]
    assert sum(parts) / samples[-1].t == whole


# --- probe cost and compensation --------------------------------------------------------------


def test_probe_cost_from_back_to_back_readings() -> None:
    pc = measure_probe_cost([10_000, 10_088, 10_176, 10_264, 10_352])
    assert pc == ProbeCost(bytes_per_probe=88.0, calls_measured=5, min_bytes=88.0, max_bytes=88.0)


def test_probe_cost_uneven_gaps() -> None:
    pc = measure_probe_cost([0, 80, 176])
    assert (pc.bytes_per_probe, pc.min_bytes, pc.max_bytes) == (88.0, 80.0, 96.0)


def test_probe_cost_zero_for_a_probe_that_does_not_allocate() -> None:
    assert measure_probe_cost([7, 7, 7]).bytes_per_probe == 0.0


def test_probe_cost_errors() -> None:
    with pytest.raises(ValueError, match=r"^probe cost needs at least 2 back-to-back readings, got 1$"):
        measure_probe_cost([5])
    with pytest.raises(ValueError, match=r"^totalAlloc went down between back-to-back probe readings$"):
        measure_probe_cost([5, 4])


def test_compensated_rate_arithmetic() -> None:
    pc = ProbeCost(bytes_per_probe=88.0, calls_measured=10)
    # 31 probes of 88 B over 30 s = 90.93 B/s of the raw 1100 B/s is the harness's own doing.
    assert compensated_rate(1100.0, 31, 30.0, pc) == pytest.approx(1100.0 - 31 * 88 / 30)
    assert compensated_rate(200.0, 10, 10.0, pc) == 112.0
    assert compensated_rate(200.0, 10, 10.0, None) == 200.0
    # Not clamped: a probe cost measured high shows as a slightly negative rate.
    assert compensated_rate(0.0, 1, 1.0, pc) == -88.0


def test_compensated_rate_errors() -> None:
    with pytest.raises(ValueError, match=r"^window_s must be > 0, got 0$"):
        compensated_rate(1.0, 1, 0, None)
    with pytest.raises(ValueError, match=r"^probes_in_window must be >= 0, got -1$"):
        compensated_rate(1.0, -1, 1.0, None)


# --- idle windows --------------------------------------------------------------------------


def test_idle_windows_each_exact_and_compensated() -> None:
    pc = ProbeCost(bytes_per_probe=100.0, calls_measured=5)
    bounds = [s(0, totalAlloc=0), s(30, totalAlloc=3_000), s(60, totalAlloc=9_000)]
    w = idle_windows(bounds, probes=[30, 30], probe_cost=pc)
    assert w is not None
    assert [(x.start_t, x.end_t, x.delta, x.raw_rate, x.compensated_rate) for x in w] == [
        (0, 30, 3000.0, 100.0, 0.0),
        (30, 60, 6000.0, 200.0, 100.0),
    ]


def test_measure_idle_takes_the_weakest_window() -> None:
    bounds = [s(0, totalAlloc=0), s(30, totalAlloc=300), s(60, totalAlloc=33_000), s(90, totalAlloc=33_300)]
    m = measure_idle(bounds, settle_s=5.0, subscriptions_open=0)
    assert m is not None
    assert m.weakest == 1
    assert m.raw_rate == 1090.0
    assert m.compensated_rate == m.rate == 1090.0
    assert m.window_s == 30
    assert len(m.windows) == 3
    assert (m.settle_s, m.subscriptions_open, m.probe_cost) == (5.0, 0, None)


def test_measure_idle_tie_goes_to_the_first_window() -> None:
    m = measure_idle([s(0, totalAlloc=0), s(1, totalAlloc=5), s(2, totalAlloc=10)])
    assert m is not None and m.weakest == 0


def test_measure_idle_unavailable_when_a_boundary_lacks_the_figure() -> None:
    assert measure_idle([s(0, totalAlloc=0), s(1), s(2, totalAlloc=2)]) is None


def test_idle_windows_errors() -> None:
    with pytest.raises(ValueError, match=r"^idle windows need at least 2 boundary samples, got 1$"):
        idle_windows([s(0, totalAlloc=0)])
    with pytest.raises(ValueError, match=r"^2 windows but 1 probe counts$"):
        idle_windows([s(0, totalAlloc=0), s(1, totalAlloc=0), s(2, totalAlloc=0)], probes=[1])


# --- allocation sites ---------------------------------------------------------------------------


def test_parse_alloc_counters() -> None:
    raw = [
        {"site": 3, "name": "eventCache", "count": 10, "bytes": 2048},
        {"site": "dom", "count": 1.0, "bytes": 16},
    ]
    assert parse_alloc_counters(raw) == (
        AllocSite(3, "eventCache", 10, 2048),
        AllocSite("dom", "dom", 1, 16),
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"site": 1}, "alloc counters must be a list, got dict"),
        ([3], "alloc counter 0 must be an object, got int"),
        ([{"name": "x", "count": 1, "bytes": 1}], "alloc counter 0: 'site' must be an integer or a string"),
        ([{"site": 1, "name": 2, "count": 1, "bytes": 1}], "alloc counter 0: 'name' must be a string"),
        (
            [{"site": 1, "count": -1, "bytes": 1}],
            "alloc counter 0: 'count' must be a non-negative integer, got -1",
        ),
        ([{"site": 1, "count": 1}], "alloc counter 0: 'bytes' must be a non-negative integer, got None"),
    ],
)
def test_parse_alloc_counters_errors(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_alloc_counters(raw)
    assert str(info.value) == message


BEFORE = (
    AllocSite(1, "eventCache", 100, 100_000),
    AllocSite(2, "noteElements", 50, 800),
    AllocSite(3, "authorNames", 10, 640),
)
AFTER = (
    AllocSite(1, "eventCache", 110, 112_000),
    AllocSite(2, "noteElements", 5_050, 80_800),
    AllocSite(3, "authorNames", 10, 640),
    AllocSite(4, "threadEvents", 40, 90_000),
)


def test_site_deltas() -> None:
    d = site_deltas(BEFORE, AFTER)
    assert [(x.name, x.count, x.bytes, x.total_count, x.total_bytes) for x in d] == [
        ("eventCache", 10, 12_000, 110, 112_000),
        ("noteElements", 5_000, 80_000, 5_050, 80_800),
        ("authorNames", 0, 0, 10, 640),
        ("threadEvents", 40, 90_000, 40, 90_000),
    ]


def test_site_deltas_after_a_heap_restart_count_from_zero() -> None:
    d = site_deltas([AllocSite(1, "a", 500, 5_000)], [AllocSite(1, "a", 20, 200)])
    assert (d[0].count, d[0].bytes) == (20, 200)


def test_top_sites_by_bytes_and_by_count() -> None:
    d = site_deltas(BEFORE, AFTER)
    assert [x.name for x in top_sites(d, by="bytes")] == ["threadEvents", "noteElements", "eventCache"]
    assert [x.name for x in top_sites(d, by="count")] == ["noteElements", "threadEvents", "eventCache"]
    assert [x.name for x in top_sites(d, n=1)] == ["threadEvents"]
    with pytest.raises(ValueError, match=r"^by must be 'bytes' or 'count', got 'name'$"):
        top_sites(d, by="name")


# --- DOM handles ----------------------------------------------------------------------------------


def test_dom_handles_max_and_final_skip_unavailable() -> None:
    samples = [s(0, dom_handles=10), s(1, dom_handles=2900), s(2), s(3, dom_handles=120)]
    d = dom_handles(samples)
    assert d is not None
    assert (d.max, d.final, d.max_t, d.samples) == (2900, 120, 1, 3)
    assert dom_handles([s(0), s(1)]) is None


def test_sample_dict_round_trip_and_shape_errors() -> None:
    x = Sample(t=1.5, figures={"totalAlloc": 10, "nodes": None}, app_ts=1700000000123.0)
    assert Sample.from_dict(x.to_dict()) == x
    with pytest.raises(ValueError, match=r"^sample 't' must be a number, got 'x'$"):
        Sample.from_dict({"t": "x"})
    with pytest.raises(ValueError, match=r"^sample 'figures' must be an object$"):
        Sample.from_dict({"t": 1, "figures": []})
