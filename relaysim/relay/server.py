"""The test relay as a trio async context manager: ``async with Relay(...) as relay:``.

Theory of operation: :class:`Relay` binds its TCP listener first (so a ``port=0`` relay knows
its URL before loading), loads the dataset into an :class:`~relaysim.store.EventStore` (in a
worker thread: building a named dataset may take seconds), then serves every TCP connection with
:func:`~relaysim.relay.http.serve_http`; a websocket upgrade becomes a
:class:`~relaysim.relay.websocket.WebSocketConnection`. All NIP-01 state lives in one
:class:`~relaysim.relay.core.RelayCore`; this module only wires it to sockets, the clock, the
traffic generator and the static files.

Leaving the ``async with`` closes every websocket with 1001 (going away), waits briefly for the
clients to answer, then cancels what is left.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio

import relaysim
from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.relay import metrics
from relaysim.relay.core import Delivery, RelayCore
from relaysim.relay.http import HttpRequest, HttpResponse, serve_http, text_response
from relaysim.relay.limits import Limits
from relaysim.relay.routes import handle_request
from relaysim.relay.websocket import ConnectionSettings, WebSocketConnection
from relaysim.store import EventStore

__all__ = ["DEFAULT_CLIENT_DIR", "HARNESS_CLOSE_REASON", "Relay"]

log = logging.getLogger("relaysim.relay")

#: The reference client shipped in the package: served at ``/`` unless ``static`` says otherwise.
DEFAULT_CLIENT_DIR = Path(relaysim.__file__).parent / "client"
HARNESS_CLOSE_REASON = "error: closed by test harness"
SHUTDOWN_REASON = "relay shutting down"

_BUILTIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>relaysim test relay</title></head>
<body>
<h1>relaysim test relay</h1>
<p>The reference client is not installed here (no <code>index.html</code> in
<code>{client_dir}</code>). Start the relay with <code>--static DIR</code> to serve your own app.</p>
<p>Relay: <code id="relay-url">{ws_url}</code> &middot; <a href="/stats">/stats</a> &middot;
<a href="/metrics">/metrics</a></p>
</body></html>
"""


_DISCONNECTS = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError)


def _is_disconnect(exc: BaseException) -> bool:
    """True when ``exc`` (or every exception in a group from a nursery) means "the client left"."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_disconnect(inner) for inner in exc.exceptions)
    return isinstance(exc, _DISCONNECTS)


# Live (non-dataset) events kept at most: ~10 hours of the default traffic mix, ~100 MB.
DEFAULT_MAX_EVENTS = 100_000

class Relay:
    """A Nostr relay for tests, on one loopback port (HTTP and websocket).

    ``dataset`` is a dataset name from ``datasets/`` (built on first use), a path to a JSONL file,
    or None for an empty relay; ``events`` adds events directly (tests). ``static`` is the
    directory served at ``/`` (default: the built-in reference client); ``test_headers`` adds
    COOP/COEP/CORP to every response (default: on for the built-in client, off for ``static``).
    ``traffic`` (``"notes=2/s,reactions=10/s"`` or a :class:`~relaysim.traffic.Rates`) starts the
    live traffic generator; it needs a named dataset, whose cast signs the events.
    ``max_events`` caps the store (oldest non-dataset events are evicted; default
    ``DEFAULT_MAX_EVENTS`` so hours of live traffic cannot grow the relay without bound; None
    lifts the cap). A named dataset's relay
    hints point at ``dataset_relay_url`` (default ``ws://127.0.0.1:7447/``), or at this relay's
    own URL with ``hints_follow_url=True`` (the CLI does that; a different URL is a separate build).
    """

    def __init__(
        self,
        dataset: str | Path | None = None,
        *,
        events: Iterable[Event] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        static: str | Path | None = None,
        test_headers: bool | None = None,
        traffic: Any = None,
        traffic_seed: int | str = 1,
        traffic_paused: bool = False,
        limits: Limits | None = None,
        max_events: int | None = DEFAULT_MAX_EVENTS,
        settings: ConnectionSettings | None = None,
        dataset_relay_url: str | None = None,
        hints_follow_url: bool = False,
    ) -> None:
        self.dataset = dataset
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.settings = settings or ConnectionSettings()
        self.version = relaysim.__version__
        self.store = EventStore(capacity=max_events)
        self.core = RelayCore(self.store, self.limits)
        self.static_root: Path | None
        if static is not None:
            root = Path(static)
            if not root.is_dir():
                raise UsageError(f"--static {static}: not a directory")
            self.static_root = root
            self.test_headers = bool(test_headers)
        else:
            self.static_root = DEFAULT_CLIENT_DIR if (DEFAULT_CLIENT_DIR / "index.html").is_file() else None
            self.test_headers = True if test_headers is None else test_headers
        self._extra_events = list(events) if events is not None else []
        self._traffic_spec = traffic
        self._traffic_seed = traffic_seed
        self._traffic_paused = traffic_paused
        self._dataset_relay_url = dataset_relay_url
        self._hints_follow_url = hints_follow_url
        self.traffic: Any = None  # TrafficControl when a generator runs
        self._generator: Any = None
        self._spec: Any = None
        self.traffic_ready = trio.Event()
        self.traffic_error: str | None = None
        self._traffic_wanted = trio.Event()
        self._connections: dict[int, WebSocketConnection] = {}
        self._change = trio.Event()
        self._registry = metrics.new_registry(self.stats)
        self._nursery_manager: Any = None
        self._nursery: trio.Nursery | None = None
        self.ready_seconds: float | None = None
        self.load_info: dict[str, Any] = {}
        # The dataset's viewer account (None for a JSONL file): served as /viewer.json.
        self.viewer: str | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The websocket URL clients connect to, e.g. ``ws://127.0.0.1:7447/``."""
        return f"ws://{self._netloc}/"

    @property
    def http_url(self) -> str:
        """The same origin over HTTP: the app, ``/stats``, ``/metrics``, ``/idle``."""
        return f"http://{self._netloc}/"

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Relay:
        started = time.perf_counter()
        try:
            listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        except OSError as exc:
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        if self.port == 0 and len(listeners) > 1:
            # "localhost" may resolve to ::1 and 127.0.0.1, and port 0 gives each its own port:
            # keep one listener so the relay has one URL.
            for extra in listeners[1:]:
                await extra.aclose()
            listeners = listeners[:1]
        self.port = listeners[0].socket.getsockname()[1]
        if (
            self._hints_follow_url
            and self._dataset_relay_url is None
            and self.host not in ("0.0.0.0", "::", "")
        ):
            # Relay hints and kind-10002 r tags name this very relay, so a client stays here.
            self._dataset_relay_url = self.url
        try:
            await trio.to_thread.run_sync(self._load)
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        self._nursery.start_soon(trio.serve_listeners, self._handle_tcp, listeners)
        if self._spec is not None:
            if self._traffic_spec is not None:
                self._traffic_wanted.set()  # here, not in _load: trio.Event is not thread-safe
            self._nursery.start_soon(self._run_traffic)
        self.ready_seconds = time.perf_counter() - started
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._nursery is not None and self._nursery_manager is not None
        try:
            await self._close_connections()
        finally:
            self._nursery.cancel_scope.cancel()
            result = await self._nursery_manager.__aexit__(*exc_info)
        return result

    async def _close_connections(self) -> None:
        for conn in list(self._connections.values()):
            conn.close(1001, SHUTDOWN_REASON)
        with trio.move_on_after(self.settings.close_timeout + 0.5):
            while self._connections:
                await self._change.wait()

    def _load(self) -> None:
        """Fill the store (and make the traffic generator); runs in a worker thread."""
        from relaysim.dataset import sha256_file
        from relaysim.relay.loading import load_dataset, parse_traffic

        t0 = time.perf_counter()
        loaded = load_dataset(self.dataset, relay_url=self._dataset_relay_url)
        events = loaded.events + self._extra_events
        result = self.store.load(events, pinned=True)
        self.load_info = {
            "dataset": loaded.name,
            "path": str(loaded.path) if loaded.path else None,
            # What exactly was served, for reports: the JSONL file's hash (~20 ms for seed1).
            "sha256": sha256_file(loaded.path) if loaded.path else None,
            "events_read": len(events),
            "events_stored": len(self.store),
            "events_refused": result.refused,
            "load_seconds": round(time.perf_counter() - t0, 4),
        }
        if loaded.spec is not None:
            from relaysim.relay.loading import OnDemandTrafficControl

            parse_traffic(self._traffic_spec)  # a bad --traffic fails now, not in the background
            self._spec = loaded.spec
            from relaysim.dataset import viewer_pubkey

            self.viewer = viewer_pubkey(loaded.spec.seed_bytes)
            self.traffic = OnDemandTrafficControl(paused=self._traffic_paused, wanted=self._traffic_wanted)
        elif self._traffic_spec is not None:
            raise UsageError(
                "--traffic needs a named dataset (its authors sign the traffic), not a JSONL file"
            )

    async def _run_traffic(self) -> None:
        """Build the generator off the event loop (the cast takes seconds), then run it.

        The relay is ready before this finishes; bursts requested meanwhile wait in the
        control's queue. :attr:`traffic_ready` is set once events can flow. Without ``traffic``
        rates the generator is only built when the control is first used (a burst or a resume),
        so a relay nobody sends traffic through does not spend CPU on the cast.
        """
        await self._traffic_wanted.wait()
        from relaysim.relay.loading import make_generator
        from relaysim.traffic import run_traffic

        try:
            self._generator = await trio.to_thread.run_sync(
                lambda: make_generator(
                    self._spec, self._traffic_spec, seed=self._traffic_seed, relay_url=self._dataset_relay_url
                )
            )
            self.traffic_ready.set()
            await run_traffic(self.publish, self._generator, self.traffic)
        except Exception as exc:
            # Traffic is an add-on: its failure is reported in /stats, the relay keeps serving.
            self.traffic_error = f"{type(exc).__name__}: {exc}"
            log.exception("traffic generator failed")

    # -- connections ---------------------------------------------------------------------------

    async def _handle_tcp(self, stream: trio.SocketStream) -> None:
        """One TCP connection; nothing raised here may reach ``serve_listeners``."""
        try:
            peer = stream.socket.getpeername()
            host, port = str(peer[0]), peer[1]
            remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            handshake = await serve_http(stream, host, self._handle_http)
            if handshake is not None:
                conn = WebSocketConnection(
                    stream,
                    remote,
                    self.core,
                    self.settings,
                    registry=self._connections,
                    on_change=self._changed,
                )
                await conn.run(*handshake)
        except Exception as exc:
            if not _is_disconnect(exc):
                self.core.totals.connection_errors += 1
                log.exception("connection failed")
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(1):
                    await stream.aclose()

    async def _handle_http(self, request: HttpRequest) -> HttpResponse:
        return await handle_request(self, request)

    def _changed(self) -> None:
        """Wake everything waiting on relay state (wait_idle, shutdown)."""
        self._change.set()
        self._change = trio.Event()

    def _dispatch(self, deliveries: list[Delivery]) -> None:
        registry = self._connections
        for delivery in deliveries:
            target = registry.get(delivery.sub.session.conn_id)
            if target is not None:
                target.deliver(delivery)

    # -- Python API ----------------------------------------------------------------------------

    async def publish(self, event: Event, *, verify: bool = False) -> tuple[bool, str]:
        """Store ``event`` and push it to every matching live subscription; returns (ok, message)."""
        ok, message, deliveries = self.core.publish(event, verify=verify)
        self._dispatch(deliveries)
        if deliveries:
            self._changed()
        return ok, message

    def idle_report(self, *, settle: float = 5.0, conn: int | None = None) -> dict[str, Any]:
        """Where the idle condition stands right now (the body of /idle)."""
        active, last_eose = self.core.idle_state(conn)
        now = self.core.clock()
        since = None if last_eose is None else now - last_eose
        return {
            "idle": active == 0 and (since is None or since >= settle),
            "conn": conn,
            "active_subscriptions": active,
            "last_eose_at": last_eose,
            "seconds_since_last_eose": since,
            "settle": settle,
            "now": now,
        }

    async def wait_idle(self, settle: float = 5.0, conn: int | None = None) -> dict[str, Any]:
        """Return once no subscription is open (on ``conn``, or anywhere) and ``settle`` seconds
        have passed since the last EOSE -- the seed's idle precondition. Wrap in a timeout.

        "Since the last EOSE" counts from the newest EOSE the relay sent (to that connection);
        a relay that never sent one is idle as soon as nothing is subscribed.
        """
        while True:
            changed = self._change
            active, last_eose = self.core.idle_state(conn)
            if active == 0:
                remaining = 0.0 if last_eose is None else last_eose + settle - self.core.clock()
                if remaining <= 0:
                    return self.idle_report(settle=settle, conn=conn)
            else:
                remaining = math.inf
            with trio.move_on_after(remaining):
                await changed.wait()

    def close_subscriptions(self, conn: int | str = "all", *, reason: str | None = None) -> int:
        """End subscriptions from the relay side: CLOSED to the client, delivery stops at once.

        ``conn`` is a connection id (see :meth:`stats`) or ``"all"``. Returns how many ended.
        """
        reason = reason or HARNESS_CLOSE_REASON
        if conn == "all":
            targets = list(self._connections.values())
        else:
            target = self._connections.get(int(conn))
            if target is None:
                raise UsageError(f"no open connection with id {conn}")
            targets = [target]
        closed = 0
        for target in targets:
            assert target.session is not None
            messages = self.core.close_subscriptions(target.session, reason)
            if messages:
                target.send(messages)
                closed += len(messages)
        self._changed()
        return closed

    def stats(self) -> dict[str, Any]:
        """The /stats document: connections, subscriptions, counters, store, traffic."""
        stats = self.core.stats()
        outbox_total = 0
        for row in stats["connections"]:
            conn = self._connections.get(row["id"])
            queued = conn.outbox.queued_bytes if conn is not None else 0
            row["outbox_bytes"] = queued
            outbox_total += queued
        stats["totals"]["outbox_bytes"] = outbox_total
        stats["relay"] = {
            "url": self.url,
            "http_url": self.http_url,
            "version": self.version,
            "ready_seconds": self.ready_seconds,
            "static_root": str(self.static_root) if self.static_root else None,
            "test_headers": self.test_headers,
            **self.load_info,
        }
        stats["store"] = self.store.statistics()
        stats["traffic"] = None
        if self.traffic is not None:
            stats["traffic"] = {
                **self.traffic.statistics().to_dict(),
                "ready": self.traffic_ready.is_set(),
                "error": self.traffic_error,
            }
        return stats

    def metrics(self) -> bytes:
        """The Prometheus text exposition (this relay's own registry)."""
        return metrics.render(self._registry)

    def static_response(self, target: str) -> HttpResponse:
        """The answer to GET ``target`` from the app directory (or the built-in page)."""
        if self.static_root is None:
            if target.split("?", 1)[0] in ("/", "/index.html"):
                page = _BUILTIN_PAGE.format(client_dir=DEFAULT_CLIENT_DIR, ws_url=self.url)
                return text_response(200, page, "text/html; charset=utf-8")
            return text_response(404, "404 Not Found\n")
        from relaysim.relay.static import resolve_static

        answer = resolve_static(self.static_root, target, test_headers=self.test_headers)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in answer.headers
            if name.lower() != b"content-length"
        ]
        return HttpResponse(answer.status, headers, answer.body)
