"""After every browsing step: which page state the app shows, and who holds which subscription.

The runner calls :meth:`BrowsingObserver.before` as a browsing step starts and :meth:`BrowsingObserver.after`
when it is done; the result is one :class:`~relaysim.analysis._browsing.PageVisit` (for
``revisit_growth``) and one :class:`~relaysim.analysis._browsing.SubscriptionView` (for
``subscriptions_agree``). Both come from readings the step already took (its last sample) plus one
``/stats`` read of the relay; only when the app's and the relay's subscriptions differ in a new way
does the observer read both again, for at most ``settle`` seconds, so a CLOSE still on the wire is
not mistaken for a leak.

The page state and the app's subscriptions come from the reference client's ``__relaysim_app_state()``
(``page``, ``arg``, ``subs``); an app without it gets visits without a state and views without the
app's side, which the assertions report as unavailable. The relay's side is every subscription id
held open on any connection (a test relay serves one tab).
"""

from __future__ import annotations

import time
from typing import Any

from relaysim import analysis as an
from relaysim.analysis._browsing import PageVisit, SubscriptionView
from relaysim.browser import Sampler
from relaysim.browser.probes import read_app
from relaysim.errors import UsageError
from relaysim.scenario._cycles import parsed_sites

__all__ = ["BrowsingObserver", "page_state", "re_spent_sites", "relay_subscriptions"]

Before = tuple[float | None, tuple[an.AllocSite, ...] | None]


def re_spent_sites(adapter: Any) -> tuple[str, ...] | None:
    """The adapter's ``re_spent_sites`` (sites the app spends again on every page load), None if absent."""
    extra = getattr(adapter, "extra", None) or {}
    raw = extra.get("re_spent_sites")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        source = getattr(adapter, "source", "") or getattr(adapter, "name", "adapter")
        raise UsageError(f"{source}: re_spent_sites must be a list of allocation site names, got {raw!r}")
    return tuple(raw)


def page_state(state: dict[str, Any] | None) -> str | None:
    """``"feed"`` or ``"thread:<id>"`` from the app's reported state; None when it reports no page."""
    if not state or not isinstance(state.get("page"), str):
        return None
    arg = state.get("arg")
    return state["page"] if arg in (None, "") else f"{state['page']}:{arg}"


def _app_subs(state: dict[str, Any] | None) -> tuple[str, ...] | None:
    subs = state.get("subs") if state else None
    if not isinstance(subs, list):
        return None
    return tuple(sorted(str(s) for s in subs))


def relay_subscriptions(stats: dict[str, Any]) -> tuple[str, ...]:
    """Every subscription id open on any of the relay's connections, sorted."""
    held: set[str] = set()
    for conn in stats.get("connections", []):
        held.update(conn.get("subscriptions") or {})
    return tuple(sorted(held))


def _relay_events(stats: dict[str, Any]) -> int | None:
    """Events the relay accepted (from clients or its own traffic): new content somewhere."""
    value = stats.get("totals", {}).get("events_accepted")
    return int(value) if isinstance(value, int) else None


class BrowsingObserver:
    """Takes the readings around browsing steps (module docstring)."""

    def __init__(self, session: Any, sampler: Sampler, relay: Any | None, *, settle: float = 1.0) -> None:
        self.session = session
        self.sampler = sampler
        self.relay = relay
        self.settle = settle
        self._standing: frozenset[str] = frozenset()

    def before(self) -> Before:
        """heapInuse and the site counters of the latest sample (no new probe)."""
        last = self.sampler.samples[-1] if self.sampler.samples else None
        app = self.sampler.last
        heap = last.get(an.HEAP_INUSE) if last is not None else None
        return heap, parsed_sites(app.sites) if app is not None else None

    def visit(self, label: str, before: Before | None = None) -> tuple[PageVisit, SubscriptionView | None]:
        """The visit the step just made (its last sample) and both views of the subscriptions."""
        sample = self.sampler.samples[-1]
        app = self.sampler.last
        state = app.state if app is not None else None
        stats = self.relay.stats() if self.relay is not None else None
        visit = PageVisit(
            step=label,
            state=page_state(state),
            t=sample.t,
            heap_after=sample.get(an.HEAP_INUSE),
            sites_after=parsed_sites(app.sites) if app is not None else None,
            heap_before=before[0] if before else None,
            sites_before=before[1] if before else None,
            relay_events=_relay_events(stats) if stats is not None else None,
        )
        if stats is None:
            return visit, None
        return visit, self._view(label, sample.t, _app_subs(state), relay_subscriptions(stats))

    def _view(
        self, label: str, t: float, mine: tuple[str, ...] | None, theirs: tuple[str, ...]
    ) -> SubscriptionView:
        assert self.relay is not None
        deadline = time.monotonic() + self.settle
        # A CLOSE or REQ may still be on the wire: read both sides again, but only for a difference
        # that is new (one that already stood after the last step is not in flight).
        while mine is not None and not _differ(mine, theirs) <= self._standing:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
            again = read_app(self.session)
            mine, t = _app_subs(again.state), again.t
            theirs = relay_subscriptions(self.relay.stats())
        self._standing = _differ(mine, theirs) if mine is not None else frozenset()
        return SubscriptionView(label, t, mine, theirs)


def _differ(a: tuple[str, ...], b: tuple[str, ...]) -> frozenset[str]:
    return frozenset(a).symmetric_difference(b)
