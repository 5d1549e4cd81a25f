"""The seed's idle protocol, driven for real: close everything, check the relay, settle, measure.

Theory of operation (shared/DESIGN.md, "Idle measurement"):

1. The app is asked to CLOSE every subscription through ``__moxie_close_all()``; the relay's own count
   is the judge: every connection of this run must hold 0 active subscriptions within ``close_timeout``
   seconds. A client that still holds some fails *with that fact*; no rate is measured, because a rate
   taken while events may still arrive would blame the wrong thing.
2. An app without that hook is judged on what it holds by itself: once ``settle`` seconds have passed
   since the relay's last EOSE to this run's connections (browsing has stopped), the subscriptions they
   still hold are counted, each with its filter (``IdleOutcome.held``), *before* the relay ends
   anything; then the relay ends them (CLOSED to each connection), so the idle window measures a quiet
   page. A page that keeps a live subscription by design is allowed it by the scenario's
   ``subscriptions_open_when_idle_max``.
3. The relay waits until ``settle`` seconds have passed since the last EOSE it sent.
4. ``windows`` windows of ``window`` seconds are sampled at the sampler's interval. ``totalAlloc`` is
   cumulative, so each window's rate is exact from its two boundary readings; the probe's own cost is
   subtracted (:func:`relaysim.analysis.measure_idle`) and the weakest (highest) window is kept.
   Theil–Sen over all idle samples gives a slope with its confidence interval, and the per-site deltas
   across the weakest window name the allocation site that grew.

The relay is anything with ``stats()`` (the ``/stats`` document), ``close_subscriptions(conn_id)`` and
``wait_idle(settle=...)``: :class:`relaysim.relay.SyncRelay` in-process, or :class:`RelayHttp` for a
relay given by URL. A :class:`~relaysim.browser.relay_scope.RelayScope` limits every count to this
run's connections (a relay given by URL may serve others); without one, every connection counts.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from relaysim import analysis as an
from relaysim.analysis import IdleMeasurement, ProbeCost, Sample, SiteDelta, Trend
from relaysim.analysis._subs import HeldSubscription, describe_held
from relaysim.browser.probes import call_close_all
from relaysim.browser.relay_scope import RelayScope
from relaysim.browser.sampler import Sampler

__all__ = [
    "IdleOutcome",
    "RelayLike",
    "close_everything",
    "open_subscriptions",
    "relay_figures",
    "run_idle_protocol",
    "stats_figures",
    "wait_quiet",
]


class RelayLike(Protocol):
    def stats(self) -> dict[str, Any]: ...

    def close_subscriptions(self, conn_id: int) -> Any: ...

    def wait_idle(self, settle: float = 5.0, timeout: float | None = None) -> Any: ...


def relay_figures(relay: RelayLike, scope: RelayScope | None = None) -> dict[str, float | int | None]:
    """The relay's side of a sample: subscriptions it holds open, events and bytes it has sent (for
    ``scope``'s connections when given, else for every connection)."""
    return stats_figures(relay.stats(), scope)


def stats_figures(stats: dict[str, Any], scope: RelayScope | None = None) -> dict[str, float | int | None]:
    """:func:`relay_figures` from a ``/stats`` document already read."""
    totals: Any = scope.figures(stats) if scope is not None else stats.get("totals", {})
    return {
        an.RELAY_SUBSCRIPTIONS: totals.get("subscriptions_active"),
        "relay_events_sent": totals.get("events_sent"),
        "relay_bytes_sent": totals.get("bytes_sent"),
    }


def open_subscriptions(stats: dict[str, Any], scope: RelayScope | None = None) -> dict[int, list[str]]:
    """Connection id -> ids of its active subscriptions, for connections that hold any (``scope``'s only)."""
    if scope is not None:
        return scope.open_by_connection(stats)
    out: dict[int, list[str]] = {}
    for conn in stats.get("connections", []):
        subs = conn.get("subscriptions") or {}
        if subs:
            out[int(conn["id"])] = sorted(subs)
    return out


def describe_open(open_subs: dict[int, list[str]]) -> str:
    return "; ".join(f"connection {cid}: {', '.join(subs)}" for cid, subs in sorted(open_subs.items()))


def close_everything(session: Any, relay: RelayLike, scope: RelayScope | None = None) -> str:
    """Ask the app to close its subscriptions; without the hook, have the relay close them. Says who did."""
    if call_close_all(session):
        return "app"
    relay_closes(relay, scope)
    return "relay"


def relay_closes(relay: RelayLike, scope: RelayScope | None = None) -> None:
    """CLOSED from the relay for every subscription of ``scope``'s connections (every connection's)."""
    for conn_id in open_subscriptions(relay.stats(), scope):
        relay.close_subscriptions(conn_id)


def wait_quiet(relay: RelayLike, scope: RelayScope | None, settle: float, timeout: float) -> bool:
    """Wait until ``settle`` seconds have passed since the relay's last EOSE to ``scope``'s connections
    (the relay's clock); False when EOSEs kept coming for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        stats = relay.stats()
        last = scope.last_eose(stats) if scope is not None else stats.get("totals", {}).get("last_eose_at")
        now = stats.get("now")
        if not isinstance(now, int | float) or last is None or now - last >= settle:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(min(0.1, max(0.01, settle - (now - last))))


@dataclass
class IdleOutcome:
    """What the idle protocol found; ``measurement`` is None when no rate could (or may) be taken."""

    closed_by: str
    subscriptions_open: int
    open_detail: str = ""
    held: tuple[HeldSubscription, ...] = ()
    counted: str = ""
    settle_s: float | None = None
    measurement: IdleMeasurement | None = None
    unavailable: str | None = None
    trend: Trend | None = None
    site_deltas: list[SiteDelta] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    window_bounds: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        ts = self.trend.theil_sen if self.trend else None
        return {
            "closed_by": self.closed_by,
            "subscriptions_open": self.subscriptions_open,
            "open_detail": self.open_detail,
            "counted": self.counted,
            "settle_s": self.settle_s,
            "unavailable": self.unavailable,
            "raw_rate_bps": None if m is None else m.raw_rate,
            "compensated_rate_bps": None if m is None else m.compensated_rate,
            "window_s": None if m is None else m.window_s,
            "weakest": None if m is None else m.weakest,
            "windows": [] if m is None else [
                {"start_t": w.start_t, "end_t": w.end_t, "window_s": w.window_s, "delta_bytes": w.delta,
                 "probes": w.probes, "raw_rate_bps": w.raw_rate, "compensated_rate_bps": w.compensated_rate}
                for w in m.windows
            ],
            "theil_sen": None if ts is None else {
                "slope_bps": ts.slope, "low": ts.low, "high": ts.high, "confidence": ts.confidence, "n": ts.n
            },
            "site_deltas": [
                {"site": d.site, "name": d.name, "count": d.count, "bytes": d.bytes}
                for d in an.top_sites(self.site_deltas, n=10, by="bytes")
            ],
        }


def _wait_closed(relay: RelayLike, timeout: float, scope: RelayScope | None) -> tuple[HeldSubscription, ...]:
    deadline = time.monotonic() + timeout
    while True:
        stats = relay.stats()
        left = scope.held(stats) if scope is not None else RelayScope().held(stats)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _held_outcome(closed_by: str, held: tuple[HeldSubscription, ...], counted: str, why: str) -> IdleOutcome:
    return IdleOutcome(closed_by, len(held), describe_held(held), held=held, counted=counted, unavailable=why)


def run_idle_protocol(
    session: Any,
    sampler: Sampler,
    relay: RelayLike,
    *,
    window: float = 30.0,
    windows: int = 1,
    settle: float = 5.0,
    probe_cost: ProbeCost | None = None,
    close_timeout: float = 3.0,
    idle_timeout: float = 60.0,
    scope: RelayScope | None = None,
) -> IdleOutcome:
    """Steps 1-4 of the module docstring; samples taken here are also kept in ``sampler``."""
    started = time.monotonic()
    held: tuple[HeldSubscription, ...] = ()
    if call_close_all(session):
        closed_by, counted = "app", "after __moxie_close_all()"
        left = _wait_closed(relay, close_timeout, scope)
        if left:
            return _held_outcome(closed_by, left, counted, "client still holds subscriptions")
        started = time.monotonic()
    else:
        closed_by = "relay"
        counted = f"{settle:g} s after the last EOSE, before the relay ended any (no __moxie_close_all)"
        if not wait_quiet(relay, scope, settle, settle + idle_timeout):
            held = scope.held(relay.stats()) if scope is not None else RelayScope().held(relay.stats())
            why = f"EOSEs kept coming for {settle + idle_timeout:g} s after browsing stopped"
            return _held_outcome(closed_by, held, counted, why)
        held = scope.held(relay.stats()) if scope is not None else RelayScope().held(relay.stats())
        relay_closes(relay, scope)
        left = _wait_closed(relay, close_timeout, scope)
        if left:
            why = "the app subscribed again after the relay ended its subscriptions"
            return _held_outcome(closed_by, held, counted, why)
    try:
        relay.wait_idle(settle=settle, timeout=settle + idle_timeout)
    except TimeoutError:
        # Something subscribed again (or EOSEs kept coming) after the close: that is the finding.
        left = RelayScope().held(relay.stats()) if scope is None else scope.held(relay.stats())
        why = f"relay not idle {settle + idle_timeout:g} s after close-all"
        return _held_outcome(closed_by, held or left, counted, why)
    settle_s = time.monotonic() - started
    bounds: list[Sample] = [sampler.sample("idle")]
    sites = [sampler.last.sites if sampler.last else None]
    taken: list[Sample] = list(bounds)
    probes: list[int] = []
    spans = []
    for _ in range(windows):
        count = 0
        began = time.monotonic()
        while True:
            remaining = window - (time.monotonic() - began)
            if remaining <= 0:
                break
            time.sleep(min(sampler.interval, remaining))
            taken.append(sampler.sample("idle"))
            count += 1
        bounds.append(taken[-1])
        sites.append(sampler.last.sites if sampler.last else None)
        probes.append(count)
        spans.append((bounds[-2].t, bounds[-1].t))
    outcome = IdleOutcome(
        closed_by, len(held), describe_held(held), held=held, counted=counted, settle_s=settle_s,
        samples=taken, window_bounds=spans,
    )
    try:
        outcome.measurement = an.measure_idle(
            bounds, probes, probe_cost, settle_s=settle_s, subscriptions_open=len(held)
        )
    except an.CounterReset as exc:
        outcome.unavailable = str(exc)
    if outcome.measurement is None and outcome.unavailable is None:
        outcome.unavailable = "totalAlloc unavailable (app lacks __moxie_mem_stats)"
    outcome.trend = an.trend(taken, an.TOTAL_ALLOC)
    weakest = outcome.measurement.weakest if outcome.measurement else 0
    before, after = sites[weakest], sites[weakest + 1]
    if before is not None and after is not None:
        try:
            parsed = an.parse_alloc_counters(before), an.parse_alloc_counters(after)
            outcome.site_deltas = an.site_deltas(*parsed)
        except ValueError as exc:
            outcome.unavailable = outcome.unavailable or f"alloc counters malformed: {exc}"
        else:
            m = outcome.measurement
            if m is not None and m.window_s > 0:  # per-site rates in the report, for relaysim compare
                rates = an.idle_sites(outcome.site_deltas, m.window_s)
                outcome.measurement = dataclasses.replace(m, sites=rates)
    return outcome
