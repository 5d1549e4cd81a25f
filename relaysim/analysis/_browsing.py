"""Evidence taken after every browsing step: page visits (for revisit_growth) and both views of the
open subscriptions (for subscriptions_agree). Pure: values in, values out.

Theory of operation. The runner records one :class:`PageVisit` per browsing step -- the page state
the app shows afterwards (``"thread:<id>"``), heapInuse and the per-site counters just before the
step and just after it, and how many events the relay had taken in so far -- and one
:class:`SubscriptionView`: the subscription ids the app says it holds and those the relay holds.

A **return** is a step that moves the app to a page state it has shown before. Showing it again
should keep nothing new: the events, names and replies are cached already, so in a heap that never
frees only what the app re-spends by design on every page load grows (a copy of each websocket
frame, a wrapper per rendered element: the adapter's ``re_spent_sites``). :func:`return_growths`
gives each return's heapInuse growth across that one step with those sites taken out. A return is
not judged when something legitimately new may have to be kept: the relay took in new events since
the state was last shown (live traffic: the page may show notes it never saw), or a cache group
dropped entries (a bounded cache evicted what the
page now has to fetch again).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relaysim.analysis._cycles import CacheGroupSize
from relaysim.analysis._sites import AllocSite, SiteDelta, site_deltas, top_sites

__all__ = [
    "PageVisit",
    "ReturnGrowth",
    "Returns",
    "SubscriptionView",
    "return_growths",
    "short_state",
    "subscription_disagreement",
]


@dataclass(frozen=True, slots=True)
class PageVisit:
    """The app after one browsing step (``step``: e.g. ``"back (step 4)"``; the first is ``"start"``).

    ``state`` is the page state shown (``"feed"``, ``"thread:<id>"``; None when the app does not say);
    ``heap_before``/``sites_before`` are the last readings before the step, ``heap_after``/``sites_after``
    the readings after it (page clock ``t``); ``relay_events`` is the relay's count of events accepted
    so far (None: unknown).
    """

    step: str
    state: str | None
    t: float
    heap_after: float | None
    sites_after: tuple[AllocSite, ...] | None
    heap_before: float | None = None
    sites_before: tuple[AllocSite, ...] | None = None
    relay_events: int | None = None


@dataclass(frozen=True, slots=True)
class ReturnGrowth:
    """One judged return: ``growth`` = heapInuse growth across the step minus ``ignored`` bytes of the
    re-spent sites; ``sites`` the other sites that grew, largest first."""

    visit: PageVisit
    growth: float
    ignored: int
    sites: tuple[SiteDelta, ...]


@dataclass(frozen=True, slots=True)
class Returns:
    """What :func:`return_growths` found: the judged returns and how many were left unjudged, why."""

    judged: tuple[ReturnGrowth, ...]
    after_new_events: int = 0
    after_eviction: int = 0

    @property
    def skipped(self) -> int:
        return self.after_new_events + self.after_eviction


def short_state(state: str | None) -> str:
    """``thread:1125eef7...`` for a person (ids cut to 8 characters)."""
    if state is None:
        return "?"
    page, _, arg = state.partition(":")
    return f"{page}:{arg[:8]}" if len(arg) > 8 else state


def _evicted(cache_readings: Sequence[tuple[float, Sequence[CacheGroupSize]]], t0: float, t1: float) -> bool:
    """Did any cache group hold fewer entries at some reading than at the one before, from the last
    reading at or before ``t0`` up to ``t1``?"""
    start = max((i for i, (t, _) in enumerate(cache_readings) if t <= t0), default=0)
    window = [sizes for t, sizes in cache_readings[start:] if t <= t1]
    for a, b in itertools.pairwise(window):
        before = {g.group: g.entries for g in a}
        if any(g.entries < before.get(g.group, 0) for g in b):
            return True
    return False


def return_growths(
    visits: Sequence[PageVisit],
    ignore_sites: Iterable[str],
    cache_readings: Sequence[tuple[float, Sequence[CacheGroupSize]]] = (),
) -> Returns | str:
    """Every return among ``visits`` (module docstring) with its growth, or why none can be measured."""
    ignore = frozenset(ignore_sites)
    last_seen: dict[str, PageVisit] = {}
    judged: list[ReturnGrowth] = []
    new = evicted = 0
    previous: PageVisit | None = None
    for v in visits:
        earlier = last_seen.get(v.state) if v.state is not None else None
        if earlier is not None and previous is not None and previous.state != v.state:
            if _newer(v.relay_events, earlier.relay_events):
                new += 1
            elif _evicted(cache_readings, earlier.t, v.t):
                evicted += 1
            else:
                got = _growth(v, ignore)
                if isinstance(got, str):
                    return got
                judged.append(got)
        if v.state is not None:
            last_seen[v.state] = v
        previous = v
    return Returns(tuple(judged), new, evicted)


def _newer(now: int | None, then: int | None) -> bool:
    return now is not None and then is not None and now > then


def _growth(v: PageVisit, ignore: frozenset[str]) -> ReturnGrowth | str:
    if v.heap_before is None or v.heap_after is None:
        return "heapInuse unavailable around a return"
    spent = 0
    grown: list[SiteDelta] = []
    if v.sites_before is not None and v.sites_after is not None:
        deltas = site_deltas(v.sites_before, v.sites_after)
        spent = sum(d.bytes for d in deltas if d.name in ignore)
        grown = top_sites([d for d in deltas if d.name not in ignore], n=5)
    elif ignore:
        return "re_spent_sites needs the app's alloc counters (__moxie_read_alloc_counters), unavailable"
    return ReturnGrowth(v, v.heap_after - v.heap_before - spent, spent, tuple(grown))


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """After ``step``: the subscription ids the app holds (None: it does not say) and those the relay
    holds for it, read until they agreed or a short wait ran out."""

    step: str
    t: float
    app: tuple[str, ...] | None
    relay: tuple[str, ...]

    @property
    def relay_only(self) -> tuple[str, ...]:
        """Held by the relay, forgotten by the app (never CLOSEd)."""
        mine = set(self.app or ())
        return tuple(s for s in self.relay if s not in mine)

    @property
    def app_only(self) -> tuple[str, ...]:
        """Believed open by the app, unknown to the relay."""
        theirs = set(self.relay)
        return tuple(s for s in self.app or () if s not in theirs)


def subscription_disagreement(view: SubscriptionView) -> int:
    """How many subscription ids one side holds and the other does not."""
    return len(view.relay_only) + len(view.app_only)
