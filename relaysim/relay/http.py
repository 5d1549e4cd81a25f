"""HTTP/1.1 on a trio stream with h11, and the hand-over of websocket upgrades.

Theory of operation: :func:`serve_http` drives one ``h11.Connection`` per TCP connection --
read, feed, pull events, answer -- for as many keep-alive requests as the client sends. A request
whose ``Upgrade`` header names ``websocket`` is not answered here: the loop rebuilds the request's
bytes (:func:`raw_request`) and returns them with whatever bytes h11 had already buffered after it
(``trailing_data``: the client may pipeline its first frames right behind the handshake). The
caller feeds both to websockets' Sans-I/O ``ServerProtocol``, which parses the handshake itself.

Why rebuild the bytes rather than build a ``websockets.http11.Request`` from h11's fields: the
``ServerProtocol`` parser starts in the HTTP state and would otherwise have to be re-seated by hand
(private attributes). Rebuilding costs about 3 us once per connection and keeps both libraries on
their documented paths.

h11 refuses a body on a reply to HEAD: :func:`send_response` drops it (keeping Content-Length).

Each request (head and body, or a websocket upgrade) must arrive within ``timeout`` seconds of
the previous answer (of the connection's start): a client that sends a few bytes now and then
("slowloris") would otherwise hold a connection open forever. A late request gets ``408`` and
the connection is closed; an idle keep-alive connection is closed without a word.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

import h11
import orjson
import trio

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "json_response",
    "raw_request",
    "send_response",
    "serve_http",
    "text_response",
]

RECEIVE_SIZE = 65_536
MAX_BODY = 1_048_576


@dataclass(frozen=True)
class HttpRequest:
    """A complete plain HTTP request (body read) and who sent it."""

    method: str
    target: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    peer: str

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, obj: object, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    return HttpResponse(status, [("Content-Type", "application/json"), *(headers or [])], body)


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> HttpResponse:
    return HttpResponse(status, [("Content-Type", content_type)], text.encode())


def is_websocket_upgrade(request: h11.Request) -> bool:
    return any(name == b"upgrade" and b"websocket" in value.lower() for name, value in request.headers)


def raw_request(request: h11.Request) -> bytes:
    """The request head as bytes again, original header case kept, for websockets' parser."""
    lines = [request.method + b" " + request.target + b" HTTP/" + request.http_version]
    lines.extend(name + b": " + value for name, value in request.headers.raw_items())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def send_response(
    stream: trio.abc.Stream, conn: h11.Connection, response: HttpResponse, *, head: bool = False
) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"Content-Length", str(len(response.body)).encode()))
    headers.append((b"Date", formatdate(usegmt=True).encode()))
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    if response.body and not head:
        data += conn.send(h11.Data(data=response.body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


async def serve_http(
    stream: trio.abc.Stream, peer: str, handle: Handler, *, timeout: float = math.inf
) -> tuple[bytes, bytes] | None:
    """Answer plain requests with ``handle`` until the client closes or asks for a websocket.

    Returns ``(handshake request bytes, bytes pipelined after it)`` to hand to the websocket
    layer, or None when the connection is finished. Each request must arrive within ``timeout``.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=65_536)
    request: h11.Request | None = None
    body = bytearray()
    deadline = trio.current_time() + timeout
    started = False  # bytes of the next request have arrived
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            await _send_error(stream, conn, exc.error_status_hint, str(exc))
            return None
        if event is h11.NEED_DATA:
            with trio.move_on_at(deadline):
                data = await stream.receive_some(RECEIVE_SIZE)
                conn.receive_data(bytes(data))  # b"" is EOF; bytes(b) of a bytes object is b itself
                started = started or bool(data)
                continue
            if started:
                await _send_timeout(stream, timeout)
            return None
        if isinstance(event, h11.Request):
            request, body = event, bytearray()
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                await _send_error(stream, conn, 413, "request body too large")
                return None
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            if request is None:  # pragma: no cover - h11 never pauses before a request
                return None
            if is_websocket_upgrade(request):
                # Either PAUSED now or after this EndOfMessage: h11 stops at a protocol switch.
                if event is not h11.PAUSED and conn.next_event() is not h11.PAUSED:
                    await _send_error(stream, conn, 400, "bad websocket upgrade request")
                    return None
                trailing, _closed = conn.trailing_data
                return raw_request(request), bytes(trailing)
            http_request = HttpRequest(
                method=request.method.decode("ascii", "replace"),
                target=request.target.decode("ascii", "replace"),
                headers=tuple((bytes(k), bytes(v)) for k, v in request.headers),
                body=bytes(body),
                peer=peer,
            )
            response = await handle(http_request)
            await send_response(stream, conn, response, head=http_request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE:
                return None
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return None
            request = None
            deadline, started = trio.current_time() + timeout, False
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _send_timeout(stream: trio.abc.Stream, timeout: float) -> None:
    """408 for a request that did not arrive in time (h11 cannot answer a request it has not
    seen in full, so the bytes are written here)."""
    body = f"request not received within {timeout:g} s\n".encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError), trio.move_on_after(1):
        await stream.send_all(head + body)


async def _send_error(stream: trio.abc.Stream, conn: h11.Connection, status: int, message: str) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    response = text_response(status, message + "\n")
    response.headers.append(("Connection", "close"))
    with contextlib.suppress(h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        await send_response(stream, conn, response)
