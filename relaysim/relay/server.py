"""The test relay's lifecycle: ``async with open_relay(config) as relay:`` (or ``serve``), and the handle.

Theory of operation: :func:`open_relay` binds its TCP listener first (so a ``port=0`` relay
knows its URL before loading), loads the dataset into an :class:`~relaysim.store.EventStore` (in
a worker thread: building a named dataset may take seconds), then, inside its own nursery, serves
every TCP connection with :func:`~relaysim.relay.http.serve_http`; a websocket upgrade becomes a
:class:`~relaysim.relay.websocket.WebSocketConnection`. All NIP-01 state lives in one
:class:`~relaysim.relay.core.RelayCore`; the :class:`Relay` handle only wires it to sockets, the
clock, the traffic task and the static files. :func:`serve` is the same for a caller's nursery,
the way ``trio.serve_tcp`` is: ``relay = await nursery.start(serve, config)``.

Leaving closes every websocket with 1001 (going away), waits briefly for the clients to answer,
then cancels what is left.

:meth:`Relay.reset` (``POST /control/reset``) puts the relay back to its start between two test
examples without a restart: every subscription ends (CLOSED), the store holds exactly the dataset
again, the traffic starts over from its seed, and the counters of ``/stats`` count from zero.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from functools import partial
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

import trio

from relaysim._version import __version__
from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.relay import metrics
from relaysim.relay.allocator import trim_while_busy
from relaysim.relay.config import RelayConfig
from relaysim.relay.core import RelayCore
from relaysim.relay.faults import Faults, parse_faults
from relaysim.relay.faults_io import FaultControl, send_refusal, upgrade_client
from relaysim.relay.http import HttpRequest, HttpResponse, serve_http, text_response
from relaysim.relay.limits import Limits
from relaysim.relay.loading import FreshStores, Served, load_served
from relaysim.relay.routes import handle_request
from relaysim.relay.static import resolve_static
from relaysim.relay.traffic_task import RelayTraffic
from relaysim.relay.websocket import Connections, WebSocketConnection
from relaysim.resources import client_dir
from relaysim.store import EventStore

__all__ = [
    "DEFAULT_CLIENT_DIR",
    "HARNESS_CLOSE_REASON",
    "SESSION_COOKIE",
    "Relay",
    "ResetReport",
    "open_relay",
    "serve",
    "session_label",
]

log = logging.getLogger("relaysim.relay")

#: The reference client shipped in the package: served at ``/`` unless ``static`` says otherwise.
DEFAULT_CLIENT_DIR = client_dir()
HARNESS_CLOSE_REASON = "error: closed by test harness"
SHUTDOWN_REASON = "relay shutting down"
#: The cookie a harness sets in each browser it starts (``--browsers N``); its value is sent with every
#: websocket handshake of that browser and becomes the connection's ``label`` in ``/stats``, so N
#: sessions sharing one relay each see their own connections, whatever app they run.
SESSION_COOKIE = "relaysim_session"
_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")
CLOSED_LABELS_KEPT = 200

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


def session_label(handshake: bytes) -> str | None:
    """The ``relaysim_session`` cookie of a websocket handshake request (raw bytes), or None."""
    for line in handshake.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep or name.strip().lower() != b"cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value.decode("latin-1").strip())
        except CookieError:
            continue
        morsel = jar.get(SESSION_COOKIE)
        if morsel is not None and _LABEL.fullmatch(morsel.value):
            return morsel.value
    return None


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ResetReport:
    """What :meth:`Relay.reset` did; the JSON answer of ``POST /control/reset``.

    ``store_seconds`` is the part of ``seconds`` spent getting a store that holds exactly the
    dataset (near zero when a spare was ready; see :meth:`Relay.reset`).
    """

    subscriptions_closed: int
    connections: int  # open websockets: they stay open, their counters restart
    events_before: int
    events_after: int
    traffic: dict[str, Any] | None  # {"seed", "paused"} it restarted with, or None: no generator
    resets: int  # resets since the relay started, this one included
    at: float  # Unix time: /stats counts from here
    seconds: float
    store_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ResetReport:
        return cls(**{name: doc[name] for name in cls.__dataclass_fields__})


class Relay:
    """A running test relay; get one from :func:`open_relay` or :func:`serve`, do not build one.

    ``url``/``http_url`` say where it is; :meth:`stats`, :meth:`wait_idle` and
    :meth:`close_subscriptions` are what the idle protocol needs; :meth:`publish` pushes an event
    as a client's EVENT would; ``traffic`` steers the live traffic (None without a named
    dataset); :meth:`reset` starts over from the dataset.
    """

    def __init__(self, config: RelayConfig, port: int, served: Served, store: EventStore) -> None:
        self.config = config
        self.host = config.host
        self.port = port
        self.version = __version__
        self.core = RelayCore(store, config.limits)
        self.static_root: Path | None
        if config.static is not None:
            self.static_root = Path(config.static)
            self.test_headers = bool(config.test_headers)
        else:
            has_client = (DEFAULT_CLIENT_DIR / "index.html").is_file()
            self.static_root = DEFAULT_CLIENT_DIR if has_client else None
            self.test_headers = True if config.test_headers is None else config.test_headers
        self.load_info = served.info
        #: The dataset's viewer account (None for a JSONL file): served as /viewer.json.
        self.viewer = served.viewer
        self.ready_seconds: float | None = None
        self.traffic: RelayTraffic | None = None
        if served.spec is not None:
            self.traffic = RelayTraffic(
                served.spec,
                rates=config.rates if config.traffic is not None else None,
                seed=config.traffic_seed,
                paused=config.traffic_paused,
                relay_url=served.relay_url,
                publish=self.publish,
            )
        self._served = served
        self._connections = Connections()
        self._registry = metrics.new_registry(self.stats)
        self._nursery: trio.Nursery | None = None
        self._reset_lock = trio.Lock()
        self._fresh_stores = FreshStores(served.snapshot, config.max_events)
        #: Injected faults (relay/faults.py); ``set_faults`` switches them while running.
        self.faults = FaultControl(Faults(config.fault_spec, config.faults_seed, clock=self.core.clock))
        # Connection labels (SESSION_COOKIE): open connections by object, closed ones by id (bounded).
        self._open_labels: dict[WebSocketConnection, str] = {}
        self._closed_labels: dict[int, str] = {}

    # -- addresses and settings ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The websocket URL clients connect to, e.g. ``ws://127.0.0.1:7447/``."""
        return f"ws://{_netloc(self.host, self.port)}/"

    @property
    def http_url(self) -> str:
        """The same origin over HTTP: the app, ``/stats``, ``/metrics``, ``/idle``."""
        return f"http://{_netloc(self.host, self.port)}/"

    @property
    def public_http_url(self) -> str:
        """Where browsers open the app: ``config.public_url`` (port filled in) or :attr:`http_url`."""
        return self.config.public_http_url(self.port) or self.http_url

    @property
    def limits(self) -> Limits:
        return self.config.limits

    @property
    def store(self) -> EventStore:
        """The events served right now (a new store after each :meth:`reset`)."""
        return self.core.store

    def _activity(self) -> int:
        """Moves whenever memory may have been freed: messages, connections, in-process events."""
        totals = self.core.totals
        return totals.messages_received + totals.connections_opened + totals.events_published_in_process

    # -- connections -----------------------------------------------------------------------------

    async def _handle_tcp(self, stream: trio.SocketStream) -> None:
        """One TCP connection; nothing raised here may reach ``serve_listeners``."""
        conn: WebSocketConnection | None = None
        try:
            peer = stream.socket.getpeername()
            host = str(peer[0])
            timeout = self.config.settings.request_timeout
            handshake = await serve_http(stream, host, self._handle_http, timeout=timeout)
            if handshake is not None:
                client = upgrade_client(host, handshake[0])
                if self.faults.refuse(client):
                    await send_refusal(stream)  # refuse-reconnect: 503 to this upgrade
                    return
                conn = WebSocketConnection(
                    stream, _netloc(host, peer[1]), self.core, self.config.settings, self._connections,
                    faults=self.faults.link(client),
                )
                label = session_label(handshake[0])
                if label is not None:
                    self._open_labels[conn] = label
                await conn.run(*handshake)
        except Exception as exc:
            if not _is_disconnect(exc):
                self.count_error()
                log.exception("connection failed")
        finally:
            if conn is not None:
                self._forget_label(conn)
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.aclose()

    def _forget_label(self, conn: WebSocketConnection) -> None:
        label = self._open_labels.pop(conn, None)
        if label is not None and conn.session is not None:
            self._closed_labels[conn.session.conn_id] = label
            while len(self._closed_labels) > CLOSED_LABELS_KEPT:
                del self._closed_labels[next(iter(self._closed_labels))]

    async def _handle_http(self, request: HttpRequest) -> HttpResponse:
        return await handle_request(self, request)

    async def _close_connections(self) -> None:
        for conn in self._connections.all():
            conn.close(1001, SHUTDOWN_REASON)
        with trio.move_on_after(self.config.settings.close_timeout + 0.5):
            while len(self._connections):
                await self._connections.change.wait()

    def count_error(self) -> None:
        """A server-side bug cost a connection or a request: counted in /stats ``connection_errors``."""
        self.core.totals.connection_errors += 1

    # -- Python API ------------------------------------------------------------------------------

    async def publish(self, event: Event, *, verify: bool = False) -> tuple[bool, str]:
        """Store ``event`` and push it to every matching live subscription; returns (ok, message)."""
        ok, message, deliveries = self.core.publish(event, verify=verify)
        if deliveries:
            self._connections.deliver(deliveries)
            self._connections.changed()
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
            changed = self._connections.change
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
            targets = self._connections.all()
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
        self._connections.changed()
        return closed

    async def reset(self) -> ResetReport:
        """Start over from the dataset, keeping the port and the open websockets.

        Every subscription of every client ends (``CLOSED`` with the harness reason); the store
        holds exactly the dataset again (live events gone, deleted dataset events back); the
        traffic restarts from its seed in its initial paused or running state; the counters of
        :meth:`stats` count from now (``totals_since_start`` keeps the totals since start).

        The fresh store is built from the already parsed dataset events in a worker thread
        while the old one keeps serving; after the first reset a spare is built in the
        background, so the next reset only swaps it in. The swap itself does not await: no
        client sees a half-reset relay.
        """
        async with self._reset_lock:
            started = time.perf_counter()
            store = await self._fresh_stores.take()
            store_seconds = time.perf_counter() - started
            # From here to the return nothing awaits: one atomic step for every client.
            events_before = len(self.core.store)
            closed = self.close_subscriptions("all")
            self.core.reset(store)
            self.faults.faults.reset()
            assert self._nursery is not None
            traffic = None
            if self.traffic is not None:
                self.traffic.restart(self._nursery)
                traffic = {"seed": self.traffic.seed, "paused": self.traffic.initially_paused}
            self._connections.changed()
            self._fresh_stores.prepare(self._nursery)
            return ResetReport(
                subscriptions_closed=closed,
                connections=len(self._connections),
                events_before=events_before,
                events_after=len(store),
                traffic=traffic,
                resets=self.core.resets,
                at=self.core.reset_at or self.core.clock(),
                seconds=round(time.perf_counter() - started, 6),
                store_seconds=round(store_seconds, 6),
            )

    def stats(self) -> dict[str, Any]:
        """The /stats document: connections, subscriptions, counters, store, traffic."""
        stats = self.core.stats()
        outbox_total = 0
        for row in stats["connections"]:
            conn = self._connections.get(row["id"])
            queued = conn.outbox.queued_bytes if conn is not None else 0
            row["outbox_bytes"] = queued
            label = self._open_labels.get(conn) if conn is not None else None
            row["label"] = label if label is not None else self._closed_labels.get(row["id"])
            outbox_total += queued
        for row in stats["closed_connections"]:
            row["label"] = self._closed_labels.get(row["id"])
        stats["totals"]["outbox_bytes"] = outbox_total
        stats["relay"] = {
            "url": self.url,
            "http_url": self.http_url,
            "public_url": self.public_http_url,
            "version": self.version,
            "ready_seconds": self.ready_seconds,
            "static_root": str(self.static_root) if self.static_root else None,
            "test_headers": self.test_headers,
            **self.load_info,
        }
        stats["store"] = self.store.statistics()
        stats["faults"] = self.faults.faults.statistics()
        stats["traffic"] = None
        if self.traffic is not None:
            stats["traffic"] = {
                **self.traffic.statistics().to_dict(),
                "ready": self.traffic.ready.is_set(),
                "error": self.traffic.error,
            }
        return stats

    def set_faults(self, spec: str, seed: int | str | None = None) -> dict[str, Any]:
        """Switch the injected faults now (``--faults`` text; ``off``: none); returns /stats ``faults``.

        Live connections follow at once (a disconnect timer re-draws under the new spec). A bad
        ``spec`` raises :class:`UsageError` naming the bad item and changes nothing."""
        self.faults.switch(parse_faults(spec), seed)
        return self.faults.faults.statistics()

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
        answer = resolve_static(self.static_root, target, test_headers=self.test_headers)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in answer.headers
            if name.lower() != b"content-length"
        ]
        return HttpResponse(answer.status, headers, answer.body)


# -- lifecycle ---------------------------------------------------------------------------------------


async def _listen(host: str, port: int) -> list[trio.SocketListener]:
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    if port == 0 and len(listeners) > 1:
        # "localhost" may resolve to ::1 and 127.0.0.1, and port 0 gives each its own port:
        # keep one listener so the relay has one URL.
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    return listeners


def _hints_url(config: RelayConfig, port: int) -> str | None:
    """Where the dataset's relay hints point: the configured URL, or this relay when asked to."""
    public = config.public_http_url(port)
    if config.hints_follow_url and config.dataset_relay_url is None and public is not None:
        # Browsers on other machines reach the relay at its public URL: the hints name that.
        return "ws" + public.removeprefix("http")
    if config.hints_follow_url and config.dataset_relay_url is None and config.host not in ("0.0.0.0", "::"):
        # Relay hints and kind-10002 r tags name this very relay, so a client stays here.
        return f"ws://{_netloc(config.host, port)}/"
    return config.dataset_relay_url


@asynccontextmanager
async def open_relay(config: RelayConfig) -> AsyncIterator[Relay]:
    """``async with open_relay(config) as relay:`` -- a relay serving until the block ends.

    Binding and loading happen before the block is entered (a bad dataset or a taken port is a
    :class:`UsageError` here); leaving closes every websocket with 1001.
    """
    started = time.perf_counter()
    listeners = await _listen(config.host, config.port)
    port = listeners[0].socket.getsockname()[1]
    try:
        load = partial(
            load_served,
            config.dataset,
            config.events,
            relay_url=_hints_url(config, port),
            capacity=config.max_events,
        )
        served, store = await trio.to_thread.run_sync(load)
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    relay = Relay(config, port, served, store)
    async with trio.open_nursery() as nursery:
        relay._nursery = nursery
        nursery.start_soon(trio.serve_listeners, relay._handle_tcp, listeners)
        nursery.start_soon(trim_while_busy, relay._activity)
        if relay.traffic is not None:
            relay.traffic.start(nursery)
        relay.ready_seconds = time.perf_counter() - started
        try:
            yield relay
        finally:
            try:
                await relay._close_connections()
            finally:
                nursery.cancel_scope.cancel()


async def serve(
    config: RelayConfig, *, task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a relay until cancelled; ``relay = await nursery.start(serve, config)`` gives its handle."""
    async with open_relay(config) as relay:
        task_status.started(relay)
        await trio.sleep_forever()
