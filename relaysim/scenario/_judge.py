"""Judging a run: the evidence gathered so far, as :class:`relaysim.analysis.Evidence`.

:func:`gather_evidence` builds it from the sampler and the run's result; the runner hands it to
:func:`relaysim.analysis.evaluate`, where each assertion's own ``explain`` names what grew or what was
held when it fails (the registry, not this module, knows what each assertion needs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import Evidence
from relaysim.browser import Sampler
from relaysim.scenario._result import RunResult
from relaysim.scenario._subs_watch import SubscriptionWatch

__all__ = ["gather_evidence"]


def gather_evidence(
    sampler: Sampler,
    result: RunResult,
    *,
    start_t: float,
    subscriptions_open_when_idle: int | None,
    cycles: tuple[an.CycleGrowth | None, str | None],
    browser_cycles: tuple[an.BrowserCycles | None, str | None] = (None, None),
    re_spent_sites: Sequence[str] | None = None,
    relay_totals: Mapping[str, Any] | None = None,
    watch: SubscriptionWatch | None = None,
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
        idle_site_deltas=tuple(idle.site_deltas) if idle else (),
        subscriptions_open_when_idle=subscriptions_open_when_idle,
        subscriptions_detail=(idle.open_detail or None) if idle else None,
        thread_closes=tuple(result.thread_closes),
        cycles=growth,
        cycles_unavailable=cycles_why,
        cache_readings=tuple(sampler.cache_readings),
        cache_unavailable=cache_why,
        alloc_log=tuple(sampler.alloc_log),
        page_visits=tuple(result.page_visits),
        subscription_views=tuple(result.subscription_views),
        re_spent_sites=None if re_spent_sites is None else tuple(re_spent_sites),
        relay_totals=relay_totals,
        isolates=tuple(sampler.isolate_readings),
        browser_cycles=browser_cycles[0],
        browser_cycles_unavailable=browser_cycles[1],
        subscriptions_counted=(idle.counted or None) if idle else None,
        subscriptions_settled=watch.settled if watch is not None else None,
        subscriptions_peak=watch.peak if watch is not None else None,
    )
