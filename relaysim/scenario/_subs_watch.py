"""This run's subscriptions on the relay, read with every sample: the count once the first page
settled, the most held at once by a settled page, and whether the page reached the relay at all.

The runner makes one :class:`SubscriptionWatch` per run. :meth:`~SubscriptionWatch.begin` (before the
page loads) fixes the run's :class:`~relaysim.browser.relay_scope.RelayScope`; :meth:`figures` is the
sampler's ``relay_figures`` (one ``/stats`` read per sample, as before, now scoped to this run's
connections). A page that is loading holds short-lived subscriptions (a profile's follower count, a
thread's replies) that it closes after their EOSE; what piles up is what a page still holds once it
has *settled*: no EOSE sent to this run's connections for :data:`QUIET` seconds. So only settled
samples count: the first one is ``settled`` (what the first page holds; :meth:`settle` waits for it
once the app is ready, up to 10 s), the largest after it is ``peak``, and ``subscriptions_bounded``
compares the two. :meth:`unreached` names the relay a page never connected to, so a run against the
wrong relay cannot pass.
"""

from __future__ import annotations

import time
from typing import Any

from relaysim.analysis._subs import SubscriptionCount
from relaysim.browser.idle import RelayLike, stats_figures
from relaysim.browser.relay_scope import RelayScope

__all__ = ["QUIET", "SubscriptionWatch"]

QUIET = 1.0
"""Seconds without an EOSE to this run's connections after which the page counts as settled."""


class SubscriptionWatch:
    """See the module docstring. ``at`` is what the run is doing (set by the runner before each step)."""

    def __init__(self, relay: RelayLike) -> None:
        self.relay = relay
        self.scope: RelayScope | None = None
        self.at = "start"
        self.settled: SubscriptionCount | None = None
        self.peak: SubscriptionCount | None = None

    def begin(self) -> RelayScope:
        """The run begins now: connections the relay opens from here on are this run's."""
        self.scope = RelayScope.begin(self.relay.stats())
        return self.scope

    def figures(self) -> dict[str, float | int | None]:
        """The relay's side of one sample (this run's connections); a settled sample may be the first
        settled count or a new most held at once."""
        stats = self.relay.stats()
        self._see(stats, self.at)
        return stats_figures(stats, self.scope)

    def _see(self, stats: dict[str, Any], at: str) -> bool:
        """Count what the page holds when it is settled; True when it was."""
        scope = self.scope
        if scope is None or scope.connections(stats) == 0:
            return False
        last, now = scope.last_eose(stats), _now(stats)
        if last is not None and now - last < QUIET:
            return False
        held = scope.held(stats)
        if self.settled is None:
            self.settled = self.peak = SubscriptionCount(now, f"first page settled ({at})", held)
        elif self.peak is None or len(held) > self.peak.n:
            self.peak = SubscriptionCount(now, at, held)
        return True

    def settle(self, timeout: float = 10.0) -> SubscriptionCount | None:
        """Wait until the page has connected and settled (at most ``timeout`` s): what it holds then is
        ``settled``. None when it did not settle in time (a later settled sample sets it)."""
        if self.scope is None:
            self.begin()
        deadline = time.monotonic() + timeout
        while not self._see(self.relay.stats(), "start") and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.settled

    def unreached(self) -> str | None:
        """The relay's URL when no connection of this run ever reached it; None when one did."""
        if self.scope is None:
            return None
        stats = self.relay.stats()
        if self.scope.connections(stats) > 0:
            return None
        return self.scope.relay_url or getattr(self.relay, "url", None) or "the harness's relay"

    def report_figures(self) -> dict[str, Any] | None:
        """This run's totals for the report (None before :meth:`begin`)."""
        if self.scope is None:
            return None
        return self.scope.figures(self.relay.stats())


def _now(stats: dict[str, Any]) -> float:
    now = stats.get("now")
    return float(now) if isinstance(now, int | float) else time.time()
