"""Measured-cycle bookkeeping: readings at the boundaries of a ``measure_cycles`` repeat, and their growth.

The runner calls :func:`read_cycle` before a measured repeat's first pass and after each pass;
:func:`measured_growth` turns the readings into :class:`relaysim.analysis.CycleGrowth` (or the reason it
cannot). :func:`parsed_sites` reads the page's per-site allocation counters, or None when they are absent
or malformed.
"""

from __future__ import annotations

from typing import Any

from relaysim import analysis as an
from relaysim.browser import Sampler
from relaysim.scenario.model import Scenario


def parsed_sites(raw: list[dict[str, Any]] | None) -> tuple[an.AllocSite, ...] | None:
    if raw is None:
        return None
    try:
        return an.parse_alloc_counters(raw)
    except ValueError:
        return None


def read_cycle(sampler: Sampler, phase: str) -> an.CycleReading:
    """One reading at a cycle boundary: heapInuse and the per-site counters, same round trip."""
    sample = sampler.sample(phase)
    app = sampler.last
    sites = parsed_sites(app.sites) if app is not None else None
    return an.CycleReading(sample.t, sample.get(an.HEAP_INUSE), sites)


def measured_browser_growth(
    scenario: Scenario, readings: list[an.IsolateReading]
) -> tuple[an.BrowserCycles | None, str | None]:
    """The browser-level growth per cycle of the scenario's measured repeat, from the sampler's deep
    readings taken at the repeat's boundaries (phases ``cycle-start`` / ``cycle-end``): (growth, None),
    (None, why), or (None, None) when the scenario measures no cycles."""
    rep = scenario.measured_repeat
    if rep is None:
        return None, None
    bounds = [r for r in readings if r.phase in ("cycle-start", "cycle-end")]
    got = an.browser_cycles(bounds, rep.warmup)
    return (None, got) if isinstance(got, str) else (got, None)


def measured_growth(
    scenario: Scenario, readings: list[an.CycleReading]
) -> tuple[an.CycleGrowth | None, str | None]:
    """The growth per cycle of the scenario's measured repeat: (growth, None), (None, why), or (None, None)
    when the scenario measures no cycles."""
    rep = scenario.measured_repeat
    if rep is None:
        return None, None
    got = an.cycle_growth(readings, rep.warmup, rep.ignore_sites, an.HEAP_INUSE)
    return (None, got) if isinstance(got, str) else (got, None)
