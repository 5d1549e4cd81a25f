"""``GET /metrics``: the relay's counters in the Prometheus text format (prometheus-client).

Each :class:`~relaysim.relay.server.Relay` has its own ``CollectorRegistry`` (never the global
one: several relays run in one test process) holding one collector that reads the live figures
at scrape time. Nothing is counted twice: the numbers are the ones ``/stats`` shows. Counters come
from ``totals_since_start``, so they never go down when the harness resets the relay (Prometheus
counters must not); the traffic counts restart at a reset, which ``rate()`` treats as a counter reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "RelayCollector", "new_registry", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# totals key -> (metric name without prefix, help); counters get a _total suffix from the client.
_COUNTERS = {
    "connections_opened": ("connections", "Websocket connections accepted"),
    "messages_received": ("messages_received", "Client messages received"),
    "events_received": ("events_received", "EVENT messages received from clients"),
    "events_accepted": ("events_accepted", "Events stored or passed on (ephemeral)"),
    "events_duplicate": ("events_duplicate", "Events answered with duplicate:"),
    "events_rejected": ("events_rejected", "Events refused with OK false"),
    "events_published_in_process": ("events_published_in_process", "Events published by traffic/tests"),
    "events_sent": ("events_sent", "EVENT messages written to clients (stored and live)"),
    "live_events_sent": ("live_events_sent", "Live EVENT messages written to clients"),
    "bytes_sent": ("bytes_sent", "Websocket bytes written to clients"),
    "subs_opened": ("subscriptions_opened", "Subscriptions opened by REQ"),
    "subs_closed": ("subscriptions_closed", "Subscriptions ended (CLOSE, replacement, harness, disconnect)"),
    "subs_refused": ("subscriptions_refused", "REQ/COUNT refused with CLOSED"),
    "counts_answered": ("counts_answered", "COUNT queries answered"),
    "notices_sent": ("notices_sent", "NOTICE messages sent"),
    "slow_client_disconnects": (
        "slow_client_disconnects",
        "Connections closed because the client stopped reading",
    ),
    "connection_errors": ("connection_errors", "Connections ended by an unexpected server-side exception"),
}
_GAUGES = {
    "connections_open": ("connections_open", "Open websocket connections"),
    "subscriptions_active": ("subscriptions_active", "Open subscriptions, all connections"),
    "events_stored": ("events_stored", "Events in the store"),
    "outbox_bytes": ("outbox_bytes", "Bytes queued for clients, all connections"),
}


class RelayCollector(Collector):
    """Reads ``stats()`` (the /stats document) at every scrape."""

    def __init__(self, stats: Callable[[], dict[str, Any]], prefix: str = "relaysim") -> None:
        self._stats = stats
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        totals = stats["totals"]
        since_start = stats["totals_since_start"]
        p = self._prefix
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(f"{p}_{name}", doc, value=since_start.get(key, 0))
        for key, (name, doc) in _GAUGES.items():
            yield GaugeMetricFamily(f"{p}_{name}", doc, value=totals.get(key, 0))
        yield CounterMetricFamily(f"{p}_resets", "POST /control/reset calls", value=stats.get("resets", 0))
        last = totals.get("last_eose_at")
        yield GaugeMetricFamily(
            f"{p}_last_eose_timestamp_seconds",
            "Unix time of the last EOSE sent (0: none yet)",
            value=last or 0,
        )
        per_conn = GaugeMetricFamily(
            f"{p}_connection_subscriptions", "Open subscriptions per connection", labels=["conn"]
        )
        for conn in stats["connections"]:
            per_conn.add_metric([str(conn["id"])], len(conn["subscriptions"]))
        yield per_conn
        yield from _fault_metrics(p, stats.get("faults"))
        traffic = stats.get("traffic")
        if traffic:
            emitted = CounterMetricFamily(f"{p}_traffic_events", "Traffic events published", labels=["kind"])
            for kind, n in traffic["emitted"].items():
                emitted.add_metric([kind], n)
            yield emitted


# FaultCounts field -> the ``fault`` label of relaysim_faults_injected_total.
_FAULTS = {
    "events_dropped": "drop",
    "frames_delayed": "delay",
    "disconnects_close": "disconnect",
    "disconnects_reset": "reset",
    "upgrades_refused": "refuse",
}


def _fault_metrics(p: str, faults: dict[str, Any] | None) -> Iterator[Metric]:
    """The injected faults (``--faults``), so a dashboard can set a client's errors beside them.

    Like the traffic counts they restart at a relay reset, which ``rate()`` reads as a counter reset.
    """
    counts = (faults or {}).get("counts") or {}
    injected = CounterMetricFamily(
        f"{p}_faults_injected",
        "Faults injected by relay --faults: frames withheld or delayed, ends, refusals",
        labels=["fault"],
    )
    for key, fault in _FAULTS.items():
        injected.add_metric([fault], counts.get(key, 0))
    yield injected
    yield CounterMetricFamily(
        f"{p}_fault_delay_seconds",
        "Delay added to relay->client frames by --faults, in all",
        value=counts.get("delay_seconds_total", 0.0),
    )


def new_registry(stats: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    """A registry of its own per relay; the process's memory and CPU (prometheus-client's
    ProcessCollector: ``process_resident_memory_bytes``...) beside the relay's figures, so a soak can
    watch the relay's RSS where it runs as its own process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(stats))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
