"""One browser session's view of a relay that N sessions share.

Theory of operation. Every browser the harness starts for ``--browsers N`` carries a cookie,
``relaysim_session=<label>`` (:func:`label_browser`), set on the relay's origin before the app
loads. A browser sends it with every websocket handshake to that origin -- from the page or from a
Worker, whatever the app is -- and the relay shows it as the connection's ``label`` in ``/stats``
(:data:`relaysim.relay.SESSION_COOKIE`). :class:`SessionRelay` is then the relay as one session sees
it: the same ``stats()`` / ``close_subscriptions()`` / ``wait_idle()`` / ``traffic`` the idle
protocol, the sampler and the soak loop ask for, answered from that session's connections only. So
one session going idle waits for *its* subscriptions and *its* last EOSE while the others browse,
and its samples carry its own events and bytes.

What stays shared, and says so: the store, the live traffic (``traffic`` steers the one generator
every session sees) and the relay-wide counters of events received and accepted (new content
anywhere is new content for every session).

A session's totals are summed over every connection it ever had. ``/stats`` keeps only the last 50
closed connections, so the view remembers the final figures of its own closed connections itself
(folded into one sum past :data:`REMEMBERED`): its counters never go down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relaysim.relay.server import SESSION_COOKIE

__all__ = ["PER_CONNECTION", "SessionRelay", "label_browser", "session_rows"]

PER_CONNECTION = ("messages_received", "events_sent", "live_events_sent", "bytes_sent", "writes",
                  "subs_opened", "subs_closed")
"""The counters of a ``/stats`` connection row that a session's totals add up."""
TOTALS_KEYS = {"subs_opened": "subs_opened", "subs_closed": "subs_closed", "events_sent": "events_sent",
               "live_events_sent": "live_events_sent", "bytes_sent": "bytes_sent",
               "messages_received": "messages_received"}
REMEMBERED = 1000
"""Closed connections whose figures the view keeps one by one; older ones are folded into a sum."""
POLL_S = 0.1


def session_rows(stats: dict[str, Any], label: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(open, closed) connection rows of ``stats`` that carry ``label``."""
    open_rows = [c for c in stats.get("connections", []) if c.get("label") == label]
    closed = [c for c in stats.get("closed_connections", []) if c.get("label") == label]
    return open_rows, closed


class SessionRelay:
    """``relay`` (a :class:`~relaysim.relay.SyncRelay` or :class:`~relaysim.browser.relay_http.RelayHttp`)
    as the browser session labelled ``label`` sees it (module docstring).

    ``http_url`` is where that browser opens the app (the relay's public URL). ``interrupt`` is called
    while :meth:`wait_idle` polls, so a soak asked to stop need not wait for the idle timeout.
    """

    def __init__(
        self, relay: Any, label: str, http_url: str, *, interrupt: Callable[[], None] | None = None
    ) -> None:
        self.relay = relay
        self.label = label
        self.http_url = http_url
        self.url = "ws" + http_url.removeprefix("http")
        self.interrupt = interrupt
        self._final: dict[int, dict[str, int]] = {}  # closed connections: their last figures
        self._folded: dict[str, int] = dict.fromkeys(PER_CONNECTION, 0)
        self._folded_count = 0

    @property
    def traffic(self) -> Any:
        """The shared relay's traffic control: steering it steers every session's traffic."""
        return getattr(self.relay, "traffic", None)

    def stats(self) -> dict[str, Any]:
        """The ``/stats`` document with only this session's connections, and totals summed from them."""
        doc = self.relay.stats()
        open_rows, closed = session_rows(doc, self.label)
        for row in closed:
            if row["id"] not in self._final:
                self._final[int(row["id"])] = {k: int(row.get(k) or 0) for k in PER_CONNECTION}
        if len(self._final) > REMEMBERED:
            live = {int(c["id"]) for c in closed}
            for cid in [c for c in self._final if c not in live][: len(self._final) - REMEMBERED]:
                for k, v in self._final.pop(cid).items():
                    self._folded[k] += v
                self._folded_count += 1
        sums = dict(self._folded)
        for figures in [*self._final.values(), *({k: int(r.get(k) or 0) for k in PER_CONNECTION}
                                                 for r in open_rows)]:
            for k, v in figures.items():
                sums[k] += v
        eoses = [r["last_eose_at"] for r in [*open_rows, *closed] if r.get("last_eose_at") is not None]
        totals = dict(doc.get("totals") or {})
        totals.update({name: sums[key] for name, key in TOTALS_KEYS.items()})
        totals.update(
            connections_opened=self._folded_count + len(self._final) + len(open_rows),
            connections_open=len(open_rows),
            subscriptions_active=sum(len(r.get("subscriptions") or {}) for r in open_rows),
            last_eose_at=max(eoses) if eoses else None,
            label=self.label,
        )
        return {**doc, "connections": open_rows, "closed_connections": closed, "totals": totals,
                "relay_totals": doc.get("totals")}

    def close_subscriptions(self, conn_id: int | str) -> Any:
        """End the subscriptions of one of this session's connections (``"all"`` means all of *its* own)."""
        if conn_id != "all":
            return self.relay.close_subscriptions(conn_id)
        open_rows, _ = session_rows(self.relay.stats(), self.label)
        return sum(int(self.relay.close_subscriptions(int(r["id"])) or 0) for r in open_rows
                   if r.get("subscriptions"))

    def idle_report(self, settle: float) -> dict[str, Any]:
        """The seed's idle condition for this session: nothing subscribed, ``settle`` s past its last EOSE."""
        doc = self.stats()
        totals = doc["totals"]
        now = float(doc.get("now") or time.time())
        last = totals.get("last_eose_at")
        since = None if last is None else now - float(last)
        active = int(totals.get("subscriptions_active") or 0)
        return {"idle": active == 0 and (since is None or since >= settle), "label": self.label,
                "active_subscriptions": active, "last_eose_at": last, "seconds_since_last_eose": since,
                "settle": settle, "now": now}

    def wait_idle(self, settle: float = 5.0, timeout: float | None = 120.0) -> dict[str, Any]:
        """Poll until :meth:`idle_report` says idle; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + (120.0 if timeout is None else timeout)
        while True:
            report = self.idle_report(settle)
            if report["idle"]:
                return report
            if time.monotonic() >= deadline:
                raise TimeoutError(f"session {self.label} not idle after {timeout} s: {report}")
            if self.interrupt is not None:
                self.interrupt()
            time.sleep(POLL_S)

    def close(self) -> None:
        """Nothing to release: the shared relay belongs to whoever started it."""


def label_browser(driver: Any, http_url: str, label: str) -> None:
    """Give the browser behind ``driver`` the session cookie on the relay's origin (see module docstring).

    WebDriver adds a cookie only for the document it shows, so the browser first opens a small page of
    the relay (``/viewer.json`` answers with or without a dataset viewer: a 404 is still a document);
    the app is loaded afterwards by the caller.
    """
    driver.get(http_url.rstrip("/") + "/viewer.json")
    driver.add_cookie({"name": SESSION_COOKIE, "value": label, "path": "/"})  # host-only: this relay
