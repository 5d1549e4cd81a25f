"""This run's connections on a relay that may have served others, and the figures scoped to them.

A relay given by ``--relay-url`` has counted every client since it started: earlier runs, other
tabs, other browsers. What a run reports and judges is its own page. The relay numbers websocket
connections from 1 and never reuses an id, so the connections a run's page opened are those with an
id above the last one the relay had given out when the run began (``totals_since_start``'s
``connections_opened``); with a session ``label`` (the ``relaysim_session`` cookie a harness sets in
the browsers it starts, shown per connection in ``/stats``) only that label's connections count.

:class:`RelayScope` reads ``/stats`` documents (dicts) and knows nothing of relays or browsers:
:meth:`RelayScope.begin` before the page loads, then :meth:`rows`, :meth:`held`, :meth:`figures`,
:meth:`last_eose` on any later document. Closed connections are counted from the relay's bounded
history of closed connections (docs/relay.md), enough for one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaysim.analysis._subs import HeldSubscription, held_from_rows

__all__ = ["RelayScope"]

_SUMMED = ("subs_opened", "subs_closed", "events_sent", "live_events_sent", "bytes_sent", "messages_received")


@dataclass(frozen=True)
class RelayScope:
    """Connections with ``id >= first_id`` (and ``label`` when given) are this run's."""

    first_id: int = 1
    label: str | None = None
    relay_url: str | None = None

    @classmethod
    def begin(cls, stats: Mapping[str, Any], label: str | None = None) -> RelayScope:
        """The scope of a run starting now, from the relay's ``/stats`` read before the page loads."""
        opened = (stats.get("totals_since_start") or {}).get("connections_opened")
        if not isinstance(opened, int):
            ids = [int(r["id"]) for r in _all_rows(stats)]
            opened = max(ids, default=0)
        url = (stats.get("relay") or {}).get("url")
        return cls(opened + 1, label, url if isinstance(url, str) else None)

    def _mine(self, row: Mapping[str, Any]) -> bool:
        return int(row["id"]) >= self.first_id and (self.label is None or row.get("label") == self.label)

    def rows(self, stats: Mapping[str, Any], *, closed: bool = True) -> list[Mapping[str, Any]]:
        """This run's connection rows: open ones, then (``closed``) the closed ones still listed."""
        open_rows = [r for r in stats.get("connections", []) if self._mine(r)]
        if not closed:
            return open_rows
        return open_rows + [r for r in stats.get("closed_connections", []) if self._mine(r)]

    def held(self, stats: Mapping[str, Any]) -> tuple[HeldSubscription, ...]:
        """Every subscription this run's open connections hold, with its filters."""
        return held_from_rows(self.rows(stats, closed=False))

    def open_by_connection(self, stats: Mapping[str, Any]) -> dict[int, list[str]]:
        """Connection id -> ids of its open subscriptions, for this run's connections that hold any."""
        out: dict[int, list[str]] = {}
        for h in self.held(stats):
            out.setdefault(h.conn, []).append(h.sub_id)
        return out

    def last_eose(self, stats: Mapping[str, Any]) -> float | None:
        """When the relay last sent an EOSE to this run's connections (the relay's clock), or None."""
        times = [r.get("last_eose_at") for r in self.rows(stats)]
        known = [float(t) for t in times if isinstance(t, int | float)]
        return max(known, default=None)

    def connections(self, stats: Mapping[str, Any]) -> int:
        """How many connections this run's page opened so far (open and closed)."""
        return len(self.rows(stats))

    def figures(self, stats: Mapping[str, Any]) -> dict[str, int]:
        """This run's totals: connections, subscriptions opened/closed/open now, events, bytes."""
        rows = self.rows(stats)
        out = {key: sum(int(r.get(key) or 0) for r in rows) for key in _SUMMED}
        out["connections_opened"] = len(rows)
        out["connections_open"] = len(self.rows(stats, closed=False))
        out["subscriptions_active"] = len(self.held(stats))
        return out

    def describe(self) -> str:
        label = f" labelled {self.label!r}" if self.label else ""
        return f"connections {self.first_id} and later{label}"


def _all_rows(stats: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*stats.get("connections", []), *stats.get("closed_connections", [])]
