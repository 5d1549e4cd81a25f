"""This run's subscriptions on the relay, read with every sample: the count once the first page
settled, the most held at once, and whether the page reached the relay at all.

The runner makes one :class:`SubscriptionWatch` per run. :meth:`~SubscriptionWatch.begin` (before the
page loads) fixes the run's :class:`~relaysim.browser.relay_scope.RelayScope`; :meth:`figures` is the
sampler's ``relay_figures`` (one ``/stats`` read per sample, as before, now scoped to this run's
connections); :meth:`settle` waits once the app is ready until the page has connected and the relay
has sent it no EOSE for ``quiet`` seconds, and records what it holds then (``settled``: what
``subscriptions_bounded`` compares the most held at once with). :meth:`unreached` names the relay a
page never connected to, so a run against the wrong relay cannot pass.
"""

from __future__ import annotations

import time
from typing import Any

from relaysim.analysis._subs import SubscriptionCount
from relaysim.browser.idle import RelayLike, stats_figures
from relaysim.browser.relay_scope import RelayScope

__all__ = ["SubscriptionWatch"]


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
        """The relay's side of one sample (this run's connections); keeps the most held at once."""
        stats = self.relay.stats()
        if self.scope is not None and self.settled is not None:
            held = self.scope.held(stats)
            if self.peak is None or len(held) > self.peak.n:
                self.peak = SubscriptionCount(_now(stats), self.at, held)
        return stats_figures(stats, self.scope)

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> SubscriptionCount:
        """Wait until the page has connected and ``quiet`` seconds passed since its last EOSE (at most
        ``timeout`` s); what it holds then is ``settled`` (and the first ``peak``)."""
        scope = self.scope or self.begin()
        deadline = time.monotonic() + timeout
        while True:
            stats = self.relay.stats()
            last, now = scope.last_eose(stats), _now(stats)
            connected = scope.connections(stats) > 0
            if (connected and (last is None or now - last >= quiet)) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.settled = self.peak = SubscriptionCount(now, "first page settled", scope.held(stats))
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
