"""Judging a run: the evidence gathered so far, and failing results that name what grew.

:func:`gather_evidence` builds :class:`relaysim.analysis.Evidence` from the sampler and the run's result;
the runner feeds it to :func:`relaysim.analysis.evaluate` and passes each result through :func:`explain`,
which adds the allocation sites, held subscriptions or handle-table marks behind a failure.
:func:`result_dict` is a result as recorded in a checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Evidence, Verdict
from relaysim.browser import Sampler

if TYPE_CHECKING:
    from relaysim.browser.idle import IdleOutcome
    from relaysim.scenario._result import RunResult


def gather_evidence(
    sampler: Sampler,
    result: RunResult,
    *,
    start_t: float,
    subscriptions_open_when_idle: int | None,
    cycles: tuple[an.CycleGrowth | None, str | None],
) -> Evidence:
    idle = result.idle[-1] if result.idle else None
    growth, cycles_why = cycles
    cache_why = sampler.cache_error
    if cache_why is None and not sampler.cache_readings:
        last = sampler.last
        cache_why = (
            "app lacks __moxie_cache_sizes()" if last is None or "__moxie_cache_sizes" in last.missing
            else "__moxie_cache_sizes() " + last.errors.get("__moxie_cache_sizes", "gave nothing")
        )
    return Evidence(
        samples=tuple(sampler.samples),
        start_t=start_t,
        idle=idle.measurement if idle else None,
        idle_unavailable=idle.unavailable if idle else None,
        subscriptions_open_when_idle=subscriptions_open_when_idle,
        thread_closes=tuple(result.thread_closes),
        cycles=growth,
        cycles_unavailable=cycles_why,
        cache_readings=tuple(sampler.cache_readings),
        cache_unavailable=cache_why,
    )


def explain(r: AssertionResult, alloc_log: list[dict[str, Any]], idle: list[IdleOutcome]) -> AssertionResult:
    """A failing idle rate names the allocation sites that grew during the idle window; a failing
    subscription check names the subscriptions the relay still held; a failing handle count the
    handle table's threshold records."""
    if r.name == "dom_handles_max" and r.verdict == Verdict.FAIL:
        # the seed's threshold log names the table that grew and when it crossed each mark
        marks = [str(x.get("value")) for x in alloc_log if x.get("source") == "dom"]
        if marks:
            return dataclasses.replace(
                r, detail=f"{r.detail}; __moxie_alloc_log: dom _elements.size reached {', '.join(marks)}"
            )
    if r.name == "subscriptions_closed_when_idle" and r.verdict == Verdict.FAIL and idle:
        held = idle[-1].open_detail
        return dataclasses.replace(r, detail=f"{r.detail}: {held}") if held else r
    if r.name != "idle_rate" or r.verdict != Verdict.FAIL or not idle:
        return r
    grown = an.top_sites(idle[-1].site_deltas, n=3, by="bytes")
    if not grown:
        return r
    sites = ", ".join(f"{d.name} +{d.bytes:,} B" for d in grown)
    return dataclasses.replace(r, detail=f"{r.detail}; grew while idle: {sites}")


def result_dict(r: AssertionResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "threshold": r.threshold,
        "comparison": r.comparison,
        "measured": r.measured,
        "unit": r.unit,
        "verdict": str(r.verdict),
        "detail": r.detail,
    }
