"""cycle_growth (weakest measured cycle, per-site growth) and cache_entries_bounded, on made-up readings.

Pure: no browser. The numbers are chosen so each property is visible by eye: a leak grows in every
cycle, a one-off allocation in one cycle only, and ignored sites are taken out of each cycle.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.analysis import (
    AllocSite,
    CycleReading,
    Evidence,
    Verdict,
    cache_peaks,
    cycle_growth,
    evaluate,
    parse_cache_sizes,
)


def reading(t: float, heap: float | None, **sites: int) -> CycleReading:
    """A reading whose alloc counters are ``name=bytes`` (site ids in keyword order)."""
    rows = tuple(AllocSite(i, name.replace("_", " "), 1, b) for i, (name, b) in enumerate(sites.items()))
    return CycleReading(t, heap, rows)


def readings(per_cycle: list[dict[str, int]], start: int = 1000) -> list[CycleReading]:
    """Cumulative readings from per-cycle site growth; heapInuse grows by the sum (a bump heap)."""
    totals = {name: 0 for cycle in per_cycle for name in cycle}
    out = [reading(0, start, **totals)]
    heap = start
    for i, cycle in enumerate(per_cycle, start=1):
        for name, b in cycle.items():
            totals[name] += b
        heap += sum(cycle.values())
        out.append(reading(i, heap, **totals))
    return out


def one(name, ev, **th):
    from relaysim.analysis import Thresholds

    return evaluate(ev, Thresholds().with_overrides(th), [name])[0]


def test_weakest_cycle_after_warmup_and_sites_that_grew_in_every_cycle():
    # cycle 0 (warm-up) fills a cache; afterwards `reply cache` grows every time, `events` once
    cycles = [
        {"events": 50_000, "reply_cache": 9000, "ws_frames": 80_000},
        {"events": 0, "reply_cache": 9000, "ws_frames": 80_000},
        {"events": 3000, "reply_cache": 8000, "ws_frames": 80_000},
        {"events": 0, "reply_cache": 9500, "ws_frames": 80_000},
    ]
    got = cycle_growth(readings(cycles), warmup=1, ignore_sites=["ws frames"])
    assert got.cycles == 3 and got.warmup == 1
    assert got.per_cycle_bytes == (9000, 11_000, 9500)
    assert (got.weakest, got.weakest_cycle) == (9000, 0)
    assert [(s.name, s.per_cycle_bytes, s.min_bytes) for s in got.sites] == [
        ("reply cache", (9000, 8000, 9500), 8000)
    ]
    assert [(s.name, s.min_bytes) for s in got.ignored] == [("ws frames", 80_000)]
    r = one("cycle_growth", Evidence(cycles=got))
    assert (r.verdict, r.measured, r.unit, r.comparison) == (Verdict.FAIL, 9000, "B/cycle", "<")
    assert r.detail == (
        "weakest of 3 cycle(s) after 1 warm-up (heapInuse, ws frames taken out); "
        "grew in every cycle: reply cache +8,000 B/cycle"
    )


def test_one_quiet_cycle_acquits_and_the_threshold_is_configurable():
    cycles = [{"events": 40_000}, {"events": 6000}, {"events": 0}, {"events": 7000}]
    got = cycle_growth(readings(cycles))
    assert got.weakest == 0 and got.sites == ()
    r = one("cycle_growth", Evidence(cycles=got))
    assert (r.verdict, r.measured) == (Verdict.PASS, 0)
    assert r.detail.endswith("; no site grew in every cycle")
    steady = cycle_growth(readings([{"x": 3000}] * 4))
    assert one("cycle_growth", Evidence(cycles=steady)).verdict is Verdict.PASS  # 3000 < 4096
    assert one("cycle_growth", Evidence(cycles=steady), cycle_growth_bytes=2048).verdict is Verdict.FAIL


def test_cycle_growth_unavailable_reasons():
    assert cycle_growth(readings([{"x": 1}]), warmup=1) == "no measured cycle: 1 iteration(s) with 1 warm-up"
    gap = [reading(0, 1), reading(1, None), reading(2, 3)]
    assert cycle_growth(gap, warmup=0) == "heapInuse unavailable at a cycle boundary"
    no_sites = [CycleReading(0, 1), CycleReading(1, 2), CycleReading(2, 3)]
    assert cycle_growth(no_sites, warmup=0).weakest == 1  # without ignore_sites the heap alone will do
    assert cycle_growth(no_sites, warmup=0, ignore_sites=["ws frames"]) == (
        "ignore_sites needs the app's alloc counters (__moxie_read_alloc_counters), unavailable"
    )
    r = one("cycle_growth", Evidence())
    assert (r.verdict, r.measured, r.detail) == (
        Verdict.UNAVAILABLE, None, "no repeat with measure_cycles = true in this run"
    )
    r = one("cycle_growth", Evidence(cycles_unavailable="heapInuse unavailable at a cycle boundary"))
    assert r.detail == "heapInuse unavailable at a cycle boundary"


@settings(max_examples=150)
@given(
    leak=st.integers(0, 50_000),
    noise=st.lists(st.integers(0, 100_000), min_size=2, max_size=8),
    quiet=st.integers(0, 7),
)
def test_weakest_is_the_leak_when_one_cycle_is_otherwise_quiet(leak, noise, quiet):
    # a steady leak plus noise that is absent in one cycle: the statistic is exactly the leak
    noise[quiet % len(noise)] = 0
    cycles = [{"leak": leak, "noise": n} for n in [123_456, *noise]]
    got = cycle_growth(readings(cycles), warmup=1)
    assert got.weakest == leak
    assert [s.name for s in got.sites if s.name == "leak"] == (["leak"] if leak else [])


# --- caches ---------------------------------------------------------------------------------------


def test_parse_cache_sizes_and_its_errors():
    got = parse_cache_sizes([
        {"group": "profile wrappers", "entries": 3, "limit": 10},
        {"group": "x", "entries": 2.0, "limit": None, "site": "table:x"},
    ])
    assert [(g.group, g.entries, g.limit, g.site) for g in got] == [
        ("profile wrappers", 3, 10, "map:profile wrappers"), ("x", 2, None, "table:x")
    ]
    for raw, message in [
        ({}, "cache sizes must be a list, got dict"),
        ([1], "cache size 0 must be an object, got int"),
        ([{"entries": 1, "limit": 1}], "cache size 0: 'group' must be a non-empty string"),
        ([{"group": "g", "entries": -1, "limit": 1}],
         "cache size 0: 'entries' must be a non-negative integer, got -1"),
        ([{"group": "g", "entries": 1, "limit": "10"}],
         "cache size 0: 'limit' must be a non-negative integer, got '10'"),
        ([{"group": "g", "entries": 1, "limit": 1, "site": 3}], "cache size 0: 'site' must be a string"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_cache_sizes(raw)
        assert str(info.value) == message


def sizes(**groups: tuple[int, int | None]):
    return parse_cache_sizes([{"group": g.replace("_", " "), "entries": e, "limit": lim}
                              for g, (e, lim) in groups.items()])


def test_cache_entries_bounded_fails_past_twice_the_declared_limit_and_names_the_group():
    run = [(1.0, sizes(events=(100, 2000), profile_wrappers=(9, 10))),
           (2.0, sizes(events=(150, 2000), profile_wrappers=(19, 10))),
           (3.0, sizes(events=(160, 2000), profile_wrappers=(10, 10)))]
    peaks = {p.group: p for p in cache_peaks(run)}
    assert (peaks["profile wrappers"].max_entries, peaks["profile wrappers"].max_t) == (19, 2.0)
    assert peaks["profile wrappers"].final_entries == 10
    r = one("cache_entries_bounded", Evidence(cache_readings=run))
    assert (r.verdict, r.measured, r.unit, r.comparison) == (Verdict.PASS, 1.9, "x limit", "<=")
    assert r.detail == (
        "largest: profile wrappers (map:profile wrappers) 19 entries, limit 10; 2 groups over 3 readings"
    )
    leaky = [*run, (4.0, sizes(events=(170, 2000), profile_wrappers=(37, 10)))]
    r = one("cache_entries_bounded", Evidence(cache_readings=leaky))
    assert (r.verdict, r.measured) == (Verdict.FAIL, 3.7)
    assert r.detail == "unbounded: profile wrappers (map:profile wrappers) 37 entries > 2 x limit 10"
    # a stricter factor from the scenario's thresholds
    strict = one("cache_entries_bounded", Evidence(cache_readings=run), cache_limit_factor=1.5)
    assert strict.verdict is Verdict.FAIL


def test_cache_without_declared_limit_uses_the_default_and_missing_hook_is_unavailable():
    run = [(1.0, sizes(seen=(25_000, None)))]
    r = one("cache_entries_bounded", Evidence(cache_readings=run))
    assert (r.verdict, r.measured) == (Verdict.FAIL, 2.5)
    assert r.detail == "unbounded: seen (map:seen) 25000 entries > 2 x limit 10000"
    assert one("cache_entries_bounded", Evidence(cache_readings=run), cache_default_limit=20_000).verdict is (
        Verdict.PASS
    )
    r = one("cache_entries_bounded", Evidence(cache_unavailable="app lacks __moxie_cache_sizes()"))
    assert (r.verdict, r.measured, r.detail) == (Verdict.UNAVAILABLE, None, "app lacks __moxie_cache_sizes()")
