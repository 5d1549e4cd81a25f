"""Plain HTTP on the relay's port: NIP-11, introspection, harness control, the app's files.

=====================================  =========================================================
``GET <any path>`` with ``Accept:      NIP-11 relay information document (with CORS; ``OPTIONS``
application/nostr+json``               answers the preflight)
``GET /stats``                         JSON: every connection, its subscriptions, counters, totals
``GET /metrics``                       Prometheus text
``GET /idle?settle=5&timeout=60[&conn=ID]``  long-poll: 200 when idle, 408 on timeout
``GET /viewer.json``                   the dataset's viewer account {pubkey, npub} (404 for a JSONL dataset)
``POST /control/close-subscriptions?conn=ID|all``  CLOSED to the client(s), subscriptions dropped
``POST /control/reset``                back to the dataset: subscriptions CLOSED, store, traffic, counters
``POST /control/traffic/pause|resume`` pause or resume the traffic generator
``POST /control/traffic/burst?kind=notes&n=10``   publish n extra events now
``POST /control/faults?spec=drop=0.01&seed=N``    switch the injected faults (``spec=off``: none)
``GET /media/<folder>/<name>``         the dataset's images (``relay/media.py``), unless the app has the file
anything else (GET/HEAD)               the web app under test (``resolve_static``)
=====================================  =========================================================

``/control/...`` answers 403 to any peer that is not a loopback address: a relay bound to a public
interface for a remote browser still cannot be steered from outside.

The routes see the relay only through :class:`RelayEndpoints`, the few things they read and call.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from typing import Any, Protocol
from urllib.parse import parse_qs

import trio

from relaysim.errors import UsageError
from relaysim.nostr.nip19 import npub_encode
from relaysim.relay.http import HttpRequest, HttpResponse, json_response, text_response
from relaysim.relay.limits import Limits, nip11_document
from relaysim.relay.media import media_image
from relaysim.relay.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from relaysim.traffic import TrafficStatistics

__all__ = ["RelayEndpoints", "TrafficSwitch", "handle_request", "is_loopback"]

log = logging.getLogger("relaysim.relay")

NIP11_TYPE = "application/nostr+json"
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
]
MAX_IDLE_TIMEOUT = 3600.0
TEST_HEADERS = [
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


class TrafficSwitch(Protocol):
    """What ``/control/traffic/...`` calls."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def burst(self, kind_name: str, n: int) -> None: ...
    def statistics(self) -> TrafficStatistics: ...


class ResetAnswer(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class RelayEndpoints(Protocol):
    """What the routes read from the relay (:class:`~relaysim.relay.server.Relay` provides it)."""

    @property
    def limits(self) -> Limits: ...
    @property
    def version(self) -> str: ...
    @property
    def test_headers(self) -> bool: ...
    @property
    def viewer(self) -> str | None: ...
    @property
    def traffic(self) -> TrafficSwitch | None: ...

    def stats(self) -> dict[str, Any]: ...
    def metrics(self) -> bytes: ...
    def idle_report(self, *, settle: float = 5.0, conn: int | None = None) -> dict[str, Any]: ...
    async def wait_idle(self, settle: float = 5.0, conn: int | None = None) -> dict[str, Any]: ...
    def close_subscriptions(self, conn: int | str = "all", *, reason: str | None = None) -> int: ...
    async def reset(self) -> ResetAnswer: ...
    def static_response(self, target: str) -> HttpResponse: ...
    def set_faults(self, spec: str, seed: int | str | None = None) -> dict[str, Any]: ...
    def count_error(self) -> None: ...


class BadRequest(Exception):
    """A query parameter is missing or malformed; the message becomes the 400 body."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; the peer's IP address, no port."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _params(request: HttpRequest) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.query, keep_blank_values=True).items()}


def _number(params: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def _conn(params: dict[str, str], *, allow_all: bool) -> int | str | None:
    raw = params.get("conn")
    if raw is None or raw == "":
        return None
    if allow_all and raw == "all":
        return "all"
    try:
        return int(raw)
    except ValueError:
        what = "a connection id or all" if allow_all else "a connection id"
        raise BadRequest(f"conn must be {what}, got {raw!r}") from None


async def handle_request(relay: RelayEndpoints, request: HttpRequest) -> HttpResponse:
    """Route one plain HTTP request; the result goes out with the test headers when enabled."""
    try:
        response = await _route(relay, request)
    except BadRequest as exc:
        response = text_response(400, f"400 Bad Request: {exc}\n")
    except UsageError as exc:
        response = text_response(400, f"400 Bad Request: {exc}\n")
    except Exception:
        # A bug here must cost one request, not the connection or the server.
        relay.count_error()
        log.exception("HTTP %s %s failed", request.method, request.target)
        response = text_response(500, "500 Internal Server Error: see the relay's log\n")
    if relay.test_headers:
        names = {name.lower() for name, _ in response.headers}
        response.headers.extend(h for h in TEST_HEADERS if h[0].lower() not in names)
    return response


async def _route(relay: RelayEndpoints, request: HttpRequest) -> HttpResponse:
    method, path = request.method, request.path
    accept = request.header(b"accept") or ""
    if method == "OPTIONS":
        return HttpResponse(204, list(CORS_HEADERS))
    if method in ("GET", "HEAD") and NIP11_TYPE in accept:
        doc = nip11_document(relay.limits, version=relay.version)
        response = json_response(200, doc, CORS_HEADERS)
        response.headers[0] = ("Content-Type", NIP11_TYPE)
        return response
    if path.startswith("/control/"):
        if not is_loopback(request.peer):
            return text_response(403, "403 Forbidden: control endpoints answer loopback peers only\n")
        if method != "POST":
            response = text_response(405, "405 Method Not Allowed: use POST\n")
            response.headers.append(("Allow", "POST"))
            return response
        return await _control(relay, path, _params(request))
    if method not in ("GET", "HEAD"):
        response = text_response(405, "405 Method Not Allowed\n")
        response.headers.append(("Allow", "GET, HEAD, OPTIONS"))
        return response
    if path == "/stats":
        return json_response(200, relay.stats())
    if path == "/metrics":
        return HttpResponse(200, [("Content-Type", METRICS_CONTENT_TYPE)], relay.metrics())
    if path == "/viewer.json" and relay.viewer is not None:
        # Whose feed a client under test should show: the dataset's viewer account.
        return json_response(200, {"pubkey": relay.viewer, "npub": npub_encode(relay.viewer)})
    if path == "/idle":
        return await _idle(relay, _params(request))
    response = relay.static_response(request.target)
    if response.status == 404 and path.startswith("/media/"):
        return _media(path) or response
    return response


def _media(path: str) -> HttpResponse | None:
    """A dataset image (its URL names this relay): public test data, so any origin may embed it."""
    image = media_image(path)
    if image is None:
        return None
    headers = [
        ("Content-Type", image[0]),
        ("Cache-Control", "no-store"),
        ("Cross-Origin-Resource-Policy", "cross-origin"),
        *CORS_HEADERS,
    ]
    return HttpResponse(200, headers, image[1])


async def _idle(relay: RelayEndpoints, params: dict[str, str]) -> HttpResponse:
    settle = _number(params, "settle", 5.0, 0.0, MAX_IDLE_TIMEOUT)
    timeout = _number(params, "timeout", 60.0, 0.0, MAX_IDLE_TIMEOUT)
    conn = _conn(params, allow_all=False)
    assert not isinstance(conn, str)
    with trio.move_on_after(timeout):
        return json_response(200, await relay.wait_idle(settle=settle, conn=conn))
    return json_response(408, relay.idle_report(settle=settle, conn=conn))


async def _control(relay: RelayEndpoints, path: str, params: dict[str, str]) -> HttpResponse:
    if path == "/control/reset":
        return json_response(200, (await relay.reset()).to_dict())
    if path == "/control/close-subscriptions":
        conn = _conn(params, allow_all=True)
        if conn is None:
            raise BadRequest("conn is required: a connection id from /stats, or all")
        reason = params.get("reason") or None
        closed = relay.close_subscriptions(conn, reason=reason)
        return json_response(200, {"closed": closed})
    if path == "/control/faults":
        spec = params.get("spec")
        if spec is None:
            raise BadRequest("spec is required: --faults text such as spec=drop=0.01,delay=50ms, or spec=off")
        return json_response(200, relay.set_faults(spec, params.get("seed") or None))
    if path.startswith("/control/traffic/"):
        control = relay.traffic
        if control is None:
            return text_response(409, "409 Conflict: no traffic generator (serve a named dataset)\n")
        action = path.removeprefix("/control/traffic/")
        if action == "pause":
            control.pause()
        elif action == "resume":
            control.resume()
        elif action == "burst":
            kind = params.get("kind")
            if not kind:
                raise BadRequest("kind is required, e.g. kind=notes")
            raw_n = params.get("n", "1")
            try:
                n = int(raw_n)
            except ValueError:
                raise BadRequest(f"n must be an integer, got {raw_n!r}") from None
            control.burst(kind, n)
        else:
            return text_response(404, f"404 Not Found: unknown traffic action {action!r}\n")
        return json_response(200, control.statistics().to_dict())
    return text_response(404, "404 Not Found: unknown control endpoint\n")
